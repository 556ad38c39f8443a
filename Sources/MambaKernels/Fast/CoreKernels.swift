import MambaVariants

/// Tuning and behaviour switches of the optimized kernels.
public struct KernelOptions: Sendable, Hashable {
    /// Chunk length `C` of the chunked form (≥ 1; a value ≥ N gives one chunk).
    /// 64 is the tuned default (see `KernelBenchmark` in MambaBenchmarks).
    public var chunkSize: Int
    /// Query/key block size of the tiled form (≥ 1; a value ≥ N gives one block).
    public var tileSize: Int
    /// Tiled form, sum-normalised non-exponential scores: `true` (default)
    /// takes the running maximum over (a bound of) the log of the actual
    /// weights and is provably free of overflow; `false` is the faithful
    /// raw-score running maximum of docs/MATH.md §3 that exhibits the lagging-maximum
    /// hazard of docs/MATH.md §6 (and reports it).
    public var stableTiledMaximum: Bool
    /// Squared core: carry the full `dk²` second-order state `vec(k kᵀ)`
    /// instead of the packed `dk(dk+1)/2` one. States in and out keep the
    /// packed convention either way (converted exactly up to one rounding).
    public var fullSecondOrderState: Bool
    /// Quadratic and tiled forms with per-step decays: `false` (default)
    /// forms every decay exponent `a_{j+1} + … + a_i` as an accurate segment
    /// sum (relative error `γ_{i−j}`, Proofs/T8 Lemma 2); `true` forms it as
    /// `L_i − L_j` from global Float32 (working-format) prefix sums, the way
    /// a naive kernel does, which EXHIBITS the prefix-sum cancellation hazard
    /// of docs/MATH.md §6 (absolute error `(|L_i| + |L_j|)·u` in the exponent, failing
    /// the verdict of Proofs/T9 already at N ≈ 100 with typical decays). Kept
    /// so that tests can show the hazard is detected. No effect on the
    /// chunked form (chunk-local sums), the recurrent form (`exp(a_t)` per
    /// step) or decays given as prefix sums (used as given either way).
    public var globalPrefixSums: Bool
    /// Whether the output is rounded to the mode's storage format (default
    /// `true`). `false` returns the Float32 result before that last rounding,
    /// for a kernel that computes in the mode's arithmetic but stores its
    /// output in Float32 (e.g. fp16 operands, fp32 accumulation, fp32 output).
    public var roundOutput: Bool
    /// The format the carried state is *stored* in between steps (recurrent,
    /// after every token) or chunks (chunked, after every carry), as kernels
    /// with a 16-bit state cache do; the final state is returned in it too.
    /// Default `.float32` (the carry stays Float32, as FLA keeps `b_h` in
    /// registers). No effect on quadratic and tiled forms (no carried state)
    /// or in pure `float16` mode (already binary16).
    public var stateStorage: StateStorage
    /// `tf32` mode only: form TF32 operands by truncating the 13 low
    /// significand bits (toward zero) instead of rounding to nearest. Tensor
    /// cores do this with Float32 registers fed to a TF32 MMA without an
    /// explicit conversion (Triton's default `tl.dot` on fp32); the error is
    /// twice as large per operand and biased toward zero (docs/MATH.md §7.2).
    public var tf32Truncation: Bool
    /// Chunked form with per-step decays: how the chunk-local prefix sums
    /// `ℓ_i` are formed in the working format (default sequentially). GPU
    /// chunk kernels form them with a parallel scan (Triton's `tl.cumsum` in
    /// FLA's and Mamba-2 SSD's kernels), and FLA rescales them by `log₂e`
    /// for `exp2`; each order rounds `ℓ_i` and `ℓ_j` differently, and the
    /// exponent `ℓ_i − ℓ_j` of neighbouring tokens deep in a chunk errs by
    /// `≈ u(|ℓ_i| + |ℓ_j|)` in every one of them (docs/MATH.md §7.2).
    public var prefixScan: PrefixScan
    /// `float16Acc32`, `bfloat16Acc32` and `tf32` modes: every matrix product
    /// accumulates as a GPU tensor core does instead of as `cblas_sgemm`
    /// (`Arithmetic.tensorCoreGemm`): the accumulator and each block of
    /// `Arithmetic.tensorCoreBlock` exact products are aligned to the largest
    /// exponent among them, each truncated toward zero to 24 bits of that
    /// exponent, summed, and the sum truncated to Float32 (Fasi, Higham,
    /// Mikaitis & Pranesh 2021). Biased toward zero, several times the error
    /// of round-to-nearest sums over long undecayed accumulations.
    public var tensorCoreAccumulation: Bool
    /// `float32` mode only: every matrix product in 3xTF32, as CUTLASS's
    /// `OpMultiplyAddFastF32` (PyTorch's memory-efficient attention on fp32)
    /// does on tensor cores: each operand `x` is split into `big`, `x` with
    /// its 13 low significand bits dropped, and `small = tf32(x − big)`
    /// (round to nearest), and `A·B ≈ A_s·B_b + A_b·B_s + A_b·B_b`, summed in
    /// that order. The dropped `A_s·B_s` and the split's residual leave each
    /// product a relative error of up to `2⁻¹⁹` (Float32's `u` is 2⁻²⁴),
    /// random in sign (docs/MATH.md §7.2). With `tensorCoreAccumulation`, the
    /// three products accumulate as a tensor core does.
    public var splitTF32Products: Bool
    /// Chunked form, feature-map cores: carry the state on a second thread
    /// while the calling thread forms each chunk's outputs (`ChunkedPipeline`).
    /// The arithmetic is the same operations in the same order, so the result
    /// is bit-identical either way. `nil` (default): on when the machine has
    /// two or more cores and the state products are large enough to pay for
    /// the hand-over (`ChunkedPipeline.worthwhile`).
    public var concurrentStateCarry: Bool?
    /// Tiled backward of the sum-normalised exponential score (softmax): keep
    /// each row's statistics as one log-sum-exp `lse_i = m_i + log D'_i`, rounded
    /// to the working format, and recompute `p_ij = exp(s·q_i·k_j + D_ij − lse_i)`
    /// from it, as FlashAttention-2/3 and xformers' memory-efficient kernel do —
    /// instead of `m_i` and `D'_i` apart. The rounding of `lse_i` moves every
    /// weight of the row by a relative `≈ u·|lse_i|`, which a short row's
    /// gradients show (docs/MATH.md §7.2). No effect elsewhere.
    public var logSumExpBackward: Bool
    /// `float32` mode only: every matrix product accumulates each element in
    /// one fused multiply-add chain over `k`, from 0 in order, as a GPU thread
    /// does for its output element, instead of through `cblas_sgemm`. OpenBLAS's
    /// small-matrix kernels on AVX-512 CPUs (used below about 64³ multiply-adds)
    /// sum `k` in several vector lanes, half the error of one chain at `k` = 128,
    /// so the Float32 baselines of short sequences would otherwise depend on the
    /// CPU (docs/MATH.md §7.2). Quadratic and tiled work `O(m·n·k)` scalar.
    public var sequentialProducts: Bool

    public init(chunkSize: Int = 64, tileSize: Int = 64, stableTiledMaximum: Bool = true,
                fullSecondOrderState: Bool = false, globalPrefixSums: Bool = false, roundOutput: Bool = true,
                stateStorage: StateStorage = .float32, tf32Truncation: Bool = false,
                prefixScan: PrefixScan = .sequential, tensorCoreAccumulation: Bool = false,
                splitTF32Products: Bool = false, concurrentStateCarry: Bool? = nil,
                logSumExpBackward: Bool = false, sequentialProducts: Bool = false) {
        self.chunkSize = chunkSize
        self.tileSize = tileSize
        self.stableTiledMaximum = stableTiledMaximum
        self.fullSecondOrderState = fullSecondOrderState
        self.globalPrefixSums = globalPrefixSums
        self.roundOutput = roundOutput
        self.stateStorage = stateStorage
        self.tf32Truncation = tf32Truncation
        self.prefixScan = prefixScan
        self.tensorCoreAccumulation = tensorCoreAccumulation
        self.splitTF32Products = splitTF32Products
        self.concurrentStateCarry = concurrentStateCarry
        self.logSumExpBackward = logSumExpBackward
        self.sequentialProducts = sequentialProducts
    }
}

/// The order in which a chunk's local prefix sums are formed (`KernelOptions.prefixScan`).
public enum PrefixScan: String, Sendable, Hashable, CaseIterable {
    /// `ℓ_i = fl(ℓ_{i−1} + a_i)`, one rounding per token.
    case sequential
    /// Kogge–Stone: `log₂C` passes, each adding the value `2^k` places back.
    case koggeStone
    /// Brent–Kung (work-efficient up- and down-sweep), then each `ℓ_i`
    /// rescaled to base 2 and back (`fl(fl(ℓ_i·log₂e)·ln 2)`), as FLA
    /// forms `exp2` exponents.
    case brentKungBase2
}

/// Storage format of a carried state (`KernelOptions.stateStorage`).
public enum StateStorage: String, Sendable, Hashable, CaseIterable, Codable {
    case float32, float16, bfloat16

    /// The internal rounding format.
    var format: Float32Rounding {
        switch self {
        case .float32: return .float32
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        }
    }
}

/// Why a kernel refused a problem.
public enum KernelError: Error, Equatable, CustomStringConvertible {
    /// Shapes or inputs are inconsistent (e.g. a missing decay, an initial
    /// state for the exponential score, which has no finite state).
    case invalidProblem(String)
    /// An option out of range (chunk or tile size below 1).
    case invalidOptions(String)
    /// Malformed variable-length offsets.
    case invalidOffsets(String)

    public var description: String {
        switch self {
        case .invalidProblem(let m): return "invalid problem: \(m)"
        case .invalidOptions(let m): return "invalid options: \(m)"
        case .invalidOffsets(let m): return "invalid cu_seqlens: \(m)"
        }
    }
}

/// The optimized Float32/Float16 attention cores (docs/MATH.md §1, §3), each form
/// computing, per batch element and head,
/// `w_ij = f(s·q_i·k_j)·exp(L_i − L_j)·[i ≥ j]` and `y_i = Σ_j w_ij v_j`
/// (none) or `Σ_j w_ij v_j / Σ_j w_ij` (sum), plus the contribution of an
/// initial state (`c·exp(L_i)·φ(q_i)ᵀS₀`, FLA convention: unscaled features,
/// `c = s` first order, `s²` squared).
///
/// - Forms: `QuadraticForm`, `ChunkedForm`, `RecurrentForm`, `TiledForm`
///   (see each for its algorithm, GEMM use and numerical behaviour). Every
///   form supports every core of `CoreSpec.all`, both normalisations, initial
///   and final states (except the exponential score, which has none) —
///   nothing throws for a valid problem.
/// - Decay: `.perStep(a)` is summed in the working format without ever
///   subtracting two large prefix sums (the cancellation hazard of docs/MATH.md §6):
///   segment sums `a_{j+1} + … + a_i` for quadratic/tiled (`DecayExponents`;
///   `KernelOptions.globalPrefixSums` restores the hazardous `L_i − L_j` of
///   global Float32 prefix sums), chunk-local prefix sums for chunked,
///   `α_t = exp(a_t)` for recurrent; the initial state decays by the prefix
///   sum `exp(L_i)`. `.prefixSum(L)` is used as given (`L_i − L_j` of the
///   given numbers, `L_{−1} = 0`).
/// - Precision (`PrecisionMode`): `float32` is Float32 throughout
///   (`cblas_sgemm`). The acc32 modes model a tensor-core kernel: q, k, v,
///   the decay input and the initial state are rounded to the format
///   (binary16, bfloat16; TF32 rounds q, k, v only), every operand of every
///   matrix product is rounded to it — including the intermediates a GPU
///   kernel stores in that format before its next GEMM (the score matrix,
///   decay-scaled features and values, the chunk state multiplying queries;
///   the carried state stays Float32) — products and sums are Float32, and
///   the output is rounded to the format (not for TF32). The recurrent form
///   rounds inputs and output only (FLA `fused_recurrent` computes in
///   Float32). Pure `float16` rounds every operation to binary16, each
///   product and partial sum of every dot product included (sequential
///   order), exactly emulated in Float32 with F16C conversions; see
///   `Arithmetic` for the details. Final states are Float32 (binary16
///   values in pure `float16`).
/// - Binary16 underflow guard (`RowGuard`), sum-normalised feature-map cores
///   in `float16Acc32` and `float16`: rows whose weights and state-term
///   features are all below 1/2 are lifted by a power of two before they are
///   stored in binary16 (numerator and denominator alike, so the ratio is
///   unchanged — bit-identical wherever nothing under- or overflows); pure
///   `float16` also normalises queries and keys by powers of two and carries
///   its binary16 state scaled. Only lifts: values beyond 65504 still
///   overflow visibly. Un-normalised cores are not guarded (their outputs
///   are as small as their terms).
/// - Decay factors below 2⁻⁶⁰ are flushed to zero (`decayFlushThreshold`:
///   avoids subnormal `sgemm` slowdowns, effect far below Float32 rounding
///   for ordinary data).
/// - Zero denominators are not clamped and no epsilon is added: the IEEE
///   quotient (NaN for 0/0, ±Inf for x/0) is returned and
///   `CoreOutput.diagnostics` names the rows (`b=… h=…: zero denominator in
///   rows […]`); non-finite outputs (Float32/binary16 overflow, NaN) and rows
///   lost by the faithful tiled maximum are named the same way.
/// - Output values are Float32 (or binary16/bfloat16) numbers held exactly
///   in Double. Inputs are converted Double → Float32 → format (exact for
///   inputs already in the format).
public enum CoreKernels {
    /// Runs every (batch, head) sequence of `p` with one form and precision mode.
    ///
    /// - Throws: `KernelError.invalidProblem` when `p.validationError()` reports
    ///   a problem; `KernelError.invalidOptions` for chunk/tile sizes below 1.
    public static func run(_ p: CoreProblem, form: KernelForm, mode: PrecisionMode,
                           options: KernelOptions = .init()) throws -> CoreOutput {
        if let e = p.validationError() { throw KernelError.invalidProblem(e) }
        try validate(options)
        var units: [Unit] = []
        for b in 0..<p.batch {
            for h in 0..<p.heads {
                let seq = b * p.heads + h
                units.append(Unit(row: seq, start: 0, count: p.length, stateIndex: seq, label: "b=\(b) h=\(h)"))
            }
        }
        return execute(p, units: units, stateCount: p.sequences, form: form, mode: mode, options: options)
    }

    static func validate(_ o: KernelOptions) throws {
        if o.chunkSize < 1 { throw KernelError.invalidOptions("chunkSize must be ≥ 1, got \(o.chunkSize)") }
        if o.tileSize < 1 { throw KernelError.invalidOptions("tileSize must be ≥ 1, got \(o.tileSize)") }
    }

    /// One independent sequence: `count` tokens from `start` of row `row`
    /// (`b·H + h` in the `[B,H,N,·]` layout), state slot `stateIndex`.
    struct Unit {
        var row: Int, start: Int, count: Int, stateIndex: Int
        var label: String
    }

    static func runForm(_ form: KernelForm, _ seq: SequenceData, _ ctx: CoreContext) -> FormResult {
        switch form {
        case .quadratic: return QuadraticForm.run(seq, ctx)
        case .chunked: return ChunkedForm.run(seq, ctx)
        case .recurrent: return RecurrentForm.run(seq, ctx)
        case .tiled: return TiledForm.run(seq, ctx)
        }
    }

    static func execute(_ p: CoreProblem, units: [Unit], stateCount: Int, form: KernelForm, mode: PrecisionMode,
                        options: KernelOptions) -> CoreOutput {
        let ctx = CoreContext(spec: p.spec, scale: p.scale, mode: mode, options: options)
        let dv = p.valueDim, n = p.length
        var o = [Double](repeating: 0, count: p.sequences * n * dv)
        let f = p.featureDim
        var sOut: [Double]? = f.map { [Double](repeating: 0, count: stateCount * $0 * dv) }
        var zOut: [Double]? = (f != nil && ctx.isSum) ? [Double](repeating: 0, count: stateCount * f!) : nil
        var diagnostics: [String] = []
        for u in units {
            let seq = SequenceData(problem: p, sequence: u.row, start: u.start, count: u.count,
                                   stateIndex: p.initialState == nil ? nil : u.stateIndex, arithmetic: ctx.arith)
            let r = runForm(form, seq, ctx)
            defer { r.o.deallocate(); r.state?.deallocate() }
            var notes = r.notes
            // Rounding to a narrower output format can overflow; a Float32 or
            // wider output is not rounded, so nothing can change there.
            if ctx.options.roundOutput, ctx.arith.output.format != .binary32, ctx.arith.output.format != .binary64 {
                let before = Finish.nonFiniteRows(r.o, n: u.count, width: dv).count
                ctx.arith.output.round(r.o, u.count * dv)
                let after = Finish.nonFiniteRows(r.o, n: u.count, width: dv)
                if after.count > before {
                    notes.append("output overflowed \(ctx.arith.output) when rounded, rows \(Finish.describe(after, of: u.count))")
                }
            }
            let base = (u.row * n + u.start) * dv
            o.withUnsafeMutableBufferPointer { o in
                let dst = o.baseAddress! + base
                for i in 0..<(u.count * dv) { dst[i] = Double(r.o[i]) }
            }
            if let st = r.state, let f {
                let (s, z) = Features.export(ctx, state: st, dk: p.keyDim, dv: dv)
                for i in 0..<(f * dv) { sOut![u.stateIndex * f * dv + i] = Double(s[i]) }
                if let z { for i in 0..<f { zOut![u.stateIndex * f + i] = Double(z[i]) } }
            }
            diagnostics += notes.map { "\(u.label): \($0)" }
        }
        let state = sOut.map { CoreState(s: $0, z: zOut) }
        return CoreOutput(o: o, finalState: state, diagnostics: diagnostics)
    }
}
