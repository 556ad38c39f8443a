import Dispatch
import MambaKernels
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
    public var policy: VerdictPolicy
    /// MPFR working precision of the oracle (bits).
    public var precision: Int
    /// Forms of MambaCheck's own kernels run in the candidate's precision mode
    /// as FA3-style baselines; the largest baseline error counts.
    public var baselineForms: [KernelForm]
    /// Options of the baseline kernels.
    public var kernelOptions: KernelOptions
    /// The precision mode that models the candidate (nil: derived from
    /// `format`, i.e. Float32 accumulation for binary16/bfloat16 storage).
    public var mode: PrecisionMode?

    /// The mode the candidate is modelled by.
    public var effectiveMode: PrecisionMode { mode ?? KernelComparison.mode(for: format) }

    public init(format: NumberFormat = .binary32, policy: VerdictPolicy = .standard, precision: Int = 128,
                baselineForms: [KernelForm] = [.chunked, .quadratic], kernelOptions: KernelOptions = .init(),
                mode: PrecisionMode? = nil) {
        self.mode = mode
        self.format = format
        self.policy = policy
        self.precision = precision
        self.baselineForms = baselineForms
        self.kernelOptions = kernelOptions
    }
}

/// Judges a candidate kernel's outputs on one core problem against the MPFR
/// oracle, with MambaCheck's own kernels in the same precision as baselines.
public enum KernelComparison {
    /// The precision mode that models a kernel whose outputs are stored in `format`:
    /// binary16 → Float16 storage with Float32 accumulation (tensor cores),
    /// bfloat16 → bfloat16 storage with Float32 accumulation, TF32 → TF32
    /// dot-product inputs, otherwise Float32.
    public static func mode(for format: NumberFormat) -> PrecisionMode {
        switch format {
        case .binary16: return .float16Acc32
        case .bfloat16: return .bfloat16Acc32
        case .tf32: return .tf32
        default: return .float32
        }
    }

    /// The format a precision mode's outputs are judged in (TF32 in, TF32
    /// effective precision out).
    public static func format(for mode: PrecisionMode) -> NumberFormat {
        switch mode {
        case .float32: return .binary32
        case .float16Acc32, .float16: return .binary16
        case .bfloat16Acc32: return .bfloat16
        case .tf32: return .tf32
        }
    }

    /// `u_acc / u_F`: how the accumulation magnitude (roundings inside a
    /// weight: `q·k`, `L_i − L_j`) is weighted against the storage format's
    /// unit roundoff `u_F` (Proofs/T9). Float32 accumulation under binary16
    /// storage gives 2⁻²⁴/2⁻¹¹; pure binary16 and TF32 (whose inputs are
    /// rounded to 11 bits inside the dot product) give 1.
    public static func accumulationRatio(format: NumberFormat, mode: PrecisionMode) -> Double {
        let uAcc: Double
        switch mode {
        case .float32, .float16Acc32, .bfloat16Acc32: uAcc = NumberFormat.binary32.unitRoundoff
        case .float16: uAcc = NumberFormat.binary16.unitRoundoff
        case .tf32: uAcc = NumberFormat.tf32.unitRoundoff
        }
        return uAcc / format.unitRoundoff
    }

    /// The growth of a correct kernel's rounding error with the number of
    /// terms it sums: `√(max(1, n/16))` with `n = N + F + dk` (sequence length,
    /// state features, dot-product length). Rounding errors of an n-term
    /// recursive sum behave like independent zero-mean variables, so the error
    /// grows like `√n·u` with high probability (Higham & Mary, "A new approach
    /// to probabilistic rounding error analysis", SISC 2019) rather than the
    /// worst-case `n·u`; the policy's `boundFactor` is calibrated for 16 terms.
    /// Applied to the accumulation part of the magnitude only
    /// (`effectiveMagnitude`, Proofs/T9).
    public static func lengthFactor(_ p: CoreProblem) -> Double {
        let n = Double(p.length + (p.featureDim ?? p.keyDim) + p.keyDim)
        return Swift.max(1, n / 16).squareRoot()
    }

    /// The absolute error that gradual underflow can add, expressed as a
    /// magnitude (the verdict multiplies it by `boundFactor·u_F`): each of the
    /// `n = N + F + dk` operations or stored terms that produce an output may
    /// round in the subnormal range of the storage or accumulation format,
    /// where the error is up to half the smallest subnormal `η/2` whatever
    /// the operands' size — the one error not proportional to any magnitude.
    /// It is `n·η/(2u_F)` with the larger `η` of the two formats: `n·2⁻¹⁴` for
    /// binary16 storage (η = 2⁻²⁴), negligible for Float32 and bfloat16.
    public static func underflowFloor(_ p: CoreProblem, format: NumberFormat, mode: PrecisionMode) -> Double {
        let acc: NumberFormat
        switch mode {
        case .float16: acc = .binary16
        case .tf32: acc = .tf32
        default: acc = .binary32
        }
        let eta = Swift.max(acc.leastNonzeroMagnitude, format.leastNonzeroMagnitude)
        let n = Double(p.length + (p.featureDim ?? p.keyDim) + p.keyDim)
        return n * eta / 2 / format.unitRoundoff
    }

    /// One report case per tensor (`o`, and `final_state`/`final_state_z` when
    /// the candidate returned a final state), named `name` (e.g. `2mamba/candidate/float16`).
    ///
    /// - Parameter oracle: a precomputed oracle for `problem` (with final state
    ///   if the candidate has one), or nil to compute it here.
    public static func compare(problem: CoreProblem, candidate: CandidateTensors, name: String,
                               settings: ComparisonSettings, oracle: ReferenceOutput? = nil,
                               baselines precomputed: [CoreOutput]? = nil) throws -> [ReportCase] {
        let start = DispatchTime.now().uptimeNanoseconds
        let wantState = candidate.finalState != nil
        let ref = try oracle ?? Reference.quadratic(problem, precision: settings.precision, finalState: wantState)
        let baselines = try precomputed ?? baselineOutputs(problem, settings: settings)
        let shape = [problem.batch, problem.heads, problem.length, problem.valueDim]
        var cases: [ReportCase] = []
        let metrics = try TensorMetrics(candidate: candidate.o, reference: ref, shape: shape, format: settings.format)
        let ratio = accumulationRatio(format: settings.format, mode: settings.effectiveMode)
        let growth = lengthFactor(problem)
        let floor = underflowFloor(problem, format: settings.format, mode: settings.effectiveMode)
        let verdict = try settings.policy.judge(candidate: candidate.o, oracle: ref.o,
                                                magnitude: zip(ref.effectiveMagnitude(accumulationRatio: ratio, growth: growth),
                                                               stateMagnitude(problem, oracle: ref.oDouble)).map { $0 + $1 + floor },
                                                baselines: baselines.map(\.o), shape: shape, format: settings.format)
        cases.append(ReportCase(name: name, tensor: "o", metrics: metrics, verdict: verdict,
                                durationSeconds: seconds(since: start)))
        if let cs = candidate.finalState, let f = problem.featureDim, let s = ref.finalStateS {
            let fm = finalStateMagnitude(problem)
            let mag = (s: effectiveMagnitude(storage: fm.s, accumulation: fm.sAcc, ratio: ratio, growth: growth).map { $0 + floor },
                       z: effectiveMagnitude(storage: fm.z, accumulation: fm.zAcc, ratio: ratio, growth: growth).map { $0 + floor })
            let sShape = [problem.batch, problem.heads, f, problem.valueDim]
            let bs = baselines.compactMap { $0.finalState?.s }
            cases.append(ReportCase(
                name: name, tensor: "final_state",
                metrics: try TensorMetrics(candidate: cs.s, oracle: s, shape: sShape, format: settings.format),
                verdict: try settings.policy.judge(candidate: cs.s, oracle: s, magnitude: mag.s, baselines: bs,
                                                   shape: sShape, format: settings.format),
                durationSeconds: 0))
            if let cz = cs.z, let z = ref.finalStateZ {
                let zShape = [problem.batch, problem.heads, f]
                let bz = baselines.compactMap { $0.finalState?.z }
                cases.append(ReportCase(
                    name: name, tensor: "final_state_z",
                    metrics: try TensorMetrics(candidate: cz, oracle: z, shape: zShape, format: settings.format),
                    verdict: try settings.policy.judge(candidate: cz, oracle: z, magnitude: mag.z, baselines: bz,
                                                       shape: zShape, format: settings.format),
                    durationSeconds: 0))
            }
        }
        return cases
    }

    /// MambaCheck's own kernels in the mode matching `settings.format`; forms
    /// that do not apply to the core (e.g. tiled for un-normalised cores) are skipped.
    public static func baselineOutputs(_ problem: CoreProblem, settings: ComparisonSettings) throws -> [CoreOutput] {
        let mode = settings.effectiveMode
        var out: [CoreOutput] = []
        for form in settings.baselineForms {
            do {
                out.append(try CoreKernels.run(problem, form: form, mode: mode, options: settings.kernelOptions))
            } catch is KernelError {
                continue
            }
        }
        return out
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
                    p.spec.score == .reluLinear ? Swift.max($0, 0) : $0.magnitude
                }
                let phi = FeatureMap.apply(p.spec.score == .squared ? .squared : .linear, kj).map(\.magnitude)
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
        let c = p.spec.score == .squared ? p.scale * p.scale : p.scale
        let sum = p.spec.normalization == .sum
        let phiScore: Score = p.spec.score == .reluLinear ? .reluLinear : (p.spec.score == .squared ? .squared : .linear)
        for seq in 0..<p.sequences {
            var s = p.initialState.map { Array($0.s[seq * f * dv ..< (seq + 1) * f * dv]) } ?? [Double](repeating: 0, count: f * dv)
            var z = p.initialState?.z.map { Array($0[seq * f ..< (seq + 1) * f]) } ?? [Double](repeating: 0, count: f)
            let steps: [Double]? = p.prefixSums(sequence: seq).map { l in (0..<n).map { $0 == 0 ? l[0] : l[$0] - l[$0 - 1] } }
            for t in 0..<n {
                let alpha = steps.map { exp($0[t]) } ?? 1
                let fk = FeatureMap.apply(phiScore, Array(p.k[(seq * n + t) * dk ..< (seq * n + t + 1) * dk]))
                let fq = FeatureMap.apply(phiScore, Array(p.q[(seq * n + t) * dk ..< (seq * n + t + 1) * dk]))
                for a in 0..<f {
                    z[a] = alpha * z[a] + fk[a]
                    for col in 0..<dv { s[a * dv + col] = alpha * s[a * dv + col] + fk[a] * p.v[(seq * n + t) * dv + col] }
                }
                var zAbs = 0.0, den = 0.0
                if sum { for a in 0..<f { zAbs += abs(fq[a] * z[a]); den += fq[a] * z[a] } }
                for col in 0..<dv {
                    var m = 0.0
                    for a in 0..<f { m += abs(fq[a] * s[a * dv + col]) }
                    let idx = (seq * n + t) * dv + col
                    if sum {
                        let yv = y[idx].isFinite ? abs(y[idx]) : 0
                        out[idx] = den > 0 ? (m + yv * zAbs) / den : 0
                    } else {
                        out[idx] = c * m
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
