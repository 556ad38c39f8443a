import Dispatch
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaTensors
import MambaVariants

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Gradients a kernel under test produced for a `GradientProblem`, any
/// subset, in canonical `[B, H, …]` order.
public struct CandidateGradients: Sendable {
    /// `∂ℓ/∂q`, `[B, H, N, dk]`.
    public var dq: [Double]?
    /// `∂ℓ/∂k`, `[B, H, N, dk]`.
    public var dk: [Double]?
    /// `∂ℓ/∂v`, `[B, H, N, dv]`.
    public var dv: [Double]?
    /// `∂ℓ/∂a` with respect to the per-step log-decays (FLA's `dg`), `[B, H, N]`.
    public var da: [Double]?
    /// `∂ℓ/∂L` with respect to the inclusive prefix sums (`dA_cumsum`), `[B, H, N]`.
    public var daCumsum: [Double]?
    /// `∂ℓ/∂S₀`, `[B, H, F, dv]` (FLA convention).
    public var dInitialState: [Double]?
    /// `∂ℓ/∂z₀`, `[B, H, F]`.
    public var dInitialStateZ: [Double]?

    public init(dq: [Double]? = nil, dk: [Double]? = nil, dv: [Double]? = nil, da: [Double]? = nil,
                daCumsum: [Double]? = nil, dInitialState: [Double]? = nil, dInitialStateZ: [Double]? = nil) {
        self.dq = dq
        self.dk = dk
        self.dv = dv
        self.da = da
        self.daCumsum = daCumsum
        self.dInitialState = dInitialState
        self.dInitialStateZ = dInitialStateZ
    }

    /// Every gradient a MambaCheck backward kernel returned.
    public init(_ g: CoreGradients) {
        self.init(dq: g.dq, dk: g.dk, dv: g.dv, da: g.da, daCumsum: g.dL, dInitialState: g.dInitialState,
                  dInitialStateZ: g.dInitialStateZ)
    }

    /// True when no gradient is given.
    public var isEmpty: Bool {
        dq == nil && dk == nil && dv == nil && da == nil && daCumsum == nil && dInitialState == nil
            && dInitialStateZ == nil
    }
}

/// A candidate gradient the problem does not have (e.g. `da` for a core
/// without decay, `dinitial_state` without an initial state).
public enum GradientComparisonError: Error, Equatable, CustomStringConvertible {
    case notApplicable(tensor: String, reason: String)
    case nothingToCompare

    public var description: String {
        switch self {
        case let .notApplicable(tensor, reason): return "candidate gradient '\(tensor)' does not apply: \(reason)"
        case .nothingToCompare: return "no candidate gradient (dq, dk, dv, da or da_cumsum) to compare"
        }
    }
}

/// Per-element magnitudes of every gradient of a `GradientProblem`: the
/// scale against which rounding errors of a correct backward pass are
/// measured, as `ReferenceOutput.magnitude` and `accumulationMagnitude` are
/// for the output (see `GradientComparison.magnitudes` for the derivation).
/// Layouts as the gradients.
public struct GradientMagnitudes: Sendable {
    /// The two parts of one tensor's magnitudes, combined like the forward's
    /// (`KernelComparison.effectiveMagnitude`).
    public struct Parts: Sendable {
        /// Roundings at the storage format (one per stage and term).
        public var storage: [Double]
        /// The extra sensitivity to roundings made while forming weights and
        /// decays at the accumulation precision (`q·k`, φ₂, `L_i − L_j`).
        public var accumulation: [Double]

        /// `storage + ratio·growth·(storage + accumulation)`, the verdict's magnitude.
        public func effective(ratio: Double, growth: Double) -> [Double] {
            KernelComparison.effectiveMagnitude(storage: storage, accumulation: accumulation, ratio: ratio, growth: growth)
        }

        /// `storage + accumulation`: every rounding at one unit roundoff.
        public var total: [Double] { zip(storage, accumulation).map { $0 + $1 } }
    }

    public var dq: Parts
    public var dk: Parts
    public var dv: Parts
    /// Of `∂ℓ/∂L` (`da_cumsum`), nil without decay.
    public var dL: Parts?
    /// Of `∂ℓ/∂a`, nil without decay.
    public var da: Parts?
    public var dInitialState: Parts?
    public var dInitialStateZ: Parts?
}

/// How the rounding of a decay exponent `L_i − L_j` is modelled in the
/// gradient magnitudes.
public enum DecayConditioning: Sendable {
    /// Formed to working accuracy as a segment sum: relative error of the
    /// factor `∝ u·|L_i − L_j|` (chunk-local prefix sums; the forward
    /// verdict's convention).
    case segment
    /// Formed as a difference of global prefix sums: `∝ u·(|L_i| + |L_j|)`
    /// (the quadratic and tiled forms; the prefix-sum hazard of docs/MATH.md §6).
    case globalPrefix
}

/// Judges a candidate backward kernel's gradients against the MPFR gradient
/// oracle (`Reference.gradients`), with the same conditioning-aware verdict
/// as the forward (`VerdictPolicy`, `Verdict`): MambaCheck's own backward
/// kernels (`CoreBackward`) in the candidate's precision mode are the
/// FA3-style baselines (chunked and quadratic forms by default,
/// `ComparisonSettings.baselineForms`), and each element's allowance scales
/// with its magnitude (`magnitudes`).
public enum GradientComparison {
    /// One report case per candidate gradient, named `name`, tensors `dq`,
    /// `dk`, `dv`, `da`, `da_cumsum`, `dinitial_state`, `dinitial_state_z`.
    ///
    /// - Parameters:
    ///   - oracle: a precomputed `Reference.gradients(problem)`, or nil to compute it at `settings.precision`.
    ///   - baselines: precomputed baseline gradients, or nil to run `baselineGradients`.
    /// - Throws: `GradientComparisonError` for a gradient the problem does not
    ///   have or an empty candidate; `VerificationError` for wrong element
    ///   counts; the oracle's and kernels' errors for an invalid problem.
    public static func compare(problem: GradientProblem, candidate: CandidateGradients, name: String,
                               settings: ComparisonSettings, oracle: ReferenceGradients? = nil,
                               baselines precomputed: [CoreGradients]? = nil) throws -> [ReportCase] {
        let start = DispatchTime.now().uptimeNanoseconds
        let core = problem.core
        if candidate.isEmpty { throw GradientComparisonError.nothingToCompare }
        if !core.spec.hasDecay {
            if candidate.da != nil { throw GradientComparisonError.notApplicable(tensor: "da", reason: "the \(core.spec.name) core has no decay") }
            if candidate.daCumsum != nil { throw GradientComparisonError.notApplicable(tensor: "da_cumsum", reason: "the \(core.spec.name) core has no decay") }
        }
        if core.initialState == nil {
            if candidate.dInitialState != nil || candidate.dInitialStateZ != nil {
                throw GradientComparisonError.notApplicable(tensor: "dinitial_state", reason: "the problem has no initial state")
            }
        } else if core.spec.normalization != .sum && candidate.dInitialStateZ != nil {
            throw GradientComparisonError.notApplicable(tensor: "dinitial_state_z", reason: "the \(core.spec.name) core is not sum-normalised")
        }
        let ref = try oracle ?? Reference.gradients(problem, precision: settings.precision)
        let bases = try precomputed ?? baselineGradients(problem, settings: settings)
        let ratio = KernelComparison.accumulationRatio(format: settings.format, mode: settings.effectiveMode)
        let growth = KernelComparison.lengthFactor(core)
        let parts = magnitudes(problem)
        func eff(_ x: GradientMagnitudes.Parts?) -> [Double]? { x?.effective(ratio: ratio, growth: growth) }
        let mags = (dq: eff(parts.dq)!, dk: eff(parts.dk)!, dv: eff(parts.dv)!, da: eff(parts.da), dL: eff(parts.dL),
                    dInitialState: eff(parts.dInitialState), dInitialStateZ: eff(parts.dInitialStateZ))
        let b = core.batch, h = core.heads, n = core.length, dk = core.keyDim, dv = core.valueDim
        let f = core.featureDim ?? 0
        var items: [(String, [Double], [BigFloat]?, [Double]?, [[Double]], [Int])] = []
        if let c = candidate.dq { items.append(("dq", c, ref.dq, mags.dq, bases.map(\.dq), [b, h, n, dk])) }
        if let c = candidate.dk { items.append(("dk", c, ref.dk, mags.dk, bases.map(\.dk), [b, h, n, dk])) }
        if let c = candidate.dv { items.append(("dv", c, ref.dv, mags.dv, bases.map(\.dv), [b, h, n, dv])) }
        if let c = candidate.da { items.append(("da", c, ref.da, mags.da, bases.compactMap(\.da), [b, h, n])) }
        if let c = candidate.daCumsum {
            items.append(("da_cumsum", c, ref.dL, mags.dL, bases.compactMap(\.dL), [b, h, n]))
        }
        if let c = candidate.dInitialState {
            items.append(("dinitial_state", c, ref.dInitialState, mags.dInitialState,
                          bases.compactMap(\.dInitialState), [b, h, f, dv]))
        }
        if let c = candidate.dInitialStateZ {
            items.append(("dinitial_state_z", c, ref.dInitialStateZ, mags.dInitialStateZ,
                          bases.compactMap(\.dInitialStateZ), [b, h, f]))
        }
        // In Float32, modulo a coherent exponential bias, as the outputs
        // (`CoherentExponentialBias`): the biased recurrent backward is a yardstick there.
        let bias = settings.effectiveMode == .float32
            ? CoherentExponentialBias.gradientDirections(problem, options: settings.kernelOptions) : nil
        let directions: [String: [Double]] = bias.map { d in
            var m = ["dq": d.dq, "dk": d.dk, "dv": d.dv]
            m["da"] = d.da
            m["da_cumsum"] = d.dL
            m["dinitial_state"] = d.dInitialState
            m["dinitial_state_z"] = d.dInitialStateZ
            return m
        } ?? [:]
        var cases: [ReportCase] = []
        let setup = KernelComparison.seconds(since: start)
        for (tensor, cand, oracleValues, magnitude, baseline, shape) in items {
            guard let oracleValues, let magnitude else {
                throw GradientComparisonError.notApplicable(tensor: tensor, reason: "the oracle has no such gradient")
            }
            let t0 = DispatchTime.now().uptimeNanoseconds
            let format = settings.gradientFormats[tensor] ?? settings.format
            let condition = zip(magnitude, oracleValues).map { m, y -> Double in
                let a = Swift.abs(y.doubleValue)
                return a == 0 ? (m == 0 ? 1 : .infinity) : Swift.max(1, m / a)
            }
            let metrics = try TensorMetrics(candidate: cand, oracle: oracleValues, shape: shape,
                                            format: format, condition: condition)
            let stored = baseline.map { KernelComparison.stored($0, in: format) }
            let judged = CoherentExponentialBias.judgedModulo(
                candidate: cand, baselines: stored,
                oracle: directions[tensor] == nil ? [] : oracleValues.map(\.doubleValue),
                direction: directions[tensor], groups: core.batch * core.heads)
            let verdict = LooseDeclaration.noted(CoherentExponentialBias.noted(
                try settings.policy.judgeGradient(candidate: judged.candidate, oracle: oracleValues, magnitude: magnitude,
                                                  baselines: judged.baselines, shape: shape, format: format,
                                                  suffixSums: tensor == "da"),
                gamma: judged.gamma), storage: format, arithmetic: settings.effectiveArithmetic)
            cases.append(ReportCase(name: name, tensor: tensor, metrics: metrics, verdict: verdict,
                                    durationSeconds: KernelComparison.seconds(since: t0) + (cases.isEmpty ? setup : 0)))
        }
        return cases
    }

    /// MambaCheck's backward kernels in `settings.effectiveMode`, one per
    /// `settings.baselineForms`.
    public static func baselineGradients(_ problem: GradientProblem,
                                         settings: ComparisonSettings) throws -> [CoreGradients] {
        // Every backward form: recurrent and tiled backward passes accumulate
        // in other orders and were measured up to ~7x less accurate than the
        // chunked one on single gradients (da) in float16-acc32; a correct
        // candidate of any form must pass (Proofs/T9).
        var forms = settings.baselineForms
        for f in [KernelForm.recurrent, .tiled] where !forms.contains(f) { forms.append(f) }
        // A declared recurrent form keeps recurrent backward passes only, as its
        // outputs do (`KernelComparison.recurrentBaselines`): the parallel forms'
        // chunk-local prefix sums err more under strong decays (FLA's
        // fused_recurrent_simple_gla, fp32, N = 100: its gradients used at most
        // 0.06 of an allowance set by them).
        let recurrentOnly = settings.effectiveArithmetic.form == .recurrent
        if recurrentOnly { forms = [.recurrent] }
        var out = forms.compactMap {
            try? CoreBackward.run(problem, form: $0, mode: settings.effectiveMode, options: settings.kernelOptions)
        }
        if recurrentOnly, out.isEmpty {  // a core without a recurrent backward keeps every form's
            out = settings.baselineForms.compactMap {
                try? CoreBackward.run(problem, form: $0, mode: settings.effectiveMode, options: settings.kernelOptions)
            }
        }
        // FLA's decay gradient (first-order un-normalised cores): from the
        // identity dL_t = q_t·dq_t − k_t·dk_t applied to a kernel's own dq, dk,
        // which carries their operand-rounding error into da (measured: 1.8x
        // the allowance of the other baselines in tf32, `Calibration.runGradients`).
        // TF32 by truncation (Triton's default tl.dot), as in `KernelComparison.baselineOutputs`.
        if settings.effectiveMode == .tf32 {
            var t = settings.kernelOptions
            t.tf32Truncation = true
            if let g = try? CoreBackward.run(problem, form: recurrentOnly ? .recurrent : .chunked, mode: .tf32, options: t) {
                out.append(g)
            }
        }
        // Chunk-local prefix sums formed in other orders, as in
        // `KernelComparison.baselineOutputs` (Mamba-2 SSD's backward, IEEE fp32).
        if case .perStep = problem.core.decay, settings.effectiveMode != .float16, !recurrentOnly {
            for scan in [PrefixScan.koggeStone, .brentKungBase2] {
                var t = settings.kernelOptions
                t.prefixScan = scan
                if let g = try? CoreBackward.run(problem, form: .chunked, mode: settings.effectiveMode, options: t) {
                    out.append(g)
                }
            }
        }
        // Biased GPU exponentials compounding over per-step decays, as in
        // `KernelComparison.baselineOutputs` (Float32 only: elsewhere operand rounding dominates).
        if settings.effectiveMode == .float32, let biased = KernelComparison.exponentialBiasProblem(problem.core),
           let g = try? CoreBackward.run(GradientProblem(core: biased, dO: problem.dO), form: .recurrent,
                                         mode: .float32, options: settings.kernelOptions) {
            out.append(g)
        }
        // q and k pre-scaled by √s (PyTorch's math SDPA backend), as in
        // `KernelComparison.baselineOutputs`; its dq, dk are the scaled ones' times √s.
        if settings.effectiveMode == .float32, !recurrentOnly,
           let habit = KernelComparison.splitScaleProblem(problem.core),
           var g = try? CoreBackward.run(GradientProblem(core: habit.problem, dO: problem.dO), form: .quadratic,
                                         mode: .float32, options: settings.kernelOptions) {
            g.dq = g.dq.map { Double(Float($0) * habit.factor) }
            g.dk = g.dk.map { Double(Float($0) * habit.factor) }
            out.append(g)
        }
        // Products summed in one fused chain per element, on the problem and on its √s
        // habit, as in `KernelComparison.baselineOutputs` (short sequences, Float32).
        if settings.effectiveMode == .float32, !settings.kernelOptions.splitTF32Products, !recurrentOnly,
           problem.core.length <= KernelComparison.sequentialProductsLength {
            var t = settings.kernelOptions
            t.sequentialProducts = true
            if let g = try? CoreBackward.run(problem, form: .quadratic, mode: .float32, options: t) { out.append(g) }
            if let habit = KernelComparison.splitScaleProblem(problem.core),
               var g = try? CoreBackward.run(GradientProblem(core: habit.problem, dO: problem.dO), form: .quadratic,
                                             mode: .float32, options: t) {
                g.dq = g.dq.map { Double(Float($0) * habit.factor) }
                g.dk = g.dk.map { Double(Float($0) * habit.factor) }
                out.append(g)
            }
        }
        // Softmax with one log-sum-exp per row (FlashAttention-2/3, xformers' memory-efficient
        // kernel): the weights recomputed from `lse_i = m_i + log D'_i` carry its rounding,
        // `u·|lse_i|` relative, which short rows' gradients show (Proofs/T9, "One log-sum-exp
        // per row"). Float32 and TF32 only: elsewhere 16-bit operands dominate.
        if problem.core.spec.score == .exponential, problem.core.spec.normalization == .sum, !recurrentOnly,
           settings.effectiveMode == .float32 || settings.effectiveMode == .tf32 {
            var t = settings.kernelOptions
            t.logSumExpBackward = true
            if let g = try? CoreBackward.run(problem, form: .tiled, mode: settings.effectiveMode, options: t) {
                out.append(g)
            }
        }
        // The identity applied to every baseline's own dq, dk (the TF32-truncating one's
        // errors are about 2x the rounding one's; measured on FLA's parallel_simple_gla).
        for g in out where g.da != nil {
            guard let id = identityDecayGradient(problem.core, dq: g.dq, dk: g.dk) else { break }
            var h = g
            h.dL = id.dL
            h.da = id.da
            out.append(h)
        }
        return out
    }

    /// The decay gradients by the identity FLA's backward uses, for
    /// first-order scores (`linear`, `relu-linear`) with decay and no
    /// normalisation: `dL_t = q_t·dq_t − k_t·dk_t` (the row and column sums of
    /// `P ⊙ G`, docs/MATH.md §5; an initial state's term is inside `dq`), and
    /// `da_t = Σ_{u≥t} dL_u`, evaluated in Float32 from Float32 `dq`, `dk` and
    /// the stored `q`, `k` (ReLU applied). Nil for other cores.
    public static func identityDecayGradient(_ core: CoreProblem, dq: [Double], dk: [Double])
        -> (dL: [Double], da: [Double])? {
        let spec = core.spec
        guard spec.hasDecay, spec.normalization == .none, spec.score.traits.power == 1
        else { return nil }
        let n = core.length, w = core.keyDim
        guard dq.count == core.sequences * n * w, dk.count == dq.count else { return nil }
        var dL = [Double](repeating: 0, count: core.sequences * n), da = dL
        for sq in 0..<core.sequences {
            var acc: Float = 0
            for t in stride(from: n - 1, through: 0, by: -1) {
                let r = sq * n + t
                var dot: Float = 0
                for d in 0..<w {
                    let e = r * w + d
                    var qv = Float(core.q[e]), kv = Float(core.k[e])
                    if spec.score.traits.reluOnInputs { qv = Swift.max(qv, 0); kv = Swift.max(kv, 0) }
                    dot += qv * Float(dq[e]) - kv * Float(dk[e])
                }
                acc += dot
                dL[r] = Double(dot)
                da[r] = Double(acc)
            }
        }
        return (dL, da)
    }

    /// Per-element magnitudes of every gradient: for each gradient formula
    /// of docs/MATH.md §5 (as `CoreBackward` evaluates it) the first-order effect of
    /// perturbing every quantity a kernel rounds by one unit roundoff,
    /// summed in Double from the inputs — the analogue of
    /// `ReferenceOutput.magnitude` (storage part) and `accumulationMagnitude`
    /// (accumulation part), combined by the verdict exactly as the forward's
    /// (`GradientMagnitudes.Parts.effective`, `KernelComparison.effectiveMagnitude`).
    /// A correct kernel's error is a small multiple of `u·magnitude`;
    /// `magnitude/|gradient|` is the element's condition number.
    ///
    /// Per sequence, with `X_ij = s·q̃_i·k̃_j`, `A_ij = s·Σ_d|q̃_id k̃_jd|`,
    /// `Γ_ij = e^{L_i−L_j}`, `Λ_ij = |L_i − L_j|` (`.segment`) or
    /// `|L_i| + |L_j|` (`.globalPrefix`; 0 without decay), `w = f(X)Γ`, `f'Γ`
    /// its derivative factor, `G_ij = dO_i·v_j`, `ḡ_ij = Σ_c|dO_ic v_jc|`,
    /// the state features `σ_i = c·e^{L_i}φ(q̃_i)`, `g_i = S₀dO_i` (`ḡ_i` its
    /// terms), and for sum normalisation `D_i`, `O_i`, `δ_i = O_i·dO_i`:
    ///
    /// - accumulation scales of the weights and derivative factors (what
    ///   rounding inside `q·k`, inside φ₂, and in the decay exponent can do):
    ///   `Δw = (w̃ − |w|) + |w|Λ`, `Δf = (f̃' − |f'Γ|) + |f'Γ|Λ` with
    ///   `w̃ = A·Γ`, `A²·Γ`, `|w|(1 + A)` and `f̃' = Γ`, `2A·Γ`, `|w|(1 + A)`
    ///   (linear/relu-linear, squared, exponential; `ReferenceOutput`'s
    ///   accumulation terms), and `Δσ = |σ|·|L_i|`;
    /// - the normaliser's conditions `S_i = (Σ_j|w_ij| + Σ_a|σ_ia z₀_a|)/|D_i|`
    ///   and `S^Δ_i = (Σ_j Δw_ij + Σ_a Δσ_ia|z₀_a|)/|D_i|`;
    /// - `δ̄_i = (Σ_j |w_ij|(ḡ_ij + |G_ij − δ_i|) + Σ_a |σ_ia|(ḡ_ia + |g_ia − δ_i z₀_a|))/|D_i| + Σ_c|O_ic dO_ic|`
    ///   and `δ^Δ_i = (Σ_j Δw_ij|G_ij − δ_i| + Σ_a Δσ_ia|g_ia − δ_i z₀_a|)/|D_i|`;
    /// - `dW_ij = (G_ij − δ_i)/D_i` with `M_ij = (ḡ_ij + δ̄_i + |G_ij − δ_i|S_i)/|D_i|`
    ///   and `ΔM_ij = (δ^Δ_i + |G_ij − δ_i|S^Δ_i)/|D_i|` (un-normalised:
    ///   `dW = G`, `M = ḡ`, `ΔM = 0`, `D = 1`, `S = S^Δ = δ = 0`); the state's
    ///   cotangent `γ_ia = (g_ia − δ_i z₀_a)/D_i` likewise (`M^γ`, `ΔM^γ`).
    ///
    /// Magnitudes, each term written `[storage ‖ accumulation]`:
    ///
    /// - `dq_id`, `dk_jd`: `Σ s·[|f'Γ_ij|M_ij ‖ Δf_ij|dW_ij| + |f'Γ_ij|ΔM_ij]·|k̃_jd|`
    ///   (resp. `|q̃_id|`), plus for `dq` the state term through `|J_φ(q̃_i)|ᵀ`
    ///   of `c·e^{L_i}[M^γ_ia ‖ |L_i||γ_ia| + ΔM^γ_ia]`; relu-linear: 0
    ///   where q ≤ 0 (resp. k), where the gradient is exactly 0;
    /// - `dv_jc: Σ_{i≥j} [|w_ij|(1 + S_i) ‖ Δw_ij + |w_ij|S^Δ_i]·|dO_ic|/|D_i|`;
    /// - `dL_t`: the column part `Σ_{i≥t} [|w_it|M_it ‖ Δw_it|dW_it| + |w_it|ΔM_it]`,
    ///   plus for un-normalised cores the row part
    ///   `Σ_{j≤t} [|w_tj|ḡ_tj ‖ Δw_tj|G_tj|] + Σ_a [|σ_ta|ḡ_ta ‖ Δσ_ta|g_ta|]`;
    /// - `da_t: Σ_{u≥t} m(dL_u)` — the terms a kernel's suffix sum adds (a
    ///   correct `da_0` of a sum-normalised core without state is exactly 0,
    ///   formed from cancelling terms);
    /// - `dS₀_ac: Σ_i [|σ_ia|(1 + S_i) ‖ Δσ_ia + |σ_ia|S^Δ_i]·|dO_ic|/|D_i|`;
    ///   `dz₀_a: Σ_i [|σ_ia|(δ̄_i + |δ_i|S_i) ‖ Δσ_ia|δ_i| + |σ_ia|(δ^Δ_i + |δ_i|S^Δ_i)]/|D_i|`.
    ///
    /// Every part is first order (perturbation counts add; products of two
    /// conditions would be second order and are not formed). Rows with a
    /// zero normaliser (undefined gradients in the oracle) contribute
    /// nothing; a NaN that could only come from `∞·0` in extreme inputs is
    /// reported as +∞. Cost `O(N²(dk + dv) + N·F·dv)` per sequence, in Double.
    public static func magnitudes(_ problem: GradientProblem,
                                  decay conditioning: DecayConditioning = .segment) -> GradientMagnitudes {
        let p = problem.core, n = p.length, dk = p.keyDim, dv = p.valueDim, s = p.scale
        let spec = p.spec, isSum = spec.normalization == .sum
        let f = p.featureDim ?? 0
        let c = spec.score.traits.featureConstant(s)
        /// Storage and accumulation accumulators of one tensor (shared by the workers: each
        /// element is written by one worker at a time, see the sweeps below).
        final class Acc: @unchecked Sendable {
            let s: UnsafeMutablePointer<Double>, a: UnsafeMutablePointer<Double>, count: Int
            init(_ n: Int) {
                count = n
                s = .allocate(capacity: Swift.max(n, 1)); s.initialize(repeating: 0, count: Swift.max(n, 1))
                a = .allocate(capacity: Swift.max(n, 1)); a.initialize(repeating: 0, count: Swift.max(n, 1))
            }
            deinit { s.deallocate(); a.deallocate() }
            @inline(__always)
            func add(_ i: Int, _ storage: Double, _ accumulation: Double) { s[i] += storage; a[i] += accumulation }
            func parts() -> GradientMagnitudes.Parts {
                GradientMagnitudes.Parts(storage: (0..<count).map { s[$0].isNaN ? .infinity : s[$0] },
                                         accumulation: (0..<count).map { a[$0].isNaN ? .infinity : a[$0] })
            }
        }
        let mq = Acc(p.sequences * n * dk), mk = Acc(p.sequences * n * dk)
        let mv = Acc(p.sequences * n * dv)
        let mL: Acc? = spec.hasDecay ? Acc(p.sequences * n) : nil
        let mA: Acc? = spec.hasDecay ? Acc(p.sequences * n) : nil
        let hasState = p.initialState != nil && f > 0
        let mS: Acc? = hasState ? Acc(p.sequences * f * dv) : nil
        let mZ: Acc? = hasState && isSum ? Acc(p.sequences * f) : nil
        let sqrt2 = 2.0.squareRoot()
        let phiScore = spec.score   // applied to q after ReLU: ReLU again changes nothing
        let workers = Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        func parallel(_ count: Int, _ body: @Sendable (Int) -> Void) {
            if workers == 1 || count < 2 { for u in 0..<count { body(u) }; return }
            DispatchQueue.concurrentPerform(iterations: Swift.min(workers, count)) { w in
                for u in stride(from: w, to: count, by: Swift.min(workers, count)) { body(u) }
            }
        }
        // Rows are swept in bands of R. Per band, the row pass (rows in parallel) forms every
        // row-local quantity (the pair terms, the normaliser's conditions, dq, the row part of
        // dL) and stores each pair's column contributions; the column pass (columns and state
        // features in parallel) adds them to dk, dv, the column part of dL, dS₀ and dz₀ in
        // increasing row order. Every element gets the same Double operations in the same order
        // as a single sweep over the rows: the result is bit-identical for any worker count.
        let bandRows = 64
        let pairSlots = 6, stateSlots = 4
        /// The band's stored contributions and the per-column/per-row sums of dL's parts.
        final class Scratch: @unchecked Sendable {
            let band: UnsafeMutablePointer<Double>, stateBand: UnsafeMutablePointer<Double>
            let skip: UnsafeMutablePointer<Bool>, cols: UnsafeMutablePointer<Double>
            init(_ a: Int, _ b: Int, _ c: Int, _ d: Int) {
                band = .allocate(capacity: Swift.max(1, a)); stateBand = .allocate(capacity: Swift.max(1, b))
                skip = .allocate(capacity: Swift.max(1, c)); cols = .allocate(capacity: Swift.max(1, d))
            }
            deinit { band.deallocate(); stateBand.deallocate(); skip.deallocate(); cols.deallocate() }
        }
        let sc = Scratch(bandRows * n * pairSlots, bandRows * f * stateSlots, bandRows, 4 * n)
        for seq in 0..<p.sequences {
            let L = p.prefixSums(sequence: seq)
            let relu = spec.score.traits.reluOnInputs
            let q = (0..<(n * dk)).map { e in relu ? Swift.max(p.q[seq * n * dk + e], 0) : p.q[seq * n * dk + e] }
            let k = (0..<(n * dk)).map { e in relu ? Swift.max(p.k[seq * n * dk + e], 0) : p.k[seq * n * dk + e] }
            let v = Array(p.v[(seq * n * dv)..<((seq + 1) * n * dv)])
            let dO = Array(problem.dO[(seq * n * dv)..<((seq + 1) * n * dv)])
            let s0 = hasState ? Array(p.initialState!.s[(seq * f * dv)..<((seq + 1) * f * dv)]) : []
            let z0 = hasState && isSum ? Array(p.initialState!.z![(seq * f)..<((seq + 1) * f)]) : []
            sc.cols.initialize(repeating: 0, count: 4 * n)
            for i0 in stride(from: 0, to: n, by: bandRows) {
                let i1 = Swift.min(n, i0 + bandRows)
                // Row pass.
                parallel(i1 - i0) { r in
                    let i = i0 + r
                    // Per pair j of the row.
                    var w = [Double](repeating: 0, count: i + 1), dw = w, fp = w, df = w, gs = w, gb = w
                    // Per feature a of the row's state term.
                    var sig = [Double](repeating: 0, count: f), g0 = sig, g0b = sig, hS = sig, hA = sig
                    let li = L?[i] ?? 0
                    for j in 0...i {
                        var x = 0.0, aa = 0.0
                        for d in 0..<dk { let t = q[i * dk + d] * k[j * dk + d]; x += t; aa += Swift.abs(t) }
                        x *= s; aa *= s
                        let lam = L.map { l in
                            conditioning == .segment ? Swift.abs(l[i] - l[j]) : Swift.abs(l[i]) + Swift.abs(l[j])
                        } ?? 0
                        let gam = L.map { exp($0[i] - $0[j]) } ?? 1
                        var wij: Double, fpij: Double, wt: Double, ft: Double
                        switch spec.score {
                        case .linear, .reluLinear:
                            wij = x * gam; fpij = gam; wt = aa * gam; ft = gam
                        case .squared:
                            wij = x * x * gam; fpij = 2 * Swift.abs(x) * gam; wt = aa * aa * gam; ft = 2 * aa * gam
                        case .exponential:
                            wij = L.map { exp(x + $0[i] - $0[j]) } ?? exp(x)
                            fpij = wij; wt = wij * (1 + aa); ft = wt
                        }
                        let aw = Swift.abs(wij)
                        w[j] = wij
                        dw[j] = Swift.max(0, wt - aw) + aw * lam
                        fp[j] = fpij
                        df[j] = Swift.max(0, ft - fpij) + fpij * lam
                        var g = 0.0, gbar = 0.0
                        for col in 0..<dv { let t = dO[i * dv + col] * v[j * dv + col]; g += t; gbar += Swift.abs(t) }
                        gs[j] = g; gb[j] = gbar
                    }
                    let stateScale = c * (L.map { exp($0[i]) } ?? 1)
                    if hasState {
                        let phi = FeatureMap.apply(phiScore, (0..<dk).map { q[i * dk + $0] })
                        for a in 0..<f {
                            sig[a] = stateScale * phi[a]
                            var t = 0.0, tb = 0.0
                            for col in 0..<dv { let x = s0[a * dv + col] * dO[i * dv + col]; t += x; tb += Swift.abs(x) }
                            g0[a] = t; g0b[a] = tb
                        }
                    }
                    // Normaliser, δ and their conditions (un-normalised: D = 1, δ = 0).
                    var inv = 1.0, cond = 0.0, condA = 0.0, delta = 0.0, deltaBar = 0.0, deltaA = 0.0
                    let skip = sc.skip, band = sc.band, stateBand = sc.stateBand
                    let rowS = sc.cols + 2 * n, rowA = sc.cols + 3 * n
                    skip[r] = false
                    if isSum {
                        var den = 0.0, denBar = 0.0, denA = 0.0
                        var num = [Double](repeating: 0, count: dv)
                        for j in 0...i {
                            den += w[j]; denBar += Swift.abs(w[j]); denA += dw[j]
                            for col in 0..<dv { num[col] += w[j] * v[j * dv + col] }
                        }
                        for a in 0..<(hasState ? f : 0) {
                            den += sig[a] * z0[a]
                            denBar += Swift.abs(sig[a] * z0[a])
                            denA += Swift.abs(sig[a] * z0[a]) * Swift.abs(li)
                            for col in 0..<dv { num[col] += sig[a] * s0[a * dv + col] }
                        }
                        if den == 0 { skip[r] = true; return }  // undefined row: contributes nothing
                        inv = 1 / Swift.abs(den)
                        cond = denBar * inv
                        condA = denA * inv
                        var od = 0.0
                        for col in 0..<dv { let t = num[col] / den * dO[i * dv + col]; delta += t; od += Swift.abs(t) }
                        var tb = 0.0, ta = 0.0
                        for j in 0...i {
                            let e = Swift.abs(gs[j] - delta)
                            tb += Swift.abs(w[j]) * (gb[j] + e); ta += dw[j] * e
                        }
                        for a in 0..<(hasState ? f : 0) {
                            let e = Swift.abs(g0[a] - delta * z0[a])
                            tb += Swift.abs(sig[a]) * (g0b[a] + e); ta += Swift.abs(sig[a]) * Swift.abs(li) * e
                        }
                        deltaBar = tb * inv + od
                        deltaA = ta * inv
                    }
                    // Row i's pairs: dq here, the column contributions stored for the column pass.
                    var rS = 0.0, rA = 0.0
                    for j in 0...i {
                        let e = Swift.abs(gs[j] - delta), aw = Swift.abs(w[j])
                        let dW = e * inv
                        let m = (gb[j] + deltaBar + e * cond) * inv
                        let mAcc = (deltaA + e * condA) * inv
                        let ts = s * fp[j] * m, ta = s * (df[j] * dW + fp[j] * mAcc)
                        for d in 0..<dk {
                            let kd = Swift.abs(k[j * dk + d])
                            mq.add((seq * n + i) * dk + d, ts * kd, ta * kd)
                        }
                        let ys = aw * (1 + cond) * inv, ya = (dw[j] + aw * condA) * inv
                        let slot = band + (r * n + j) * pairSlots
                        slot[0] = ts; slot[1] = ta; slot[2] = ys; slot[3] = ya
                        slot[4] = aw * m
                        slot[5] = dw[j] * dW + aw * mAcc
                        rS += aw * gb[j]; rA += dw[j] * Swift.abs(gs[j])
                    }
                    if hasState {
                        // The state's share of dq (through |J_φ|ᵀ) and the row part of dL here; dS₀, dz₀ stored.
                        let ss = Swift.abs(stateScale)
                        for a in 0..<f {
                            let e = Swift.abs(g0[a] - delta * (isSum ? z0[a] : 0))
                            let za = isSum ? Swift.abs(z0[a]) : 0
                            hS[a] = ss * (g0b[a] + deltaBar * za + e * cond) * inv
                            hA[a] = ss * (Swift.abs(li) * e + deltaA * za + e * condA) * inv
                            let sa = Swift.abs(sig[a]), saA = sa * Swift.abs(li)
                            rS += sa * g0b[a]; rA += saA * Swift.abs(g0[a])
                            let slot = stateBand + (r * f + a) * stateSlots
                            slot[0] = sa * (1 + cond) * inv; slot[1] = (saA + sa * condA) * inv
                            if isSum {
                                let ad = Swift.abs(delta)
                                slot[2] = sa * (deltaBar + ad * cond) * inv
                                slot[3] = (saA * ad + sa * (deltaA + ad * condA)) * inv
                            }
                        }
                        let qi = (0..<dk).map { Swift.abs(q[i * dk + $0]) }
                        let base = (seq * n + i) * dk
                        switch spec.score.traits.featureMap {
                        case .packedSecondOrder:
                            var idx = 0
                            for a in 0..<dk {
                                mq.add(base + a, 2 * qi[a] * hS[idx], 2 * qi[a] * hA[idx])
                                idx += 1
                                for b in (a + 1)..<Swift.max(dk, a + 1) {
                                    mq.add(base + a, sqrt2 * qi[b] * hS[idx], sqrt2 * qi[b] * hA[idx])
                                    mq.add(base + b, sqrt2 * qi[a] * hS[idx], sqrt2 * qi[a] * hA[idx])
                                    idx += 1
                                }
                            }
                        case .identity, .relu, nil:
                            for a in 0..<dk { mq.add(base + a, hS[a], hA[a]) }
                        }
                    }
                    if !isSum { rowS[i] = rS; rowA[i] = rA }
                }
                // Column pass: columns j < i1, then state features a, each over the band's rows in order.
                parallel(i1 + (hasState ? f : 0)) { u in
                    let skip = sc.skip, band = sc.band, stateBand = sc.stateBand
                    let colS = sc.cols, colA = sc.cols + n
                    if u < i1 {
                        let j = u
                        for i in Swift.max(i0, j)..<i1 where !skip[i - i0] {
                            let slot = band + ((i - i0) * n + j) * pairSlots
                            let ts = slot[0], ta = slot[1], ys = slot[2], ya = slot[3]
                            for d in 0..<dk {
                                let qd = Swift.abs(q[i * dk + d])
                                mk.add((seq * n + j) * dk + d, ts * qd, ta * qd)
                            }
                            for col in 0..<dv {
                                let o = Swift.abs(dO[i * dv + col])
                                mv.add((seq * n + j) * dv + col, ys * o, ya * o)
                            }
                            colS[j] += slot[4]
                            colA[j] += slot[5]
                        }
                    } else {
                        let a = u - i1
                        for i in i0..<i1 where !skip[i - i0] {
                            let slot = stateBand + ((i - i0) * f + a) * stateSlots
                            for col in 0..<dv {
                                let o = Swift.abs(dO[i * dv + col])
                                mS!.add((seq * f + a) * dv + col, slot[0] * o, slot[1] * o)
                            }
                            if isSum { mZ!.add(seq * f + a, slot[2], slot[3]) }
                        }
                    }
                }
            }
            if relu {
                for e in 0..<(n * dk) {
                    if !(p.q[seq * n * dk + e] > 0) { mq.s[seq * n * dk + e] = 0; mq.a[seq * n * dk + e] = 0 }
                    if !(p.k[seq * n * dk + e] > 0) { mk.s[seq * n * dk + e] = 0; mk.a[seq * n * dk + e] = 0 }
                }
            }
            if spec.hasDecay {
                let colS = sc.cols, colA = sc.cols + n, rowS = sc.cols + 2 * n, rowA = sc.cols + 3 * n
                // FLA's identity dL_t = q_t·dq_t − k_t·dk_t (`identityDecayGradient`), formed from a
                // kernel's own dq and dk, carries their errors: to first order
                // Σ_d |q_td|·m(dq_td) + |k_td|·m(dk_td). Where it cancels (a sequence's last step,
                // a single term) this exceeds the direct terms: FLA's fused_recurrent_simple_gla
                // (fp32 and bf16, N = 777) erred at 1.1x the allowance there without it.
                let identity = spec.normalization == .none && spec.score.traits.power == 1
                var sufS = 0.0, sufA = 0.0
                for t in stride(from: n - 1, through: 0, by: -1) {
                    var ms = colS[t] + rowS[t], ma = colA[t] + rowA[t]
                    if identity {
                        for d in 0..<dk {
                            let e = (seq * n + t) * dk + d
                            let qd = Swift.abs(p.q[e]), kd = Swift.abs(p.k[e])
                            ms += qd * mq.s[e] + kd * mk.s[e]
                            ma += qd * mq.a[e] + kd * mk.a[e]
                        }
                    }
                    sufS += ms; sufA += ma
                    mL!.add(seq * n + t, ms, ma)
                    mA!.add(seq * n + t, sufS, sufA)
                }
            }
        }
        return GradientMagnitudes(dq: mq.parts(), dk: mk.parts(), dv: mv.parts(), dL: mL?.parts(), da: mA?.parts(),
                                  dInitialState: mS?.parts(), dInitialStateZ: mZ?.parts())
    }
}

extension KernelDump {
    /// Names of the upstream gradient `∂ℓ/∂O` in an inputs file.
    public static let upstreamNames = ["do"]
    /// Candidate gradient names, canonical name first: `dq`, `dk`, `dv`,
    /// `da` (alias `dg`: per-step log-decay), `da_cumsum` (aliases
    /// `dA_cumsum`, `dg_cumsum`: prefix sums), `dinitial_state` (alias `dh0`),
    /// `dinitial_state_z`.
    public static let gradientNames: [[String]] = [["dq"], ["dk"], ["dv"], ["da", "dg"],
                                                   ["da_cumsum", "dA_cumsum", "dg_cumsum"],
                                                   ["dinitial_state", "dh0"], ["dinitial_state_z"]]

    /// The upstream gradient `do` (same shape and layout as `v`) as a
    /// `GradientProblem` with `core`.
    ///
    /// - Throws: `DumpError.missingArray` without `do`, `.wrongShape`,
    ///   `.nonFinite` for NaN/Inf entries.
    public static func gradientProblem(_ arrays: [String: TensorData], file: String, core: CoreProblem,
                                       layout: TensorLayout) throws -> GradientProblem {
        let shape = [core.batch, core.heads, core.length, core.valueDim]
        guard let name = upstreamNames.first(where: { arrays[$0] != nil }) else {
            throw DumpError.missingArray(file: file, names: upstreamNames,
                                         purpose: "gradients need the upstream gradient dL/dO, same shape as v: \(fileShape(shape, layout)) (\(layout.rawValue))")
        }
        let values = try candidate(arrays, name: name, file: file, layout: layout, expectedCanonicalShape: shape)
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            let t = arrays[name]!
            let fileOffset = layout == .bnhd ? fileOffsetOfBHND(i, canonicalShape: shape) : i
            throw DumpError.nonFinite(file: file, array: name, index: TensorShape.index(ofOffset: fileOffset, in: t.shape), value: values[i])
        }
        return GradientProblem(core: core, dO: values)
    }

    /// The candidate gradients present in `arrays` (any subset of
    /// `gradientNames`), in canonical order; shapes are checked against the
    /// problem (`dq`, `dk` like q; `dv` like v; `da`, `da_cumsum` `[B,H,N]`
    /// or `[B,N,H]`; states `[B,H,F,dv]`, `[B,H,F]`). Non-finite values are
    /// kept (they are verification failures).
    public static func candidateGradients(_ arrays: [String: TensorData], file: String, core: CoreProblem,
                                          layout: TensorLayout) throws -> CandidateGradients {
        let (b, h, n, dk, dv) = (core.batch, core.heads, core.length, core.keyDim, core.valueDim)
        func read(_ names: [String], _ shape: [Int], layout: TensorLayout?) throws -> [Double]? {
            guard let name = names.first(where: { arrays[$0] != nil }) else { return nil }
            return try candidate(arrays, name: name, file: file, layout: layout, expectedCanonicalShape: shape)
        }
        var g = CandidateGradients()
        g.dq = try read(gradientNames[0], [b, h, n, dk], layout: layout)
        g.dk = try read(gradientNames[1], [b, h, n, dk], layout: layout)
        g.dv = try read(gradientNames[2], [b, h, n, dv], layout: layout)
        g.da = try read(gradientNames[3], [b, h, n], layout: layout)
        g.daCumsum = try read(gradientNames[4], [b, h, n], layout: layout)
        if let f = core.featureDim {
            g.dInitialState = try read(gradientNames[5], [b, h, f, dv], layout: nil)
            g.dInitialStateZ = try read(gradientNames[6], [b, h, f], layout: nil)
        }
        return g
    }

    /// The offset in a `[B,N,H,…]` file of canonical (`[B,H,N,…]`) offset `i`.
    static func fileOffsetOfBHND(_ i: Int, canonicalShape s: [Int]) -> Int {
        let inner = s.dropFirst(3).reduce(1, *)
        let (h, n) = (s[1], s[2])
        let e = i % inner, rest = i / inner
        let t = rest % n, hi = (rest / n) % h, bi = rest / (n * h)
        return ((bi * n + t) * h + hi) * inner + e
    }
}
