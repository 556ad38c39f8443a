import MambaKernels
import MambaVariants

/// In-process timing of a backward kernel against its forward, on the same
/// seeded problem (paper distribution, Float32 storage, one sequence, a
/// seeded `dO ~ N(0, 0.5²)`), like `KernelBenchmark`: `warmup` untimed
/// calls of each, then `runs` alternating timed calls of forward and
/// backward; medians of wall time (`ContinuousClock`) and of the calling
/// thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`; with one BLAS thread all
/// the work runs there, so this is the robust number on a shared machine,
/// where other processes inflate wall time). Both include the kernels'
/// Double ↔ Float32 conversions.
public enum BackwardBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var spec: CoreSpec
        public var form: KernelForm
        public var mode: PrecisionMode
        public var length: Int
        public var keyDim: Int
        public var valueDim: Int
        public var options: KernelOptions
        /// Median seconds of one `CoreKernels.run` (forward).
        public var forwardSeconds: Double
        /// Median seconds of one `CoreBackward.run`.
        public var backwardSeconds: Double
        public var forwardSamples: [Double]
        public var backwardSamples: [Double]
        /// Median thread CPU seconds of one forward / backward call.
        public var forwardCPUSeconds: Double
        public var backwardCPUSeconds: Double
        /// `backwardCPUSeconds / forwardCPUSeconds`.
        public var cpuRatio: Double { backwardCPUSeconds / forwardCPUSeconds }
        /// Fastest call's thread CPU seconds (the least disturbed samples on a shared machine).
        public var bestForwardCPUSeconds: Double
        public var bestBackwardCPUSeconds: Double
        /// `bestBackwardCPUSeconds / bestForwardCPUSeconds`.
        public var bestCPURatio: Double { bestBackwardCPUSeconds / bestForwardCPUSeconds }
        public var blasThreads: Int
        public var blasCore: String
        /// `backwardSeconds / forwardSeconds`.
        public var ratio: Double { backwardSeconds / forwardSeconds }

        public var description: String {
            func ms(_ x: Double) -> String { String((x * 1e5).rounded() / 100) }
            return "\(spec.name) \(form.rawValue) \(mode.rawValue) N=\(length) dk=\(keyDim) dv=\(valueDim) "
                + "C=\(options.chunkSize) T=\(options.tileSize): forward median \(ms(forwardSeconds)) ms, "
                + "backward median \(ms(backwardSeconds)) ms, backward/forward \(String((ratio * 100).rounded() / 100))×; "
                + "thread CPU time: forward \(ms(forwardCPUSeconds)) ms, backward \(ms(backwardCPUSeconds)) ms, "
                + "backward/forward \(String((cpuRatio * 100).rounded() / 100))× (fastest calls: \(ms(bestForwardCPUSeconds)) ms, "
                + "\(ms(bestBackwardCPUSeconds)) ms, \(String((bestCPURatio * 100).rounded() / 100))×); "
                + "BLAS threads \(blasThreads), BLAS core \(blasCore)"
        }
    }

    /// Times the forward and backward of one form.
    ///
    /// - Parameter threads: OpenBLAS threads during the measurement (restored
    ///   afterwards); nil keeps the current setting.
    public static func run(spec: CoreSpec = CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                           form: KernelForm = .chunked, mode: PrecisionMode = .float32, length: Int = 16_384,
                           keyDim: Int = 64, valueDim: Int = 64, options: KernelOptions = .init(),
                           runs: Int = 5, warmup: Int = 1, threads: Int? = 1, seed: UInt64 = 42) throws -> Result {
        let core = CoreProblem.random(spec: spec, length: length, keyDim: keyDim, valueDim: valueDim, seed: seed)
        let g = GradientProblem.random(core: core, seed: seed)
        // Repeated runs reuse the chunk-state buffer (freed when the scope ends).
        return try KernelBenchmark.withBLASThreads(threads) {
            try CoreBackward.reusingBuffers {
                try measure(spec: spec, form: form, mode: mode, length: length, keyDim: keyDim, valueDim: valueDim,
                            options: options, runs: runs, warmup: warmup, core: core, g: g)
            }
        }
    }

    private static func measure(spec: CoreSpec, form: KernelForm, mode: PrecisionMode, length: Int, keyDim: Int,
                                valueDim: Int, options: KernelOptions, runs: Int, warmup: Int, core: CoreProblem,
                                g: GradientProblem) throws -> Result {
        for _ in 0..<warmup {
            _ = try CoreKernels.run(core, form: form, mode: mode, options: options)
            _ = try CoreBackward.run(g, form: form, mode: mode, options: options)
        }
        var fw: [Double] = [], bw: [Double] = [], fc: [Double] = [], bc: [Double] = []
        for _ in 0..<Swift.max(runs, 1) {
            let f = KernelBenchmark.timed { _ = try? CoreKernels.run(core, form: form, mode: mode, options: options) }
            fw.append(f.wall); fc.append(f.cpu)
            let b = KernelBenchmark.timed { _ = try? CoreBackward.run(g, form: form, mode: mode, options: options) }
            bw.append(b.wall); bc.append(b.cpu)
        }
        return Result(spec: spec, form: form, mode: mode, length: length, keyDim: keyDim, valueDim: valueDim,
                      options: options, forwardSeconds: KernelBenchmark.median(fw),
                      backwardSeconds: KernelBenchmark.median(bw), forwardSamples: fw, backwardSamples: bw,
                      forwardCPUSeconds: KernelBenchmark.median(fc), backwardCPUSeconds: KernelBenchmark.median(bc),
                      bestForwardCPUSeconds: fc.min()!, bestBackwardCPUSeconds: bc.min()!,
                      blasThreads: KernelBenchmark.blasThreads, blasCore: KernelBenchmark.blasCore)
    }
}

