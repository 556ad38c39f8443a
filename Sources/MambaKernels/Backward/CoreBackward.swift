import MambaVariants

/// Gradients of `ℓ = Σ O ⊙ dO` produced by an optimized backward kernel, as
/// the exact values it returned (Float32, binary16 or bfloat16 numbers held
/// in `Double`). Layouts follow the inputs, like `ReferenceGradients`.
public struct CoreGradients: Sendable, GradientTensors {
    /// `∂ℓ/∂q`, `[B, H, N, dk]` (for relu-linear with respect to the raw q,
    /// ReLU'(x) = 0 for x ≤ 0, as PyTorch and the oracle).
    public var dq: [Double]
    /// `∂ℓ/∂k`, `[B, H, N, dk]`.
    public var dk: [Double]
    /// `∂ℓ/∂v`, `[B, H, N, dv]`.
    public var dv: [Double]
    /// `∂ℓ/∂L_t` with respect to the inclusive prefix sums (a kernel's
    /// `dA_cumsum`), `[B, H, N]`; nil without decay.
    public var dL: [Double]?
    /// `∂ℓ/∂a_t = Σ_{u≥t} ∂ℓ/∂L_u` with respect to the per-step log-decays
    /// (FLA's `dg`), `[B, H, N]`; nil without decay.
    public var da: [Double]?
    /// `∂ℓ/∂S₀`, `[B, H, F, dv]` (FLA convention, packed), when an initial state was given.
    public var dInitialState: [Double]?
    /// `∂ℓ/∂z₀`, `[B, H, F]`, when an initial state was given to a sum-normalised core.
    public var dInitialStateZ: [Double]?
    /// What the kernel observed (zero normalisers, non-finite gradients), by sequence.
    public var diagnostics: [String]

    public init(dq: [Double], dk: [Double], dv: [Double], dL: [Double]?, da: [Double]?,
                dInitialState: [Double]?, dInitialStateZ: [Double]?, diagnostics: [String] = []) {
        self.dq = dq
        self.dk = dk
        self.dv = dv
        self.dL = dL
        self.da = da
        self.dInitialState = dInitialState
        self.dInitialStateZ = dInitialStateZ
        self.diagnostics = diagnostics
    }
}

/// The optimized Float32/Float16 backward passes of the attention cores
/// (docs/MATH.md §5), one per form, for every core of `CoreSpec.all`.
///
/// **Mathematics.** Per sequence, with `w_ij = f(s·q_i·k_j)·e^{L_i−L_j}` on
/// `j ≤ i`, `G = dO·Vᵀ` and the initial-state feature
/// `σ_i = c·e^{L_i}·φ(q_i)`, every form uses one formulation: the
/// *augmented upstream gradient* `dÕ_i = dO_i` (none) or
/// `dÕ_i = [dO_i | −δ_i] / D_i` (sum; `D_i` the normaliser, `δ_i = O_i·dO_i`)
/// against augmented values `ṽ_j = [v_j | 1]`, so that
/// `dW_ij = dÕ_i·ṽ_j` is `G_ij` (none) or `(G_ij − δ_i)/D_i` (sum) and
///
/// - `dv_j = Σ_i w_ij·dÕ_i[:dv]`, `dX_ij = f'(s·q_i·k_j)·e^{L_i−L_j}·dW_ij`,
///   `dq_i = s·Σ_j dX_ij k_j + J_φ(q_i)ᵀ(c·e^{L_i}·[S₀|z₀]·dÕ_i)`,
///   `dk_j = s·Σ_i dX_ij q_i`, `[dS₀|dz₀] = Σ_i σ_i dÕ_iᵀ`;
/// - decay: `E_ij = w_ij·dW_ij`; `dL_t = Σ_j E_tj + σ_t·([S₀|z₀]dÕ_t) − Σ_i E_it`
///   for un-normalised cores (row part minus column part). For sum-normalised
///   cores the row part (state included) is `O_t·dO_t − δ_t`, exactly zero,
///   and is not formed: `dL_t = −Σ_i E_it`, the column-side formula of
///   docs/MATH.md §5 — adding a quantity that is zero only in exact arithmetic
///   would add rounding noise of the size of the row's terms. Then
///   `da_t = Σ_{u≥t} dL_u` (sequential suffix sum in the working format).
///
/// **Forms.** `quadratic` (blocks of 128 query rows against all earlier
/// keys, one pass: forward for `D`, `O`, then the backward products),
/// `chunked` (SSD: a forward sweep storing the state before every chunk,
/// then a reverse sweep carrying the state gradient `dS` backwards through
/// chunks: `dS_{c−1} = e^{ℓ_last}·dS_c + Σ_i (c·e^{ℓ_i}φ(q_i)) dÕ_iᵀ`),
/// `tiled` (flash style: a forward sweep with the online maximum that saves
/// the row statistics `m_i` and `D_i`, then key blocks outer, query blocks
/// inner, recomputing `p_ij = f(s·q·k)·e^{L_i−L_j−m_i}` from them) and
/// `recurrent` (the chunked algorithm with chunks of one token: the
/// reverse-time recurrence `dS_{t−1} = α_t·dS_t + φ̃(q_t) dÕ_tᵀ`). The
/// exponential score, which has no finite state, uses blocked KV-cache
/// passes in the chunked and recurrent forms (chunk-local decay assembly as
/// in `ChunkedForm`). Each form's decay convention follows its forward
/// (global Float32 prefix sums for quadratic/tiled, chunk-local for
/// chunked/recurrent). See the files of `Backward/` for each algorithm.
///
/// **Precision** (`PrecisionMode`, the forward's model, `Arithmetic`): the
/// inputs q, k, v, decay, initial state *and dO* are rounded to the mode's
/// input format; every matrix-product operand (`P`, `dX`, `dÕ`, features,
/// states and state gradients, values) is stored in the operand format and
/// multiplied with Float32 accumulation (`cblas_sgemm`), except in pure
/// `float16` where every operation is rounded to binary16; elementwise work
/// is in the working format; accumulators of `dq`, `dk`, `dv`, `dL` across
/// blocks are in the working format; every returned gradient is rounded to
/// the output format (binary16 in both Float16 modes). `δ_i` is formed from
/// the output *rounded to the output format* in the quadratic and tiled
/// forms and the exponential chunked form, as flash-style kernels form it
/// from the stored `O`; the chunked feature-map form forms it as
/// `(num_i·dO_i)/D_i` without materialising `O` (see `ChunkedBackward`).
/// Decay factors below 2⁻⁶⁰ are flushed to zero as in the forward
/// (`decayFlushThreshold`).
///
/// **Special values.** A zero normaliser is not clamped: the sequence's
/// gradients that depend on that row become NaN/Inf (as in the oracle,
/// which reports NaN) and `diagnostics` names the rows; non-finite gradients
/// are named too.
public enum CoreBackward {
    /// Runs `body` with the chunked backward's large chunk-state buffer
    /// kept between calls (one buffer, up to 1 GiB, freed when the outermost
    /// scope ends), so that repeated timed runs do not pay for fresh pages
    /// each time (`BackwardBenchmark`). Results are unchanged.
    public static func reusingBuffers<T>(_ body: () throws -> T) rethrows -> T {
        try LargeBufferPool.shared.retaining(body)
    }

    /// Runs the backward pass of every (batch, head) sequence of `p`.
    ///
    /// - Throws: `KernelError.invalidProblem` when `p.validationError()`
    ///   reports a problem; `KernelError.invalidOptions` for chunk/tile sizes below 1.
    public static func run(_ p: GradientProblem, form: KernelForm, mode: PrecisionMode,
                           options: KernelOptions = .init()) throws -> CoreGradients {
        try run(p, form: form, mode: mode, options: options, stateBudgetBytes: ChunkedBackward.stateBudgetBytes)
    }

    /// `run` with the chunked backward's state budget (tests force checkpointing with a small one).
    static func run(_ p: GradientProblem, form: KernelForm, mode: PrecisionMode, options: KernelOptions,
                    stateBudgetBytes: Int) throws -> CoreGradients {
        if let e = p.validationError() { throw KernelError.invalidProblem(e) }
        try CoreKernels.validate(options)
        let core = p.core
        let ctx = CoreContext(spec: core.spec, scale: core.scale, mode: mode, options: options)
        let n = core.length, dk = core.keyDim, dv = core.valueDim
        let decayed = core.spec.hasDecay
        var dq = [Double](repeating: 0, count: core.sequences * n * dk)
        var dkOut = dq
        var dvOut = [Double](repeating: 0, count: core.sequences * n * dv)
        var dL: [Double]? = decayed ? [Double](repeating: 0, count: core.sequences * n) : nil
        var da = dL
        let f = core.featureDim
        let withState = core.initialState != nil
        var dS: [Double]? = withState ? [Double](repeating: 0, count: core.sequences * f! * dv) : nil
        var dZ: [Double]? = withState && ctx.isSum ? [Double](repeating: 0, count: core.sequences * f!) : nil
        var diagnostics: [String] = []
        for b in 0..<core.batch {
            for h in 0..<core.heads {
                let s = b * core.heads + h
                let seq = SequenceData(problem: core, sequence: s, start: 0, count: n,
                                       stateIndex: withState ? s : nil, arithmetic: ctx.arith)
                let dO = SequenceData.load(p.dO, s * n * dv, n * dv, ctx.arith.input)
                defer { dO.deallocate() }
                let r = runForm(form, BackwardInput(seq: seq, dO: dO), ctx, stateBudgetBytes: stateBudgetBytes)
                defer { r.deallocate() }
                var notes = r.notes
                let out = ctx.arith.output
                if core.spec.score.traits.reluOnInputs {
                    // ReLU'(x) = 0 for x ≤ 0: the loaded q̃ = max(q, 0) is 0 exactly there.
                    for e in 0..<(n * dk) {
                        if !(seq.q[e] > 0) { r.dq[e] = 0 }
                        if !(seq.k[e] > 0) { r.dk[e] = 0 }
                    }
                }
                out.round(r.dq, n * dk); out.round(r.dk, n * dk); out.round(r.dv, n * dv)
                for e in 0..<(n * dk) { dq[s * n * dk + e] = Double(r.dq[e]); dkOut[s * n * dk + e] = Double(r.dk[e]) }
                for e in 0..<(n * dv) { dvOut[s * n * dv + e] = Double(r.dv[e]) }
                if decayed, let rdL = r.dL {
                    // da_t = Σ_{u≥t} dL_u, summed from the end in the working format.
                    // At a reset step r (`resetLogDecay`) the sum restarts from 0:
                    // Σ_{u≥r} dL_u is the sum of the weights·dW of the pairs across r,
                    // which decay by e^{a_r} ≤ 2⁻⁶⁰ and are flushed to 0 by every form,
                    // so da_r = 0 exactly (the oracle's is below 1e-37), without the
                    // rounding noise of the later terms (which also cancel in da_t, t < r).
                    let suffix = allocateFloats(n)
                    defer { suffix.deallocate() }
                    var acc: Float = 0
                    for t in stride(from: n - 1, through: 0, by: -1) {
                        acc = seq.stepLogDecay(t, ctx.arith) < resetLogDecay ? 0 : ctx.arith.op(acc + rdL[t])
                        suffix[t] = acc
                    }
                    out.round(rdL, n); out.round(suffix, n)
                    for t in 0..<n { dL![s * n + t] = Double(rdL[t]); da![s * n + t] = Double(suffix[t]) }
                }
                if withState, let st = r.dState, let f {
                    let (sp, zp) = Features.export(ctx, state: st, dk: dk, dv: dv)
                    var sr = sp, zr = zp
                    sr.withUnsafeMutableBufferPointer { out.round($0.baseAddress!, $0.count) }
                    if zr != nil { zr!.withUnsafeMutableBufferPointer { out.round($0.baseAddress!, $0.count) } }
                    for e in 0..<(f * dv) { dS![s * f * dv + e] = Double(sr[e]) }
                    if let zr { for e in 0..<f { dZ![s * f + e] = Double(zr[e]) } }
                }
                var bad: [String] = []
                if Finish.nonFiniteRows(r.dq, n: n, width: dk).count > 0 { bad.append("dq") }
                if Finish.nonFiniteRows(r.dk, n: n, width: dk).count > 0 { bad.append("dk") }
                if Finish.nonFiniteRows(r.dv, n: n, width: dv).count > 0 { bad.append("dv") }
                if let rdL = r.dL, Finish.nonFiniteRows(rdL, n: n, width: 1).count > 0 { bad.append("dL") }
                if !bad.isEmpty { notes.append("non-finite gradients: \(bad.joined(separator: ", "))") }
                diagnostics += notes.map { "b=\(b) h=\(h): \($0)" }
            }
        }
        return CoreGradients(dq: dq, dk: dkOut, dv: dvOut, dL: dL, da: da, dInitialState: dS, dInitialStateZ: dZ,
                             diagnostics: diagnostics)
    }

    static func runForm(_ form: KernelForm, _ input: BackwardInput, _ ctx: CoreContext,
                        stateBudgetBytes: Int = ChunkedBackward.stateBudgetBytes) -> BackwardResult {
        switch form {
        case .quadratic: return QuadraticBackward.run(input, ctx)
        case .chunked: return ChunkedBackward.run(input, ctx, chunk: ctx.options.chunkSize, stateBudgetBytes: stateBudgetBytes)
        case .recurrent: return ChunkedBackward.run(input, ctx, chunk: 1, stateBudgetBytes: stateBudgetBytes)
        case .tiled: return TiledBackward.run(input, ctx)
        }
    }
}

/// One sequence's inputs to a backward form: the forward inputs (rounded,
/// ReLU applied) and `dO` (`n×dv`, rounded to the input format).
struct BackwardInput {
    let seq: SequenceData
    let dO: UnsafeMutablePointer<Float>
}

/// One sequence's gradients in the working format, before output rounding:
/// `dq`, `dk` (`n×dk`, with respect to q̃ = ReLU(q) for relu-linear), `dv`
/// (`n×dv`), `dL` (`n`, nil without decay) and the state gradient in the
/// internal augmented layout (`F×ldv`, nil without initial state).
struct BackwardResult {
    var dq: UnsafeMutablePointer<Float>
    var dk: UnsafeMutablePointer<Float>
    var dv: UnsafeMutablePointer<Float>
    var dL: UnsafeMutablePointer<Float>?
    var dState: UnsafeMutablePointer<Float>?
    var notes: [String]

    func deallocate() {
        dq.deallocate(); dk.deallocate(); dv.deallocate(); dL?.deallocate(); dState?.deallocate()
    }
}
