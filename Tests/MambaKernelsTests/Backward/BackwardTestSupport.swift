import Foundation
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
import MambaVerification

/// Problems and the derived error bound of the backward-kernel tests.
///
/// **The bound.** Let `m_e` be the gradient magnitudes of
/// `GradientComparison.magnitudes` (the first-order effect on each gradient
/// element of perturbing every quantity a kernel rounds by one unit
/// roundoff), as `storage + accumulation` with the decay exponent
/// conditioned as a difference of global prefix sums (`magnitudes` below). A kernel
/// that evaluates the same sums in some order, with at most `K` sequential
/// roundings of unit roundoff `u_w` (working format) on the dependency path
/// of any term, and at most `S` roundings of operands to a storage format
/// with unit roundoff `u_op`, has, to first order (Higham's `γ_K = Ku/(1−Ku)`
/// per term, summed over terms),
///
///     |ŷ_e − y_e| ≤ γ_K(u_w)·m_e + S·u_op·m_e + ½ulp(y_e) (output rounding).
///
/// `K` counts the longest chains, generously: the score dot product (`dk`),
/// the second-order features and the state product (`F`), `G = dO·ṽ` and
/// `δ` (`2·ldv`), the sums over keys and over chunks for the forward
/// normaliser, the state, `dq`/`dk`/`dv`/`dL`, the state gradient and the
/// suffix sum of `da` (`3N` in total: each is at most `N` terms, and at most
/// three of them are chained), the feature VJP (`dk`), and 30 single
/// roundings (scale, exp, products with the decay, divisions, the row
/// shift); the decay's prefix sums (up to `N` roundings relative to `|L|`)
/// are inside `3N`, since `m_e` carries `|L_i| + |L_j|` per weight.
/// `K = 3N + 2dk + F + 2·ldv + 30`. `S = 8` operand stages (`dÕ`, `P` or
/// `dX`, scaled features, the state or the state gradient and the values
/// feeding them, the stored output δ is formed from; at most about five on any path,
/// eight with margin), as in the forward tests. A factor 2 covers
/// second-order terms. In the verdict's units (`slack = 2 ulp +
/// boundFactor·u_F·m_e`, `u_F` the output format's unit roundoff), with no
/// baselines:
///
/// - float32: `boundFactor = 2K` (`u_w = u_F = 2⁻²⁴`, no operand rounding);
/// - float16-acc32: `2(S + K·2⁻¹³)` (`u_op = u_F = 2⁻¹¹`, `u_w = 2⁻²⁴`);
/// - float16: `2(S + K)` (everything `2⁻¹¹`; loose, as γ_K is for
///   sequential binary16 sums; the printed ratios show the actual margin).
enum BackwardBound {
    static func steps(_ p: CoreProblem) -> Int {
        let ldv = p.valueDim + (p.spec.normalization == .sum ? 1 : 0)
        return 3 * p.length + 2 * p.keyDim + (p.featureDim ?? 0) + 2 * ldv + 30
    }

    static func boundFactor(_ mode: PrecisionMode, _ p: CoreProblem) -> Double {
        let k = Double(steps(p))
        switch mode {
        case .float32: return 2 * k
        case .float16Acc32, .bfloat16Acc32, .tf32: return 2 * (8 + k * 0x1p-13)
        case .float16: return 2 * (8 + k)
        }
    }

    /// The verdict's number format for `mode`.
    static func format(_ mode: PrecisionMode) -> MambaPrecision.NumberFormat { KernelComparison.format(for: mode) }

    /// The magnitudes as `storage + accumulation` (every rounding at one
    /// unit roundoff, in every mode: the second-order and decay-scaled
    /// features are GEMM operands *stored* in binary16 in the acc32 modes, so
    /// a weight formed through the state carries `u_op·Ã`, not only
    /// `u_acc·Ã`), with the decay exponent conditioned as a difference of
    /// global prefix sums (`|L_i| + |L_j|`: the quadratic and tiled forms
    /// form it that way; `K ≥ N` covers the `(i+1)·u·|L_i|` of a sequential prefix sum).
    static func magnitudes(_ g: GradientProblem, _ mode: PrecisionMode) -> TotalMagnitudes {
        TotalMagnitudes(GradientComparison.magnitudes(g, decay: .globalPrefix))
    }
}

/// `storage + accumulation` of every tensor.
struct TotalMagnitudes {
    var dq: [Double], dk: [Double], dv: [Double]
    var dL: [Double]?, da: [Double]?, dInitialState: [Double]?, dInitialStateZ: [Double]?
    init(_ m: GradientMagnitudes) {
        dq = m.dq.total; dk = m.dk.total; dv = m.dv.total
        dL = m.dL?.total; da = m.da?.total
        dInitialState = m.dInitialState?.total; dInitialStateZ = m.dInitialStateZ?.total
    }
}

/// One tensor's comparison, printed pass or fail (FLA-style numbers).
struct GradientCheck: CustomStringConvertible {
    var name: String
    var verdict: Verdict
    var maxAbs: Double
    var normwise: Double
    /// Largest `|ŷ − y| / (u_F·m)` over elements with `m > 0`.
    var worstInUnits: Double

    var passed: Bool { verdict.passed }
    var description: String {
        "\(name): max|err| \(String(format: "%.2e", maxAbs)) normwise \(String(format: "%.2e", normwise)) "
            + "max err/(u·m) \(String(format: "%.3g", worstInUnits))\(passed ? "" : " FAIL (\(verdict.reason))")"
    }
}

enum BackwardChecks {
    /// Every gradient of `kernel` against `oracle` under `policy` (no
    /// baselines unless given: a pure a-priori bound).
    static func compare(_ kernel: CoreGradients, _ oracle: ReferenceGradients, _ mags: TotalMagnitudes,
                        _ g: GradientProblem, mode: PrecisionMode, policy: VerdictPolicy,
                        baselines: [CoreGradients] = []) throws -> [GradientCheck] {
        let c = g.core
        let fmt = BackwardBound.format(mode)
        let f = c.featureDim ?? 0
        var list: [(String, [Double], [BigFloat], [Double], [[Double]], [Int])] = [
            ("dq", kernel.dq, oracle.dq, mags.dq, baselines.map(\.dq), [c.batch, c.heads, c.length, c.keyDim]),
            ("dk", kernel.dk, oracle.dk, mags.dk, baselines.map(\.dk), [c.batch, c.heads, c.length, c.keyDim]),
            ("dv", kernel.dv, oracle.dv, mags.dv, baselines.map(\.dv), [c.batch, c.heads, c.length, c.valueDim]),
        ]
        if let d = kernel.dL { list.append(("dL", d, oracle.dL!, mags.dL!, baselines.compactMap(\.dL), [c.batch, c.heads, c.length])) }
        if let d = kernel.da { list.append(("da", d, oracle.da!, mags.da!, baselines.compactMap(\.da), [c.batch, c.heads, c.length])) }
        if let d = kernel.dInitialState {
            list.append(("dS0", d, oracle.dInitialState!, mags.dInitialState!, baselines.compactMap(\.dInitialState),
                         [c.batch, c.heads, f, c.valueDim]))
        }
        if let d = kernel.dInitialStateZ {
            list.append(("dz0", d, oracle.dInitialStateZ!, mags.dInitialStateZ!, baselines.compactMap(\.dInitialStateZ),
                         [c.batch, c.heads, f]))
        }
        return try list.map { name, cand, ref, mag, base, shape in
            let verdict = try policy.judge(candidate: cand, oracle: ref, magnitude: mag, baselines: base,
                                           shape: shape, format: fmt)
            var maxAbs = 0.0, errSq = 0.0, refSq = 0.0, worst = 0.0
            for e in cand.indices {
                let y = ref[e].doubleValue
                guard y.isFinite else { continue }
                let d = abs(cand[e] - y)
                maxAbs = max(maxAbs, d.isNaN ? .infinity : d)
                errSq += d * d; refSq += y * y
                if mag[e] > 0 { worst = max(worst, d / (fmt.unitRoundoff * mag[e])) }
            }
            return GradientCheck(name: name, verdict: verdict, maxAbs: maxAbs,
                                 normwise: refSq == 0 ? (errSq == 0 ? 0 : .infinity) : (errSq / refSq).squareRoot(),
                                 worstInUnits: worst)
        }
    }
}

enum BackwardProblems {
    /// A random gradient problem whose inputs (and `dO`) are exact in
    /// `storage`. relu-linear: the first entry of every q and k row is made
    /// positive, so no sum-normalised row has a zero normaliser (zero rows
    /// have their own test). `decayScale` multiplies the per-step decays
    /// (1/16 for pure binary16, whose prefix sums otherwise lose the decay,
    /// as in the forward tests).
    static func make(_ spec: CoreSpec, storage: InputStorage, batch: Int = 1, heads: Int = 2, length: Int,
                     keyDim: Int = 4, valueDim: Int = 3, initialState: Bool, decayScale: Double = 1,
                     seed: UInt64) -> GradientProblem {
        var core = CoreProblem.random(spec: spec, batch: batch, heads: heads, length: length, keyDim: keyDim,
                                      valueDim: valueDim, storage: storage,
                                      withInitialState: initialState && spec.score.hasFeatureMap, seed: seed)
        if spec.score == .reluLinear {
            for row in 0..<(core.sequences * length) {
                core.q[row * keyDim] = storage.round(abs(core.q[row * keyDim]) + 0.125)
                core.k[row * keyDim] = storage.round(abs(core.k[row * keyDim]) + 0.125)
            }
        }
        if decayScale != 1, case .perStep(let a)? = core.decay {
            core.decay = .perStep(a.map { storage.round($0 * decayScale) })
        }
        return GradientProblem.random(core: core, storage: storage, seed: seed)
    }
}
