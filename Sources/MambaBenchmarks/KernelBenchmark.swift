#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import COpenBLAS
import MambaKernels
import MambaVariants

/// In-process timing of the optimized kernels, for `mambacheck bench` and
/// the `Benchmarks/` package.
///
/// A run builds one seeded problem (paper distribution, Float32 storage, one
/// batch element), runs the kernel `warmup` times, then `runs` times, and
/// reports the median wall time (`ContinuousClock`), on which GFLOP/s, tokens/s
/// and the share of the roof are computed, and the median CPU time of the
/// process (`CLOCK_PROCESS_CPUTIME_ID`: the calling thread and, where the
/// chunked form carries its state on a second thread — `kernelThreads` 2,
/// `KernelOptions.concurrentStateCarry` — that one too; on a shared, loaded
/// machine, CPU time over `kernelThreads` bounds the wall time an idle one
/// would give). The time includes the
/// kernel's Double → Float32 input and Float32 → Double output conversions
/// (`O(N·(2dk + dv))`, a few percent at most).
///
/// FLOP count (`flops`): the multiply-adds of the matrix products the form
/// performs, 2 per multiply-add, elementwise work (exp, scaling, features)
/// not counted. With `ldv = dv + 1` (sum) or `dv`, `F` the feature dimension,
/// chunks/tiles of actual length `c`:
/// - chunked: `Σ_chunks 2c²(dk + ldv) + 2c·F·ldv·[chunk > 0 or initial state] + 2c·F·ldv`;
///   exponential: `Σ_{query chunk, key chunk ≤} 2·c_q·c_k·(dk + ldv)`;
/// - quadratic: `Σ_{row blocks} 2·r·i₁·(dk + ldv)` (keys up to the block end) + `2N·F·ldv` (final state);
/// - tiled: `Σ_{visited tile pairs} 2·t_q·t_k·(dk + ldv)` + `2N·F·ldv`;
/// - recurrent: `4N·F·ldv` (decay + rank-1 update, query product);
///   exponential: `Σ_t 2t(dk + ldv)`.
///
/// The roof (`sgemmGflops`) is `cblas_sgemm` alone on the shapes that
/// dominate the form, with the same thread count: for the chunked feature
/// cores the two state products `(F×C)ᵀ·(F×ldv)` and `(F×C)·(C×ldv)`
/// alternated; otherwise a `512×512×512` product.
public enum KernelBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var spec: CoreSpec
        public var form: KernelForm
        public var mode: PrecisionMode
        public var length: Int
        public var keyDim: Int
        public var valueDim: Int
        public var options: KernelOptions
        /// Median wall time of one kernel call, seconds.
        public var seconds: Double
        /// Every measured wall time, seconds.
        public var samples: [Double]
        /// Median CPU time of the process per call (every thread of the kernel), seconds.
        public var cpuSeconds: Double
        /// Fastest call's CPU time, seconds.
        public var bestCPUSeconds: Double
        /// `fractionOfSgemm` using the fastest call's wall time.
        public var bestFractionOfSgemm: Double { flops / (samples.min() ?? seconds) / 1e9 / sgemmGflops }
        public var flops: Double
        /// GFLOP/s on the median wall time.
        public var gflops: Double { flops / seconds / 1e9 }
        /// `cblas_sgemm` GFLOP/s on the matching shapes (see the type), on one
        /// thread's CPU time with the measurement's BLAS threads.
        public var sgemmGflops: Double
        /// `gflops` over the roof: above 1 where the kernel runs on two threads.
        public var fractionOfSgemm: Double { gflops / sgemmGflops }
        /// Tokens per second of wall time.
        public var tokensPerSecond: Double { Double(length) / seconds }
        /// Threads the kernel itself ran on (`CoreKernels.threads`), besides BLAS's own.
        public var kernelThreads: Int
        /// Recurrent state per head (elements), nil for the KV-cache score.
        public var stateElements: Int?
        public var blasThreads: Int
        /// OpenBLAS's kernel family (`openblas_get_corename()`), e.g.
        /// `Prescott` when it did not recognise the CPU and fell back to SSE3
        /// kernels; `OPENBLAS_CORETYPE` in the environment overrides it.
        public var blasCore: String

        public var description: String {
            func f(_ x: Double, _ d: Int = 3) -> String {
                var s = String(x.rounded(toPlaces: d))
                if s.hasSuffix(".0") { s.removeLast(2) }
                return s
            }
            return "\(spec.name) \(form.rawValue) \(mode.rawValue) N=\(length) dk=\(keyDim) dv=\(valueDim) C=\(options.chunkSize): "
                + "median \(f(seconds * 1e3)) ms wall, \(f(cpuSeconds * 1e3)) ms CPU, \(f(gflops, 2)) GFLOP/s, sgemm roof \(f(sgemmGflops, 2)) GFLOP/s "
                + "(median \(f(fractionOfSgemm * 100, 1))%, best \(f(bestFractionOfSgemm * 100, 1))%), \(f(tokensPerSecond, 0)) tokens/s, state \(stateElements.map(String.init) ?? "KV cache") elements, kernel threads \(kernelThreads), BLAS threads \(blasThreads), BLAS core \(blasCore)"
        }
    }

    /// Times `CoreKernels.run` on a seeded problem.
    ///
    /// - Parameter threads: OpenBLAS threads during the measurement (restored
    ///   afterwards); nil keeps the current setting.
    public static func run(spec: CoreSpec = CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                           form: KernelForm = .chunked, mode: PrecisionMode = .float32, length: Int = 16_384,
                           keyDim: Int = 64, valueDim: Int = 64, options: KernelOptions = .init(),
                           runs: Int = 5, warmup: Int = 1, threads: Int? = 1, seed: UInt64 = 42) throws -> Result {
        try withBLASThreads(threads) {
            try measure(spec: spec, form: form, mode: mode, length: length, keyDim: keyDim, valueDim: valueDim,
                        options: options, runs: runs, warmup: warmup, seed: seed)
        }
    }

    private static func measure(spec: CoreSpec, form: KernelForm, mode: PrecisionMode, length: Int, keyDim: Int,
                                valueDim: Int, options: KernelOptions, runs: Int, warmup: Int, seed: UInt64) throws -> Result {
        let p = CoreProblem.random(spec: spec, length: length, keyDim: keyDim, valueDim: valueDim, seed: seed)
        for _ in 0..<warmup { _ = try CoreKernels.run(p, form: form, mode: mode, options: options) }
        var samples: [Double] = [], cpu: [Double] = []
        for _ in 0..<Swift.max(runs, 1) {
            let t = timed { _ = try? CoreKernels.run(p, form: form, mode: mode, options: options) }
            cpu.append(t.cpu)
            samples.append(t.wall)
        }
        let flops = flopCount(spec: spec, form: form, length: length, keyDim: keyDim, valueDim: valueDim,
                              options: options)
        let ldv = spec.normalization == .sum ? valueDim + 1 : valueDim
        let f = featureDimension(spec, keyDim, options)
        let roof: Double
        if form == .chunked, let f {
            let c = Swift.min(options.chunkSize, length)
            roof = sgemmGflops(shapes: [(c, ldv, f, true), (f, ldv, c, false)], runs: 3)
        } else {
            roof = sgemmGflops(shapes: [(512, 512, 512, false)], runs: 3)
        }
        return Result(spec: spec, form: form, mode: mode, length: length, keyDim: keyDim, valueDim: valueDim,
                      options: options, seconds: median(samples), samples: samples, cpuSeconds: median(cpu),
                      bestCPUSeconds: cpu.min()!,
                      flops: flops,
                      sgemmGflops: roof,
                      kernelThreads: CoreKernels.threads(p, form: form, mode: mode, options: options),
                      stateElements: !spec.score.hasFeatureMap ? nil
                        : CoreKernels.stateElements(spec: spec, keyDim: keyDim, valueDim: valueDim,
                                                    fullSecondOrder: options.fullSecondOrderState),
                      blasThreads: blasThreads, blasCore: blasCore)
    }

    static func featureDimension(_ spec: CoreSpec, _ dk: Int, _ o: KernelOptions) -> Int? {
        spec.featureDimension(keyDim: dk, fullSecondOrder: o.fullSecondOrderState)
    }

    /// The FLOP count of the type's documentation, for one sequence.
    public static func flopCount(spec: CoreSpec, form: KernelForm, length n: Int, keyDim dk: Int, valueDim dv: Int,
                                 options: KernelOptions = .init(), initialState: Bool = false) -> Double {
        let ldv = Double(spec.normalization == .sum ? dv + 1 : dv)
        let f = featureDimension(spec, dk, options).map(Double.init)
        let dkd = Double(dk)
        var total = 0.0
        switch form {
        case .chunked:
            let c = Swift.max(1, Swift.min(options.chunkSize, Swift.max(n, 1)))
            var c0 = 0
            while c0 < n {
                let cc = Double(Swift.min(c, n - c0))
                if let f {
                    total += 2 * cc * cc * (dkd + ldv) + 2 * cc * f * ldv
                    if c0 > 0 || initialState { total += 2 * cc * f * ldv }
                } else {
                    var k0 = c0
                    while k0 >= 0 { total += 2 * cc * Double(Swift.min(c, n - k0)) * (dkd + ldv); k0 -= c }
                }
                c0 += c
            }
        case .quadratic, .tiled:
            let b = form == .quadratic ? 128 : Swift.max(1, options.tileSize)
            var i0 = 0
            while i0 < n {
                let r = Double(Swift.min(b, n - i0))
                if form == .quadratic {
                    total += 2 * r * Double(i0 + Int(r)) * (dkd + ldv)
                } else {
                    var k0 = 0
                    while k0 <= i0 { total += 2 * r * Double(Swift.min(b, n - k0)) * (dkd + ldv); k0 += b }
                }
                i0 += b
            }
            if let f { total += 2 * Double(n) * f * ldv }
        case .recurrent:
            if let f { total = 4 * Double(n) * f * ldv } else {
                total = Double(n) * Double(n + 1) * (dkd + ldv)
            }
        }
        return total
    }

    /// `cblas_sgemm` GFLOP/s (on thread CPU time) over the given shapes
    /// `(m, n, k, transA)`, repeated for ~50 ms worth of work, best of `runs`.
    /// `n` (at least 1) Float32 values set to `x`; the caller deallocates.
    static func filled(_ n: Int, _ x: Float) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(n, 1))
        p.initialize(repeating: x, count: Swift.max(n, 1))
        return p
    }

    public static func sgemmGflops(shapes: [(Int, Int, Int, Bool)], runs: Int = 3) -> Double {
        var best = 0.0
        let bufs = shapes.map { (m, n, k, _) in
            (filled(m * k, 0.5), filled(k * n, 0.25), filled(m * n, 0))
        }
        defer { for (a, b, c) in bufs { a.deallocate(); b.deallocate(); c.deallocate() } }
        var flopsPerRound = 0.0
        for (m, n, k, _) in shapes { flopsPerRound += 2 * Double(m * n * k) }
        func round() {
            for (idx, (m, n, k, ta)) in shapes.enumerated() {
                let (a, b, c) = bufs[idx]
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                            1, a, Int32(ta ? m : k), b, Int32(n), 1, c, Int32(n))
            }
        }
        round()
        let reps = Swift.max(1, Int(5e7 / Swift.max(flopsPerRound, 1) / 20))
        for _ in 0..<Swift.max(runs, 1) {
            let c0 = threadCPUTime()
            for _ in 0..<reps { round() }
            let t = threadCPUTime() - c0
            best = Swift.max(best, flopsPerRound * Double(reps) / t / 1e9)
        }
        return best
    }

    /// Runs `body` with `threads` OpenBLAS threads (nil: the current
    /// setting), restoring the previous setting afterwards.
    static func withBLASThreads<T>(_ threads: Int?, _ body: () throws -> T) rethrows -> T {
        let previous = openblas_get_num_threads()
        if let threads { openblas_set_num_threads(Int32(threads)) }
        defer { openblas_set_num_threads(previous) }
        return try body()
    }

    /// The OpenBLAS threads in effect.
    static var blasThreads: Int { Int(openblas_get_num_threads()) }

    /// OpenBLAS's kernel family (`openblas_get_corename()`).
    static var blasCore: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// One timed call of `body`: wall seconds (`ContinuousClock`) and the
    /// process's CPU seconds.
    static func timed(_ body: () -> Void) -> (wall: Double, cpu: Double) {
        let c0 = processCPUTime()
        let wall = ContinuousClock().measure(body).seconds
        return (wall, processCPUTime() - c0)
    }

    /// CPU time consumed by every thread of the process, seconds.
    public static func processCPUTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// CPU time consumed by the calling thread, seconds.
    public static func threadCPUTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static func median(_ x: [Double]) -> Double {
        let s = x.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}

extension Double {
    func rounded(toPlaces d: Int) -> Double {
        var p = 1.0
        for _ in 0..<d { p *= 10 }
        return (self * p).rounded() / p
    }
}
