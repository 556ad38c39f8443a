import Dispatch
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants

/// What a kernel under test produced for a core problem (canonical `[B,H,…]` order).
public struct CandidateTensors: Sendable {
    /// `[B, H, N, dv]`
    public var o: [Double]
    /// Final state in FLA's convention, when the kernel returns one.
    public var finalState: CoreState?
    public init(o: [Double], finalState: CoreState? = nil) { self.o = o; self.finalState = finalState }
}

/// How a candidate is judged (see `VerdictPolicy` and Proofs/T9-verdict.md).
public struct ComparisonSettings: Sendable {
    /// The candidate's storage format (its outputs' precision).
    public var format: NumberFormat
    /// Storage format of the candidate's final state (nil: `format`), e.g.
    /// binary32 for a half kernel that returns its state in Float32.
    public var finalStateFormat: NumberFormat?
    /// Storage formats of individual gradients, by canonical name (`"da"`,
    /// `"dinitial_state"`, …), where a dump stores them in another format than
    /// `format` — e.g. FLA's Float32 `dg` and `dh0` beside bf16 `dq`. Judging a
    /// Float32 gradient as bf16 stores the baselines' values in bf16 and lets the
    /// candidate err by bf16's rounding (measured: FLA's fused_recurrent bf16 `dg`
    /// used 4e-5 of such an allowance).
    public var gradientFormats: [String: NumberFormat] = [:]
    public var policy: VerdictPolicy
    /// MPFR working precision of the oracle (bits).
    public var precision: Int
    /// Forms of MambaCheck's own kernels run in the candidate's arithmetic
    /// as FA3-style baselines; the largest baseline error counts.
    public var baselineForms: [KernelForm]
    /// Options of the baseline kernels; products in 3xTF32 where the declared
    /// arithmetic says so (`DeclaredArithmetic.splitTF32`).
    public var kernelOptions: KernelOptions {
        get {
            var o = baseKernelOptions
            if effectiveArithmetic.splitTF32 { o.splitTF32Products = true }
            return o
        }
        set { baseKernelOptions = newValue }
    }
    private var baseKernelOptions: KernelOptions
    /// The precision mode that models the candidate (legacy; `arithmetic` wins when set).
    public var mode: PrecisionMode?
    /// The candidate's declared arithmetic (nil: from `mode`, else assumed from `format`).
    public var arithmetic: DeclaredArithmetic?
    /// Explain a failure by re-judging in looser arithmetics (costs extra baseline runs on failure only).
    public var explainFailures: Bool

    /// The arithmetic the candidate is judged in.
    public var effectiveArithmetic: DeclaredArithmetic {
        if let arithmetic { return arithmetic }
        if let mode { return KernelComparison.arithmetic(for: mode) }
        return DeclaredArithmetic.assumed(forStorage: format)
    }

    /// The mode the baselines run in.
    public var effectiveMode: PrecisionMode {
        (try? effectiveArithmetic.mode()) ?? mode ?? KernelComparison.mode(for: format)
    }

    public init(format: NumberFormat = .binary32, policy: VerdictPolicy = .standard, precision: Int = 128,
                baselineForms: [KernelForm] = [.chunked, .quadratic], kernelOptions: KernelOptions = .init(),
                mode: PrecisionMode? = nil, arithmetic: DeclaredArithmetic? = nil,
                finalStateFormat: NumberFormat? = nil, explainFailures: Bool = false) {
        self.mode = mode
        self.format = format
        self.policy = policy
        self.precision = precision
        self.baselineForms = baselineForms
        self.baseKernelOptions = kernelOptions
        self.arithmetic = arithmetic
        self.finalStateFormat = finalStateFormat
        self.explainFailures = explainFailures
    }
}

/// Judges a candidate kernel's outputs on one core problem against the MPFR
/// oracle, with MambaCheck's own kernels in the same arithmetic as baselines.
public enum KernelComparison {
    /// The precision mode that models a kernel whose outputs are stored in `format`:
    /// binary16 → Float16 storage with Float32 accumulation (tensor cores),
    /// bfloat16 → bfloat16 storage with Float32 accumulation, TF32 → TF32
    /// dot-product inputs, otherwise Float32.
    public static func mode(for format: NumberFormat) -> PrecisionMode {
        (try? DeclaredArithmetic.assumed(forStorage: format).mode()) ?? .float32
    }

    /// The declared arithmetic a precision mode realises: its operand and
    /// accumulation formats (`PrecisionMode.formats`).
    public static func arithmetic(for mode: PrecisionMode) -> DeclaredArithmetic {
        DeclaredArithmetic(operands: mode.formats.operand, accumulation: mode.formats.accumulation)
    }

    /// The format a precision mode's outputs are judged in (TF32 in, TF32
    /// effective precision out): `PrecisionMode.formats.judged`.
    public static func format(for mode: PrecisionMode) -> NumberFormat {
        mode.formats.judged
    }

    /// `u_acc / u_F` for the block-level magnitudes (Proofs/T9): Float32
    /// accumulation under binary16 storage gives 2⁻²⁴/2⁻¹¹; pure binary16 and
    /// TF32 give 1.
    public static func accumulationRatio(format: NumberFormat, mode: PrecisionMode) -> Double {
        let a = arithmetic(for: mode)
        return Swift.max(a.accumulation.unitRoundoff, a.operands == .tf32 ? a.operands.unitRoundoff : 0)
            / format.unitRoundoff
    }

    /// The absolute error that gradual underflow can add, expressed in units
    /// of `u_F` (a magnitude): each of the `n = N + F + dk` operations or
    /// stored terms that produce an output may round in the subnormal range
    /// of the storage or accumulation format, where the error is up to half
    /// the smallest subnormal `η/2` whatever the operands' size. It is
    /// `n·η/(2u_F)` with the larger `η` of the two formats: `n·2⁻¹⁴` for
    /// binary16 storage (η = 2⁻²⁴), negligible for Float32 and bfloat16.
    public static func underflowFloor(_ p: CoreProblem, format: NumberFormat, mode: PrecisionMode) -> Double {
        let a = arithmetic(for: mode)
        let eta = Swift.max(a.accumulation.leastNonzeroMagnitude, a.operands.leastNonzeroMagnitude,
                            format.leastNonzeroMagnitude)
        let n = Double(p.length + (p.featureDim ?? p.keyDim) + p.keyDim)
        return n * eta / 2 / format.unitRoundoff
    }

    /// The per-element error scale `s_e` of the verdict for outputs stored in
    /// `format` and computed in `arithmetic` (Proofs/T9), in units of the
    /// output (a magnitude: `u_F·s_e` is one rounding stage's worth):
    ///
    ///     s_e = m_e + (u_op/u_F)(m_e + m̃_e) + (u_acc/u_F)·m^Γ_e + (u_st/u_F)·m^S_e + floor
    ///
    /// `m` the storage magnitude `Σ_j|w_ij||v_j|` (each stored term rounded
    /// once), `m̃` the score-factor magnitude (`q·k` from rounded operands),
    /// `m^Γ` the decay magnitude (segment sums at the accumulation precision),
    /// `m^S` the state-product magnitude (the state used as an operand, or
    /// stored, at `u_st = max(u_op, u_state)`), and the underflow floor. Only
    /// the *shape* over elements matters when baselines exist (their errors
    /// set the scale); without baselines `u_F·s_e` is the a-priori bound's unit.
    public static func errorScale(_ ref: ReferenceOutput, problem: CoreProblem, format: NumberFormat,
                                  arithmetic a: DeclaredArithmetic) -> [Double] {
        let uF = format.unitRoundoff
        let rOp = a.operands.unitRoundoff / uF
        let rAcc = a.accumulation.unitRoundoff / uF
        let rSt = Swift.max(a.operands.unitRoundoff, a.stateUnitRoundoff) / uF
        let mode = (try? a.mode()) ?? .float32
        let floor = underflowFloor(problem, format: format, mode: mode)
        let state = stateMagnitude(problem, oracle: ref.oDouble)
        let m = ref.magnitude
        let acc = ref.accumulationMagnitude.count == m.count ? ref.accumulationMagnitude : [Double](repeating: 0, count: m.count)
        let dec = ref.decayMagnitude.count == m.count ? ref.decayMagnitude : [Double](repeating: 0, count: m.count)
        return (0..<m.count).map { e in
            m[e] + rOp * (m[e] + acc[e]) + rAcc * dec[e] + rSt * state[e] + floor
        }
    }

    /// One report case per tensor (`o`, and `final_state`/`final_state_z` when
    /// the candidate returned a final state), named `name` (e.g. `2mamba/candidate/float16`).
    ///
    /// - Parameter oracle: a precomputed oracle for `problem` (with final state
    ///   if the candidate has one), or nil to compute it here.
    /// - Parameter baselines: precomputed baseline outputs in the candidate's
    ///   arithmetic (their outputs are rounded to the candidate's format here), or nil.
    public static func compare(problem: CoreProblem, candidate: CandidateTensors, name: String,
                               settings: ComparisonSettings, oracle: ReferenceOutput? = nil,
                               baselines precomputed: [CoreOutput]? = nil, runs: BaselineRuns? = nil) throws -> [ReportCase] {
        let start = DispatchTime.now().uptimeNanoseconds
        let wantState = candidate.finalState != nil
        let ref = try oracle ?? Reference.quadratic(problem, precision: settings.precision, finalState: wantState)
        let arithmetic = settings.effectiveArithmetic
        let baselines = try precomputed ?? baselineOutputs(problem, settings: settings, runs: runs)
        // A declared 16-bit stored state (`+state=`) says the state *may* pass through 16 bits
        // between chunks; a returned final state with a value that format cannot hold was not
        // carried in it (FLA's chunk kernels store 16-bit copies of the states for the output
        // but carry them in Float32 registers and return that). Its final state is judged
        // against baselines that carry in Float32, tensor-core accumulation included: with the
        // 16-bit carry as a yardstick, FLA's chunk_linear_attn (bf16, N = 100, seed 7) used 5e-6
        // of the final-state norm allowance; against the Float32 carry 0.43 (N = 1000: 0.45; it
        // was 1.83 before the tensor-core baseline joined).
        var stateBaselines: [CoreOutput]? = nil
        var stateArithmetic = arithmetic
        if arithmetic.stateStorage != .float32, let cs = candidate.finalState,
           let f16 = NumberFormat(stateStorage: arithmetic.stateStorage),
           cs.s.contains(where: { $0.isFinite && f16.round($0) != $0 }) {
            stateArithmetic.stateStorage = .float32
            var s = settings
            s.arithmetic = stateArithmetic
            stateBaselines = try baselineOutputs(problem, settings: s, runs: runs)
        }
        var cases = try judge(problem: problem, candidate: candidate, name: name, settings: settings, ref: ref,
                              arithmetic: arithmetic, baselines: baselines,
                              stateArithmetic: stateArithmetic, stateBaselines: stateBaselines)
        cases[0].durationSeconds = seconds(since: start)
        if settings.explainFailures, cases.contains(where: { !$0.passed && !$0.verdict.isUndefined }) {
            let note = explain(problem: problem, candidate: candidate, name: name, settings: settings, ref: ref,
                               declared: arithmetic)
            for i in cases.indices where !cases[i].passed && !cases[i].verdict.isUndefined {
                cases[i].verdict.note = [cases[i].verdict.note, note].compactMap { $0 }.joined(separator: "; ")
                cases[i].verdict.reason = cases[i].verdict.describe()
            }
        }
        return cases
    }

    /// The verdicts of every candidate tensor against given baselines.
    ///
    /// - Parameters:
    ///   - stateArithmetic, stateBaselines: the arithmetic and baselines of the final
    ///     state when they differ from the output's (nil: `arithmetic`, `baselines`).
    static func judge(problem: CoreProblem, candidate: CandidateTensors, name: String, settings: ComparisonSettings,
                      ref: ReferenceOutput, arithmetic: DeclaredArithmetic, baselines: [CoreOutput],
                      stateArithmetic: DeclaredArithmetic? = nil, stateBaselines: [CoreOutput]? = nil) throws -> [ReportCase] {
        let shape = [problem.batch, problem.heads, problem.length, problem.valueDim]
        var cases: [ReportCase] = []
        let format = settings.format
        let metrics = try TensorMetrics(candidate: candidate.o, reference: ref, shape: shape, format: format)
        let scale = errorScale(ref, problem: problem, format: format, arithmetic: arithmetic)
        // In Float32 every error is measured modulo a coherent exponential bias
        // (`CoherentExponentialBias`): the candidate's and each baseline's.
        let groups = problem.batch * problem.heads
        let bias = (try? arithmetic.mode()) == .float32
            ? CoherentExponentialBias.direction(problem, options: settings.kernelOptions) : nil
        func debiased(_ candidate: [Double], _ baselines: [[Double]], oracle: [Double], direction: [Double]?)
            -> (candidate: [Double], baselines: [[Double]], gamma: [Double]) {
            CoherentExponentialBias.judgedModulo(candidate: candidate, baselines: baselines, oracle: oracle,
                                                 direction: direction, groups: groups)
        }
        func noted(_ v: Verdict, _ gamma: [Double]) -> Verdict { CoherentExponentialBias.noted(v, gamma: gamma) }
        let judgedO = debiased(candidate.o, baselines.map { stored($0.o, in: format) },
                               oracle: bias == nil ? [] : ref.oDouble, direction: bias?.o)
        let verdict = noted(try settings.policy.judge(candidate: judgedO.candidate, oracle: ref.o, magnitude: scale,
                                                      baselines: judgedO.baselines, shape: shape, format: format),
                            judgedO.gamma)
        cases.append(ReportCase(name: name, tensor: "o", metrics: metrics, verdict: verdict, durationSeconds: 0))
        if let cs = candidate.finalState, let f = problem.featureDim, let s = ref.finalStateS {
            let sa = stateArithmetic ?? arithmetic, sb = stateBaselines ?? baselines
            let sf = settings.finalStateFormat ?? format
            let fm = finalStateMagnitude(problem)
            let uF = sf.unitRoundoff
            let rOp = Swift.max(sa.operands.unitRoundoff, sa.stateUnitRoundoff) / uF
            let rAcc = sa.accumulation.unitRoundoff / uF
            let floor = underflowFloor(problem, format: sf, mode: (try? sa.mode()) ?? .float32)
            func scale(_ m: [Double], _ acc: [Double]) -> [Double] {
                (0..<m.count).map { m[$0] + rOp * m[$0] + rAcc * acc[$0] + floor }
            }
            let sShape = [problem.batch, problem.heads, f, problem.valueDim]
            let bs = sb.compactMap { $0.finalState.map { stored($0.s, in: sf) } }
            let stateBias = (try? sa.mode()) == .float32 ? bias?.s : nil
            let judgedS = debiased(cs.s, bs, oracle: stateBias == nil ? [] : s.map(\.doubleValue), direction: stateBias)
            cases.append(ReportCase(
                name: name, tensor: "final_state",
                metrics: try TensorMetrics(candidate: cs.s, oracle: s, shape: sShape, format: sf),
                verdict: LooseDeclaration.noted(
                    noted(try settings.policy.judge(candidate: judgedS.candidate, oracle: s,
                                                    magnitude: scale(fm.s, fm.sAcc), baselines: judgedS.baselines,
                                                    shape: sShape, format: sf), judgedS.gamma),
                    storage: sf, arithmetic: sa),
                durationSeconds: 0))
            if let cz = cs.z, let z = ref.finalStateZ {
                let zShape = [problem.batch, problem.heads, f]
                let bz = sb.compactMap { $0.finalState?.z.map { stored($0, in: sf) } }
                cases.append(ReportCase(
                    name: name, tensor: "final_state_z",
                    metrics: try TensorMetrics(candidate: cz, oracle: z, shape: zShape, format: sf),
                    verdict: LooseDeclaration.noted(
                        try settings.policy.judge(candidate: cz, oracle: z, magnitude: scale(fm.z, fm.zAcc),
                                                  baselines: bz, shape: zShape, format: sf, rowLength: f),
                        storage: sf, arithmetic: sa),
                    durationSeconds: 0))
            }
        }
        return cases
    }

    /// A baseline's values as a kernel storing them in `format` would hold
    /// them (TF32, the legacy judging format, is not a storage format: unchanged).
    static func stored(_ x: [Double], in format: NumberFormat) -> [Double] {
        if format == .tf32 || format == .binary64 { return x }
        return x.map { format.round($0) }
    }

    /// Re-judges a failing candidate in each looser arithmetic and says which
    /// first explains it (the verdict itself never changes).
    static func explain(problem: CoreProblem, candidate: CandidateTensors, name: String, settings: ComparisonSettings,
                        ref: ReferenceOutput, declared: DeclaredArithmetic) -> String {
        for looser in declared.looser {
            var s = settings
            s.arithmetic = looser
            s.explainFailures = false
            guard let baselines = try? baselineOutputs(problem, settings: s),
                  let cases = try? judge(problem: problem, candidate: candidate, name: name, settings: s, ref: ref,
                                         arithmetic: looser, baselines: baselines)
            else { continue }
            if cases.allSatisfy(\.passed) {
                return "error consistent with \(looser.description) (--arith \(looser.name)); declared \(declared.description)"
            }
        }
        return "not explained by a looser arithmetic (3xTF32 or TF32 dots, 16-bit operands or stored state, "
            + "half accumulation): "
            + "likely a bug"
    }

    /// MambaCheck's own kernels in the candidate's declared arithmetic (one per
    /// baseline form; forms that do not apply to the core are skipped), with
    /// the output left unrounded (the caller rounds it to the candidate's
    /// storage format). When the decay is given as prefix sums, one more
    /// baseline models the kernels that receive them: exponents formed in base
    /// 2 from separately rescaled prefix sums (`exp2(L_i·log₂e − L_j·log₂e)`,
    /// absolute exponent error `≈ u(|L_i| + |L_j|)`), which is correct by the
    /// contract of a kernel handed prefix sums.
    ///
    /// - Parameter runs: kernel runs on `problem` kept across calls (the inferences and the verdict share them).
    public static func baselineOutputs(_ problem: CoreProblem, settings: ComparisonSettings,
                                       runs: BaselineRuns? = nil) throws -> [CoreOutput] {
        let arithmetic = settings.effectiveArithmetic
        let mode = try arithmetic.mode()
        var options = settings.kernelOptions
        options.roundOutput = false
        options.stateStorage = arithmetic.stateStorage
        if settings.arithmetic != nil || settings.mode == nil { options.chunkSize = arithmetic.chunkSize }
        if arithmetic.form == .recurrent {
            let r = recurrentBaselines(problem, mode: mode, options: options, runs: runs)
            if !r.isEmpty { return r }  // a core without a recurrent form keeps every form's baselines
        }
        var out: [CoreOutput] = []
        for form in settings.baselineForms {
            do {
                out.append(try runs.run(problem, .base, form: form, mode: mode, options: options))
            } catch is KernelError {
                continue
            }
        }
        // Recurrent kernels (a state updated token by token, FLA's fused_recurrent)
        // sum N terms sequentially. In Float32 and pure binary16 they are up to ~2x
        // less accurate than chunked ones on outputs (`mambacheck calibrate`); in
        // Float32 the baseline also models GPU exponentials: Triton's `tl.exp`
        // (ex2.approx, CUDA's __expf: ≤ 2 + ⌊1.16|x|⌋ ulp) is biased near 0, and a
        // per-step decay factor biased the same way every token compounds over the
        // sequence (`exponentialBiasProblem`; measured on FLA's
        // fused_recurrent_simple_gla, H100, Triton 3.6, fp32, N = 1000, weak decay:
        // 4x the error of an exact exp, 98% correlated with a coherent bias of 0.32
        // ulp per step).
        let recurrentYardstick = arithmetic.form == nil || arithmetic.form == .recurrent
        if (mode == .float32 || mode == .float16), recurrentYardstick, !settings.baselineForms.contains(.recurrent),
           let r = try? recurrentYardstickRun(problem, mode: mode, options: options, runs: runs) {
            out.append(r)
        }
        // In the acc32 and TF32 profiles a recurrent kernel's *final state* is a
        // Float32 sum of N rank-1 terms with no operand rounding to hide behind, less
        // accurate than a chunked kernel's (FLA's fused_recurrent_linear_attn, fp16
        // and bf16 inputs, N = 1000, no decay: 1.9x and 1.3x the element allowance).
        // Its outputs are not a yardstick there: our acc32 recurrent form rounds the
        // whole state as a 16-bit operand of the query product, which FLA's
        // elementwise Float32 recurrence does not, and would double the output
        // allowance of chunked kernels (measured on FLA's chunk_simple_gla, fp16).
        // So it joins as a final-state baseline only (its `o` is the first baseline's).
        // With the same biased exponential as in Float32: that state has no operand
        // rounding to hide the compounding bias behind (FLA's fused_recurrent_simple_gla,
        // bf16, N = 1000, weak decay, seed 7: final state at 2.7x its norm allowance
        // with its form declared, before the biased baseline joined in bf16-acc32).
        if mode != .float32, mode != .float16, recurrentYardstick, let first = out.first, first.finalState != nil,
           !settings.baselineForms.contains(.recurrent) {
            let biased = exponentialBiasProblem(problem).map { [($0, BaselineRuns.Variant.exponentialBias)] } ?? []
            for (p, v) in [(problem, BaselineRuns.Variant.base)] + biased {
                guard var r = try? runs.run(p, v, form: .recurrent, mode: mode, options: options) else { continue }
                r.o = first.o
                out.append(r)
            }
        }
        // Chunked GPU kernels carry their state through tensor-core products
        // (`b_h += tl.dot(k, v)`), whose Float32 accumulation aligns and
        // truncates (`KernelOptions.tensorCoreAccumulation`): over a long
        // undecayed sum that is several times less accurate than sgemm's
        // round-to-nearest (FLA's chunk_linear_attn, bf16, N = 1000, H100:
        // final state at 1.83x its norm allowance without it). A final-state
        // baseline only: the outputs' error is dominated by operand rounding,
        // and already covered.
        if mode != .float32, mode != .float16, arithmetic.form != .recurrent, let first = out.first,
           first.finalState != nil {
            var t = options
            t.tensorCoreAccumulation = true
            if var r = try? runs.run(problem, .base, form: .chunked, mode: mode, options: t) {
                r.o = first.o
                out.append(r)
            }
        }
        if case .prefixSum = problem.decay, let habit = base2PrefixSumProblem(problem) {
            if let r = try? runs.run(habit, .base2PrefixSums, form: .chunked, mode: mode, options: options) { out.append(r) }
        }
        // The query scaled and stored back in the 16-bit operand format before the
        // score product (`b_q = (b_q * scale).to(b_q.dtype)`, FLA's parallel_simple_gla
        // and several FLA chunk kernels): one more rounding of every query element,
        // amplified on rows whose q·k cancel. Measured on parallel_simple_gla, bf16,
        // N = 512, dk = 128 (scale 2^−3.5, not exact), H100: one row at 6.6% relative
        // error against a median of 0.29%, 5.04x its row allowance before this baseline.
        if mode == .float16Acc32 || mode == .bfloat16Acc32, arithmetic.form != .recurrent,
           let habit = prescaledQueryProblem(problem, operand: arithmetic.operands) {
            if let r = (try? runs.run(habit, .prescaledQuery, form: .chunked, mode: mode, options: options))
                ?? (try? runs.run(habit, .prescaledQuery, form: .quadratic, mode: mode, options: options)) {
                out.append(r)
            }
        }
        // Per-step decays summed chunk-locally by a parallel scan (Triton's
        // `tl.cumsum`, in FLA's and Mamba-2 SSD's chunk kernels) and rescaled
        // for `exp2` (FLA): every order rounds `ℓ_i` and `ℓ_j` differently, so
        // exponents of neighbouring tokens deep in a chunk err by
        // `≈ u(|ℓ_i| + |ℓ_j|)`, and which rows it hits is down to the rounding
        // pattern. Two more orders widen the row test's yardstick (the largest
        // baseline error of each row) where it would otherwise rest on one
        // pattern. Measured on Mamba-2 SSD, IEEE fp32, strong decays (|ℓ| up to
        // 57 in a 64-token chunk): rows up to 6.7x the sequential chunked
        // baseline's (Proofs/T9, "Orders of the prefix sums").
        // Not in pure binary16: no real kernel of that arithmetic measured, and the
        // orders there double its baselines' error at N = 1024 (`calibrate`).
        if case .perStep = problem.decay, mode != .float16 {
            for scan in [PrefixScan.koggeStone, .brentKungBase2] {
                var t = options
                t.prefixScan = scan
                if let r = try? runs.run(problem, .base, form: .chunked, mode: mode, options: t) { out.append(r) }
            }
        }
        // q and k each pre-scaled by √s in Float32 (PyTorch's math SDPA backend,
        // `splitScaleProblem`): at N = 2 its output used 1.4 of an element allowance.
        if mode == .float32, arithmetic.form != .recurrent, let habit = splitScaleProblem(problem),
           let r = try? runs.run(habit.problem, .splitScale, form: .quadratic, mode: mode, options: options) {
            out.append(r)
        }
        // Products summed in one fused chain per element (`sequentialProducts`),
        // on the problem and on its √s habit: OpenBLAS's small-matrix kernels on
        // AVX-512 CPUs sum q·k in vector lanes, half a chain's error at dk = 128,
        // so below `sequentialProductsLength` the Float32 baselines moved with the
        // CPU. Measured: PyTorch's math SDPA (fp32, H100), N = 3–17, dk = 128, `o`
        // at 1.01–1.6x its element allowance with Zen 4's kernels and 0.36–0.43
        // with Haswell's (Proofs/T9, "One chain per product").
        if mode == .float32, !options.splitTF32Products, arithmetic.form != .recurrent,
           problem.length <= Self.sequentialProductsLength {  // 3xTF32 keeps its own products
            var t = options
            t.sequentialProducts = true
            if let r = try? runs.run(problem, .base, form: .quadratic, mode: mode, options: t) { out.append(r) }
            if let habit = splitScaleProblem(problem),
               let r = try? runs.run(habit.problem, .splitScale, form: .quadratic, mode: mode, options: t) {
                out.append(r)
            }
        }
        // TF32 operands formed by truncation, as tensor cores do with Float32
        // registers (Triton's default `tl.dot`): twice the per-operand error
        // of rounding to nearest, and biased. A kernel that rounds (cvt.rna)
        // is covered by the other baselines.
        if mode == .tf32 {
            var t = options
            t.tf32Truncation = true
            if let r = try? runs.run(problem, .base, form: .chunked, mode: mode, options: t) { out.append(r) }
        }
        return out
    }

    /// The baselines of a kernel that declares the recurrent form
    /// (`+form=recurrent`): MambaCheck's recurrent kernel in the declared
    /// arithmetic, with that form's hardware habits: a biased exponential
    /// compounding over per-step decays (all but pure binary16), TF32 operands by truncation,
    /// base-2 exponents of rescaled prefix sums. No parallel form: those sum
    /// decays chunk-locally, an exponent error `≈ u·|ℓ|` a token-by-token
    /// recurrence never makes, which under strong decays made the parallel
    /// baselines 9x less accurate than FLA's `fused_recurrent_simple_gla`
    /// (fp32, N = 100: 7.85e-7 vs 8.8e-8 relative) and let a uniform error
    /// of 8x the kernel's own pass.
    static func recurrentBaselines(_ problem: CoreProblem, mode: PrecisionMode, options: KernelOptions,
                                   runs: BaselineRuns? = nil) -> [CoreOutput] {
        var problems = [(problem, BaselineRuns.Variant.base)]
        // Not in pure binary16, whose every rounding dwarfs a 2⁻²⁵ bias.
        if mode != .float16, let biased = exponentialBiasProblem(problem) { problems.append((biased, .exponentialBias)) }
        if case .prefixSum = problem.decay, let habit = base2PrefixSumProblem(problem) {
            problems.append((habit, .base2PrefixSums))
        }
        var out = problems.compactMap { try? runs.run($0.0, $0.1, form: .recurrent, mode: mode, options: options) }
        if mode == .tf32 {
            var t = options
            t.tf32Truncation = true
            if let r = try? runs.run(problem, .base, form: .recurrent, mode: mode, options: t) { out.append(r) }
        }
        return out
    }

    /// The recurrent yardstick of `baselineOutputs`: in Float32 on the problem with biased
    /// exponentials (where the decay is per step), else on the problem itself.
    private static func recurrentYardstickRun(_ problem: CoreProblem, mode: PrecisionMode, options: KernelOptions,
                                              runs: BaselineRuns?) throws -> CoreOutput {
        if mode == .float32, let biased = exponentialBiasProblem(problem) {
            return try runs.run(biased, .exponentialBias, form: .recurrent, mode: mode, options: options)
        }
        return try runs.run(problem, .base, form: .recurrent, mode: mode, options: options)
    }

    /// The relative bias per decay factor of `exponentialBiasProblem`: half an ulp
    /// of Float32 in `[1/2, 1)`, 1.5x the bias measured on an H100's `ex2.approx`.
    public static let exponentialBias = 0x1p-25

    /// `problem` with every per-step decay factor `α_t = exp(a_t) < 1` biased down
    /// by `exponentialBias` (`a_t ← a_t + ln(1 − 2⁻²⁵)`): a kernel whose hardware
    /// exponential is faithful but biased. Nil unless the decay is given per step.
    public static func exponentialBiasProblem(_ p: CoreProblem) -> CoreProblem? {
        guard case .perStep(let a) = p.decay else { return nil }
        let shift = log1p(-exponentialBias)
        var q = p
        q.decay = .perStep(a.map { $0 < 0 ? $0 + shift : $0 })
        return q
    }

    /// `problem` with the query pre-scaled in the operand format and the scale 1:
    /// The longest sequence that gets the one-chain baselines (`sequentialProducts`):
    /// OpenBLAS takes its small-matrix path only below about 64³ multiply-adds
    /// per product, and a scalar chain costs `N²·dk` at most 2¹⁸·dk here.
    public static let sequentialProductsLength = 512

    /// `q'_d = RN_op(fl₃₂(fl₃₂(s)·q_d))`, so that `f(q'·k) ≈ f(s·q·k)` for every score
    /// (ReLU commutes with `s > 0`). Nil when the product is exact for every
    /// element (a power-of-two scale) or the scale is not positive.
    static func prescaledQueryProblem(_ p: CoreProblem, operand: NumberFormat) -> CoreProblem? {
        let s = Float(p.scale)
        guard s > 0, s.isFinite else { return nil }
        let q = p.q.map { operand.round(Double(Float($0) * s)) }
        guard zip(q, p.q).contains(where: { $0.0 != Double(Float($0.1) * s) }) else { return nil }
        var r = p
        r.q = q
        r.scale = 1
        return r
    }

    /// `problem` with q and k each multiplied by `r = fl₃₂(√s)` and stored in
    /// Float32, scale 1, and `r`: PyTorch's math SDPA backend forms
    /// `(q·√s)(k·√s)ᵀ`, one more rounding of every q and k element (relative
    /// `u`, on both factors of every score) than `s·(q·kᵀ)`; its backward
    /// multiplies `dq`, `dk` by `r` once more. Measured: the backend's fp32
    /// output is this model's bit for bit (N = 2, dk = 32, H100), twice the
    /// error of `s·(q·kᵀ)` there. Exponential score only; nil where nothing is
    /// rounded (`r` a power of two with `r² = s`).
    public static func splitScaleProblem(_ p: CoreProblem) -> (problem: CoreProblem, factor: Float)? {
        guard p.spec.score == .exponential else { return nil }
        let s = Float(p.scale)
        guard s > 0, s.isFinite else { return nil }
        let r = s.squareRoot()
        if r.significandBitPattern == 0, r * r == s { return nil }
        var out = p
        out.q = p.q.map { Double(Float($0) * r) }
        out.k = p.k.map { Double(Float($0) * r) }
        out.scale = 1
        return (out, r)
    }

    /// `problem` with each given prefix sum replaced by `fl₃₂(L·log₂e)/log₂e`
    /// (evaluated in Double): the exponent a base-2 kernel really uses.
    static func base2PrefixSumProblem(_ p: CoreProblem) -> CoreProblem? {
        guard case .prefixSum(let l) = p.decay else { return nil }
        let log2e = 1.4426950408889634
        var q = p
        q.decay = .prefixSum(l.map { Double(Float(Float($0) * Float(log2e))) / log2e })
        return q
    }

    /// The growth of a correct kernel's accumulation error with the number of
    /// terms it sums, `√(max(1, n/16))` with `n = N + F + dk` (probabilistic
    /// rounding-error growth, Higham & Mary 2019). Used by the gradient
    /// magnitudes' shape only: with baselines the scale comes from them.
    public static func lengthFactor(_ p: CoreProblem) -> Double {
        let n = Double(p.length + (p.featureDim ?? p.keyDim) + p.keyDim)
        return Swift.max(1, n / 16).squareRoot()
    }

    /// Magnitudes of the final state's terms (Proofs/T7): storage part
    /// `Σ_j Γ_{N−1,j} |φ(k_j)| |v_j| + e^{L_{N−1}} |S₀|` and accumulation part
    /// (forming each decay exponent, a segment sum, to working accuracy)
    /// `Σ_j Γ_{N−1,j}|L_{N−1} − L_j| |φ(k_j)| |v_j| + e^{L_{N−1}}|L_{N−1}| |S₀|`;
    /// the same for `z`.
    static func finalStateMagnitude(_ p: CoreProblem) -> (s: [Double], z: [Double], sAcc: [Double], zAcc: [Double]) {
        guard let f = p.featureDim else { return ([], [], [], []) }
        let n = p.length, dk = p.keyDim, dv = p.valueDim
        var s = [Double](repeating: 0, count: p.sequences * f * dv), sA = s
        var z = [Double](repeating: 0, count: p.sequences * f), zA = z
        for seq in 0..<p.sequences {
            let l = p.prefixSums(sequence: seq)
            for j in 0..<n {
                let kj = p.k[(seq * n + j) * dk ..< (seq * n + j + 1) * dk].map {
                    p.spec.score.traits.reluOnInputs ? Swift.max($0, 0) : $0.magnitude
                }
                let phi = FeatureMap.apply(p.spec.score, kj).map(\.magnitude)
                let g = l.map { exp($0[n - 1] - $0[j]) } ?? 1
                let ga = l.map { exp($0[n - 1] - $0[j]) * abs($0[n - 1] - $0[j]) } ?? 0
                for a in 0..<f {
                    z[seq * f + a] += g * phi[a]
                    zA[seq * f + a] += ga * phi[a]
                    for c in 0..<dv {
                        let t = phi[a] * abs(p.v[(seq * n + j) * dv + c])
                        s[(seq * f + a) * dv + c] += g * t
                        sA[(seq * f + a) * dv + c] += ga * t
                    }
                }
            }
            if let st = p.initialState, n > 0 {
                let g = l.map { exp($0[n - 1]) } ?? 1
                let ga = l.map { exp($0[n - 1]) * abs($0[n - 1]) } ?? 0
                for i in 0..<(f * dv) {
                    s[seq * f * dv + i] += g * abs(st.s[seq * f * dv + i])
                    sA[seq * f * dv + i] += ga * abs(st.s[seq * f * dv + i])
                }
                if let z0 = st.z {
                    for i in 0..<f { z[seq * f + i] += g * abs(z0[seq * f + i]); zA[seq * f + i] += ga * abs(z0[seq * f + i]) }
                }
            }
        }
        return (s, z, sA, zA)
    }

    /// The magnitude of the state-product terms of each output, measuring
    /// what rounding a *stored* state (and the query features multiplying it)
    /// to the storage format can do — as chunked tensor-core kernels do when
    /// they cast the carried state to binary16/bfloat16 for `φ(q)ᵀS`:
    /// `c·Σ_a |φ_a(q_t)|·|S_{t,a,c}|` (none) or
    /// `(Σ_a |φ_a(q_t)||S_{t,a,c}| + |y_{t,c}| Σ_a |φ_a(q_t)||z_{t,a}|) / (φ(q_t)ᵀz_t)` (sum),
    /// with `S_t`, `z_t` the recurrent state after token `t` (initial state
    /// included), evaluated in Double. Zero for the exponential score (no
    /// state). `[B, H, N, dv]`; cost `N·F·dv` per sequence.
    public static func stateMagnitude(_ p: CoreProblem, oracle y: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: p.sequences * p.length * p.valueDim)
        guard let f = p.featureDim else { return out }
        let n = p.length, dk = p.keyDim, dv = p.valueDim
        let c = p.spec.score.traits.featureConstant(p.scale)
        let sum = p.spec.normalization == .sum
        let phiScore = p.spec.score
        // Columns are independent (only z is shared, and cheap): split them over the cores.
        // Every element is formed by the same operations in the same order as a serial sweep.
        let cores = Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let workers = Swift.max(1, Swift.min(dv, cores))
        let per = (dv + workers - 1) / workers
        out.withUnsafeMutableBufferPointer { ob in
            let outPtr = StateMagnitudeOutput(pointer: ob.baseAddress!)
            for seq in 0..<p.sequences {
                let steps: [Double]? = p.prefixSums(sequence: seq).map { l in (0..<n).map { $0 == 0 ? l[0] : l[$0] - l[$0 - 1] } }
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let c0 = w * per, c1 = Swift.min(dv, c0 + per), width = c1 - c0
                    guard width > 0 else { return }
                    let s = UnsafeMutablePointer<Double>.allocate(capacity: f * width)
                    defer { s.deallocate() }
                    if let st = p.initialState {
                        for a in 0..<f { for col in 0..<width { s[a * width + col] = st.s[seq * f * dv + a * dv + c0 + col] } }
                    } else { s.initialize(repeating: 0, count: f * width) }
                    var z = p.initialState?.z.map { Array($0[seq * f ..< (seq + 1) * f]) } ?? [Double](repeating: 0, count: f)
                    var m = [Double](repeating: 0, count: width), v = [Double](repeating: 0, count: width)
                    for t in 0..<n {
                        let alpha = steps.map { exp($0[t]) } ?? 1
                        let fk = FeatureMap.apply(phiScore, Array(p.k[(seq * n + t) * dk ..< (seq * n + t + 1) * dk]))
                        let fq = FeatureMap.apply(phiScore, Array(p.q[(seq * n + t) * dk ..< (seq * n + t + 1) * dk]))
                        for col in 0..<width { v[col] = p.v[(seq * n + t) * dv + c0 + col]; m[col] = 0 }
                        v.withUnsafeBufferPointer { vb in
                            m.withUnsafeMutableBufferPointer { mb in
                                for a in 0..<f {
                                    z[a] = alpha * z[a] + fk[a]
                                    let row = s + a * width, ka = fk[a], qa = fq[a]
                                    for col in 0..<width {
                                        row[col] = alpha * row[col] + ka * vb[col]
                                        mb[col] += abs(qa * row[col])
                                    }
                                }
                            }
                        }
                        var zAbs = 0.0, den = 0.0
                        if sum { for a in 0..<f { zAbs += abs(fq[a] * z[a]); den += fq[a] * z[a] } }
                        for col in 0..<width {
                            let idx = (seq * n + t) * dv + c0 + col
                            if sum {
                                let yv = y[idx].isFinite ? abs(y[idx]) : 0
                                outPtr.pointer[idx] = den > 0 ? (m[col] + yv * zAbs) / den : 0
                            } else {
                                outPtr.pointer[idx] = c * m[col]
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `M = m + r·g·(m + m_decay)` for the final state, whose storage
    /// magnitude `m` already uses the full-absolute features `|φ(k)|`: the
    /// storage magnitude (rounded once per stage at the storage format's
    /// `u_F`) plus the accumulation part, scaled by `r = u_acc/u_F` and by the
    /// length factor `g` (accumulation errors of n-term sums grow like √n;
    /// storage roundings of individual terms do not). The verdict multiplies
    /// `M` by `boundFactor·u_F` (Proofs/T9).
    public static func effectiveMagnitude(storage m: [Double], accumulation extra: [Double], ratio r: Double,
                                          growth g: Double) -> [Double] {
        guard extra.count == m.count else { return m.map { $0 + r * g * $0 } }
        return zip(m, extra).map { $0 + r * g * ($0 + $1) }
    }

    static func seconds(since start: UInt64) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The output of `stateMagnitude`, written by column blocks on several threads (disjoint elements).
private struct StateMagnitudeOutput: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Double>
}
