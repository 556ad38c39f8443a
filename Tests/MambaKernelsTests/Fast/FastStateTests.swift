import Testing
import MambaKernels
import MambaVariants

/// State round trip (docs/MATH.md §3, FLA convention) and variable-length batches.
@Suite("Fast kernels: states and variable-length batches")
struct FastStateTests {
    static func slice(_ p: CoreProblem, from t0: Int, to t1: Int, state: CoreState?) -> CoreProblem {
        let n = p.length, m = t1 - t0
        func cut(_ x: [Double], _ w: Int) -> [Double] {
            (0..<p.sequences).flatMap { s in x[((s * n + t0) * w)..<((s * n + t1) * w)] }
        }
        var decay: LogDecay? = nil
        if case .perStep(let a)? = p.decay { decay = .perStep(cut(a, 1)) }
        return CoreProblem(spec: p.spec, batch: p.batch, heads: p.heads, length: m, keyDim: p.keyDim,
                           valueDim: p.valueDim, q: cut(p.q, p.keyDim), k: cut(p.k, p.keyDim), v: cut(p.v, p.valueDim),
                           decay: decay, scale: p.scale, initialState: state)
    }

    /// Running `N` tokens equals running `N₁` tokens and then `N₂` tokens
    /// from the first run's final state, for every form with a state and
    /// every feature-map core. Tolerance: the derived bound of the full run
    /// (each part's error is bounded by the same terms), doubled for the two
    /// computations compared.
    @Test(arguments: CoreSpec.all.filter { $0.score != .exponential })
    func roundTrip(_ spec: CoreSpec) throws {
        let p = FastProblems.make(spec, mode: .float32, heads: 2, length: 90, initialState: true, seed: 12)
        let ref = FastReference.run(p, mode: .float32)
        for form in KernelForm.allCases {
            for mode in [PrecisionMode.float32, .float16] {
                let q = mode == .float32 ? p : FastProblems.make(spec, mode: mode, heads: 2, length: 90,
                                                                 initialState: true, seed: 12)
                let r = mode == .float32 ? ref : FastReference.run(q, mode: mode)
                let options = KernelOptions(chunkSize: 16, tileSize: 16)
                let full = try CoreKernels.run(q, form: form, mode: mode, options: options)
                let first = try CoreKernels.run(Self.slice(q, from: 0, to: 37, state: q.initialState), form: form,
                                                mode: mode, options: options)
                let second = try CoreKernels.run(Self.slice(q, from: 37, to: 90, state: first.finalState), form: form,
                                                 mode: mode, options: options)
                var joined = [Double]()
                let dv = q.valueDim
                for s in 0..<q.sequences {
                    joined += first.o[(s * 37 * dv)..<((s + 1) * 37 * dv)]
                    joined += second.o[(s * 53 * dv)..<((s + 1) * 53 * dv)]
                }
                let cmp = FastComparison(joined, full.o, bound: r.bound.map { 2 * $0 })
                #expect(cmp.passes, "\(spec.name) \(form) \(mode): \(cmp)")
                let sc = FastComparison(second.finalState!.s, full.finalState!.s, bound: r.sBound!.map { 2 * $0 })
                #expect(sc.passes, "\(spec.name) \(form) \(mode) state: \(sc)")
                if let z = full.finalState!.z {
                    let zc = FastComparison(second.finalState!.z!, z, bound: r.zBound!.map { 2 * $0 })
                    #expect(zc.passes, "\(spec.name) \(form) \(mode) z: \(zc)")
                }
            }
        }
    }

    /// Packed variable-length sequences (FLA `cu_seqlens`) give exactly the
    /// results of separate runs — same inputs, same code path, so bitwise —
    /// with per-sequence initial states and final states, including an
    /// empty sequence.
    @Test(arguments: CoreSpec.all)
    func varLenEqualsSeparateRuns(_ spec: CoreSpec) throws {
        let lengths = [13, 0, 40, 7]
        let offsets = lengths.reduce(into: [0]) { $0.append($0.last! + $1) }
        let total = offsets.last!, h = 2, dk = 8, dv = 4
        let hasState = spec.score != .exponential
        // One problem per sequence, then packed along the token axis.
        let parts = lengths.enumerated().map { i, n in
            FastProblems.make(spec, mode: .float32, heads: h, length: n, keyDim: dk, valueDim: dv,
                              initialState: hasState, seed: 200 + UInt64(i))
        }
        func pack(_ get: (CoreProblem) -> [Double], _ w: Int) -> [Double] {
            (0..<h).flatMap { hh in parts.flatMap { p in get(p)[(hh * p.length * w)..<((hh + 1) * p.length * w)] } }
        }
        var decay: LogDecay? = nil
        if spec.hasDecay {
            decay = .perStep(pack({ p in if case .perStep(let a)? = p.decay { return a }; return [] }, 1))
        }
        var state: CoreState? = nil
        if hasState {
            let s = parts.flatMap { $0.initialState!.s }
            let z: [Double]? = spec.normalization == .sum ? parts.flatMap { $0.initialState!.z! } : nil
            state = CoreState(s: s, z: z)
        }
        let packed = CoreProblem(spec: spec, batch: 1, heads: h, length: total, keyDim: dk, valueDim: dv,
                                 q: pack({ $0.q }, dk), k: pack({ $0.k }, dk), v: pack({ $0.v }, dv),
                                 decay: decay, initialState: state)
        for form in KernelForm.allCases {
            let out = try CoreKernels.run(packed, cuSeqlens: offsets, form: form, mode: .float32,
                                          options: KernelOptions(chunkSize: 8, tileSize: 8))
            var expected = [Double](repeating: 0, count: h * total * dv)
            var expectedS = [Double](), expectedZ = [Double]()
            for (i, p) in parts.enumerated() {
                let r = try CoreKernels.run(p, form: form, mode: .float32, options: KernelOptions(chunkSize: 8, tileSize: 8))
                for hh in 0..<h {
                    for t in 0..<p.length {
                        for c in 0..<dv {
                            expected[(hh * total + offsets[i] + t) * dv + c] = r.o[(hh * p.length + t) * dv + c]
                        }
                    }
                }
                if let fs = r.finalState { expectedS += fs.s; expectedZ += fs.z ?? [] }
            }
            // Bitwise (NaN rows of zero denominators included).
            func bits(_ x: [Double]) -> [UInt64] { x.map(\.bitPattern) }
            let sameO = bits(out.o) == bits(expected)
            #expect(sameO, "\(spec.name) \(form): packed output differs from separate runs")
            if hasState {
                let sameS = bits(out.finalState!.s) == bits(expectedS)
                #expect(sameS, "\(spec.name) \(form): final states differ")
                if spec.normalization == .sum {
                    let sameZ = bits(out.finalState!.z!) == bits(expectedZ)
                    #expect(sameZ, "\(spec.name) \(form): final z differ")
                }
            }
        }
    }

    @Test func varLenRejectsBadOffsets() {
        let spec = CoreSpec(score: .linear, hasDecay: true, normalization: .none)
        let p = FastProblems.make(spec, mode: .float32, heads: 1, length: 10, initialState: false, seed: 4)
        for bad in [[0, 5], [1, 10], [0, 6, 4, 10], [0]] {
            #expect(throws: KernelError.self) { try CoreKernels.run(p, cuSeqlens: bad, form: .chunked, mode: .float32) }
        }
    }

    /// State sizes of docs/MATH.md §4.
    @Test func stateSizes() {
        let twoMamba = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)
        #expect(CoreKernels.stateElements(spec: twoMamba, keyDim: 64, valueDim: 64, convWindow: 2) == 135_392)
        let linear = CoreSpec(score: .reluLinear, hasDecay: false, normalization: .sum)
        #expect(CoreKernels.stateElements(spec: linear, keyDim: 64, valueDim: 64, convWindow: 2) == 64 * 64 + 64 + 3 * 64)
        let softmax = CoreSpec(score: .exponential, hasDecay: false, normalization: .sum)
        #expect(CoreKernels.stateElements(spec: softmax, keyDim: 64, valueDim: 64, length: 1000) == 2 * 1000 * 64)
        #expect(CoreKernels.stateElements(spec: twoMamba, keyDim: 64, valueDim: 64, fullSecondOrder: true) == 64 * 4096 + 4096)
    }
}
