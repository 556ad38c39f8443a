import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants

extension Calibration {
    /// The gradient verdict's calibration (Proofs/T9, "Gradients"): in one
    /// declared arithmetic, on one seeded problem with upstream gradient `dO`,
    ///
    /// - **correct** backward kernels the baselines do not use (chunked at
    ///   C = 16, 32, 48; for TF32 the tiled form with truncated operands) must
    ///   pass on every gradient;
    /// - **planted bugs** on the correct chunked C = 48 gradients must fail:
    ///   each gradient scaled uniformly at `uniformBugSize ×` the baselines' own
    ///   error of that gradient, one row of `dq`/`dk`/`dv` off at `bugSize ×`,
    ///   one `da` element off at `bugSize ×`, the initial-state gradient scaled
    ///   at `bugSize ×`; and gross ones: `da` with its sign flipped, `da` from
    ///   the paper's Appendix C.5 read literally (docs/MATH.md §5.1), and an
    ///   un-normalised `dv = Pᵀ·dO` in a sum-normalised core.
    ///
    /// A planted bug's row is named by the gradient it touches; a bug passes
    /// only if *every* gradient passes.
    public static func runGradients(spec: CoreSpec, arithmetic: DeclaredArithmetic, length: Int, dim: Int,
                                    seed: UInt64, bugSize: Double = 8, uniformBugSize: Double = 4,
                                    policy: VerdictPolicy = .standard) throws -> Outcome {
        let mode = try arithmetic.mode()
        let (outFormat, storage) = storageFormats(mode)
        let core = CoreProblem.random(spec: spec, batch: 1, heads: 2, length: length, keyDim: dim, valueDim: dim,
                                      distribution: .paper, withInitialState: spec.score.hasFeatureMap, seed: seed)
            .rounded(to: storage)
        let problem = GradientProblem.random(core: core, storage: storage, seed: seed)
        let oracle = try Reference.gradients(problem, precision: 128)
        let settings = ComparisonSettings(format: outFormat, policy: policy, arithmetic: arithmetic,
                                          finalStateFormat: .binary32)
        let baselines = try GradientComparison.baselineGradients(problem, settings: settings)
        var rows: [Row] = []

        func run(_ form: KernelForm, _ o: KernelOptions) -> CoreGradients? {
            var opts = o
            opts.stateStorage = arithmetic.stateStorage
            opts.splitTF32Products = arithmetic.splitTF32
            return try? CoreBackward.run(problem, form: form, mode: mode, options: opts)
        }
        func candidate(_ g: CoreGradients) -> CandidateGradients {
            func r(_ x: [Double]?) -> [Double]? { x?.map { outFormat.round($0) } }
            return CandidateGradients(dq: r(g.dq), dk: r(g.dk), dv: r(g.dv), da: r(g.da),
                                      dInitialState: r(g.dInitialState), dInitialStateZ: r(g.dInitialStateZ))
        }
        func judge(_ name: String, _ c: CandidateGradients, correct: Bool) throws {
            let cases = try GradientComparison.compare(problem: problem, candidate: c, name: name, settings: settings,
                                                       oracle: oracle, baselines: baselines)
            rows.append(Row(candidate: name, correct: correct, cases: cases))
        }

        // Correct kernels.
        var reference: CoreGradients?
        for c in [16, 32, 48] where c < arithmetic.chunkSize {
            guard let g = run(.chunked, KernelOptions(chunkSize: c)) else { continue }
            if c == 48 { reference = g }
            try judge("backward chunked C=\(c)", candidate(g), correct: true)
        }
        if mode == .tf32, let g = run(.tiled, KernelOptions(tileSize: 32, tf32Truncation: true)) {
            try judge("backward tiled, TF32 by truncation", candidate(g), correct: true)
        }
        // FLA's habit for first-order un-normalised cores: da from the identity
        // dL_t = q_t·dq_t − k_t·dk_t (`GradientComparison.identityDecayGradient`),
        // here from the C = 48 kernel's own dq, dk.
        if let g = reference, let id = GradientComparison.identityDecayGradient(problem.core, dq: g.dq, dk: g.dk) {
            var cand = candidate(g)
            cand.da = id.da.map { outFormat.round($0) }
            try judge("da from q·dq − k·dk (FLA's habit)", cand, correct: true)
        }
        guard let base = reference else {
            return Outcome(core: spec.name, arithmetic: arithmetic.name + " (gradients)", length: length, seed: seed,
                           prefixSums: false, rows: rows, uniformFloorRatio: .nan, rowFloorRatio: .nan,
                           baselineRelativeError: .nan)
        }
        let good = candidate(base)

        // The baselines' own error of one gradient, ‖b − y‖₂ (the largest over baselines).
        func baselineError(_ pick: (CoreGradients) -> [Double]?, _ y: [BigFloat]?) -> Double {
            guard let y = y?.map(\.doubleValue) else { return 0 }
            return baselines.compactMap { pick($0).map { b in norm(zip(b, y).map { outFormat.round($0) - $1 }) } }
                .max() ?? 0
        }
        typealias Slot = WritableKeyPath<CandidateGradients, [Double]?>
        let slots: [(String, Slot, (CoreGradients) -> [Double]?, [BigFloat]?, Int)] = [
            ("dq", \.dq, { $0.dq }, oracle.dq, dim), ("dk", \.dk, { $0.dk }, oracle.dk, dim),
            ("dv", \.dv, { $0.dv }, oracle.dv, dim), ("da", \.da, { $0.da }, oracle.da, 1),
            ("dinitial_state", \.dInitialState, { $0.dInitialState }, oracle.dInitialState, dim),
        ]
        /// `good` with `direction` added to one gradient, sized at `size ×` that gradient's baseline error.
        func planted(_ name: String, _ slot: Slot, _ eb: Double, _ direction: [Double], size: Double) throws {
            let d = norm(direction)
            guard d > 0, eb > 0, let x = good[keyPath: slot] else { return }
            var c = good
            c[keyPath: slot] = zip(x, direction).map { outFormat.round($0 + size * eb / d * $1) }
            try judge(name, c, correct: false)
        }
        let t = length / 2
        for (tensor, slot, pick, y, width) in slots {
            guard let x = good[keyPath: slot], y != nil else { continue }
            let eb = baselineError(pick, y)
            try planted("\(tensor) uniform scale \(fmt(uniformBugSize))x", slot, eb, x, size: uniformBugSize)
            if width > 1 && tensor != "dinitial_state" {
                try planted("\(tensor) one row \(fmt(bugSize))x", slot, eb,
                            x.enumerated().map { ($0.offset / width) % length == t ? $0.element : 0 }, size: bugSize)
            } else if tensor == "da" {
                try planted("da one element \(fmt(bugSize))x", slot, eb,
                            x.indices.map { $0 % length == t ? 1 : 0 }, size: bugSize)
            }
        }
        if let da = good.da {
            var c = good
            c.da = da.map { -$0 }
            try judge("da sign flipped", c, correct: false)
        }
        if spec.hasDecay, spec.normalization == .sum,
           let literal = try? Reference.gradientsPaperC5Literal(problem, precision: 128), let da = literal.da {
            var c = good
            c.da = da.map { outFormat.round($0.doubleValue) }
            try judge("da from Appendix C.5 read literally", c, correct: false)
        }
        if spec.normalization == .sum {
            var plain = problem
            plain.core.spec = CoreSpec(score: spec.score, hasDecay: spec.hasDecay, normalization: .none)
            if plain.core.initialState != nil { plain.core.initialState?.z = nil }
            if let g = try? Reference.gradients(plain, precision: 128) {
                var c = good
                c.dv = g.dv.map { outFormat.round($0.doubleValue) }
                try judge("un-normalised dv", c, correct: false)
            }
        }
        return Outcome(core: spec.name, arithmetic: arithmetic.name + " (gradients)", length: length, seed: seed,
                       prefixSums: false, rows: rows, uniformFloorRatio: .nan, rowFloorRatio: .nan,
                       baselineRelativeError: .nan)
    }

    /// The candidate's output format and input storage for a precision mode.
    static func storageFormats(_ mode: PrecisionMode) -> (NumberFormat, InputStorage) {
        let out: NumberFormat = mode == .float16 || mode == .float16Acc32 ? .binary16
            : (mode == .bfloat16Acc32 ? .bfloat16 : .binary32)
        let storage: InputStorage = out == .binary16 ? .float16 : (out == .bfloat16 ? .bfloat16 : .float32)
        return (out, storage)
    }
}
