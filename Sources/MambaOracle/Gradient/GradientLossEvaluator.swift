import CMPFR
import MambaPrecision
import MambaVariants

/// The scalar loss `ℓ = Σ_i O_i·dO_i` of one (batch, head) sequence,
/// evaluated straight from docs/MATH.md §1 (quadratic form, initial-state term
/// included) on inputs held as MPFR numbers of the working precision, so that
/// they can be perturbed by amounts far below a Double's resolution.
///
/// It is deliberately a separate, minimal forward (no exact integer dot
/// products, no factored decay, no shared code with the analytic backward),
/// used only by the derivative-free gradient check; its agreement with
/// `Reference.quadratic` is tested separately.
final class GradientLossEvaluator {
    let spec: CoreSpec
    let n: Int, dk: Int, dv: Int, f: Int
    let precision: Int
    /// Raw inputs (before ReLU), working precision.
    let q: MPFRBuffer, k: MPFRBuffer, v: MPFRBuffer
    /// Inclusive prefix sums at `precision + 64` bits (nil without decay).
    let L: MPFRBuffer?
    let s0: MPFRBuffer?, z0: MPFRBuffer?
    let dO: MPFRBuffer
    let scale: MPFRBuffer
    // scratch
    private let qt: MPFRBuffer, kt: MPFRBuffer, num: MPFRBuffer, feat: MPFRBuffer
    private let t: MPFRBuffer, wide: MPFRBuffer, sqrt2: MPFRBuffer

    init(_ g: GradientProblem, sequence seq: Int, precision: Int) {
        let p = g.core
        spec = p.spec
        n = p.length; dk = p.keyDim; dv = p.valueDim
        f = p.featureDim ?? 0
        self.precision = precision
        q = MPFRBuffer(count: n * dk, precision: precision)
        q.setAll(p.q[seq * n * dk ..< (seq + 1) * n * dk])
        k = MPFRBuffer(count: n * dk, precision: precision)
        k.setAll(p.k[seq * n * dk ..< (seq + 1) * n * dk])
        v = MPFRBuffer(count: n * dv, precision: precision)
        v.setAll(p.v[seq * n * dv ..< (seq + 1) * n * dv])
        dO = MPFRBuffer(count: n * dv, precision: 53)
        dO.setAll(g.dO[seq * n * dv ..< (seq + 1) * n * dv])
        scale = MPFRBuffer(count: 1, precision: Swift.max(precision, 64))
        p.scaleSpec.set(scale[0], MPFR_RNDN)
        if p.spec.hasDecay, let d = p.decay {
            let l = MPFRBuffer(count: n, precision: precision + 64)
            switch d {
            case .perStep(let a):
                // Prefix sums of the doubles a_t at precision + 64 bits, as the oracle forms them.
                for t in 0..<n {
                    mc_set_d(l[t], a[seq * n + t], MPFR_RNDN)
                    if t > 0 { mc_add(l[t], l[t], l[t - 1], MPFR_RNDN) }
                }
            case .prefixSum(let ls):
                for t in 0..<n { mc_set_d(l[t], ls[seq * n + t], MPFR_RNDN) }
            }
            L = l
        } else { L = nil }
        if let st = p.initialState, f > 0 {
            let s = MPFRBuffer(count: f * dv, precision: precision)
            s.setAll(st.s[seq * f * dv ..< (seq + 1) * f * dv])
            s0 = s
            if p.spec.normalization == .sum, let z = st.z {
                let zb = MPFRBuffer(count: f, precision: precision)
                zb.setAll(z[seq * f ..< (seq + 1) * f])
                z0 = zb
            } else { z0 = nil }
        } else { s0 = nil; z0 = nil }
        qt = MPFRBuffer(count: n * dk, precision: precision)
        kt = MPFRBuffer(count: n * dk, precision: precision)
        num = MPFRBuffer(count: dv, precision: precision)
        feat = MPFRBuffer(count: Swift.max(f, 1), precision: precision)
        t = MPFRBuffer(count: 6, precision: precision)
        wide = MPFRBuffer(count: 1, precision: precision + 64)
        sqrt2 = MPFRBuffer(count: 1, precision: precision + 8)
        mc_set_ui(sqrt2[0], 2, MPFR_RNDN); mc_sqrt(sqrt2[0], sqrt2[0], MPFR_RNDN)
    }

    /// `r ← ℓ` for the current inputs (all operations at the working precision).
    func loss(into r: UnsafeMutablePointer<__mpfr_struct>) {
        let relu = spec.score.traits.reluOnInputs, isSum = spec.normalization == .sum
        for e in 0..<(n * dk) {
            mc_set(qt[e], q[e], MPFR_RNDN); mc_set(kt[e], k[e], MPFR_RNDN)
            if relu {
                if mc_sgn(qt[e]) < 0 { mc_set_zero(qt[e], 1) }
                if mc_sgn(kt[e]) < 0 { mc_set_zero(kt[e], 1) }
            }
        }
        let x = t[0], wgt = t[1], den = t[2], tmp = t[3], cq = t[4], o = t[5]
        spec.score.featureConstant(cq, scale: scale[0])
        mc_set_zero(r, 1)
        for i in 0..<n {
            num.zero(); mc_set_zero(den, 1)
            for j in 0...i {
                mc_set_zero(x, 1)
                for d in 0..<dk { mc_fma(x, qt[i * dk + d], kt[j * dk + d], x, MPFR_RNDN) }
                mc_mul(x, x, scale[0], MPFR_RNDN)
                switch spec.score {
                case .exponential:
                    if let L {
                        mc_sub(wide[0], L[i], L[j], MPFR_RNDN)
                        mc_add(wide[0], wide[0], x, MPFR_RNDN)
                        mc_exp(wgt, wide[0], MPFR_RNDN)
                    } else { mc_exp(wgt, x, MPFR_RNDN) }
                case .squared, .linear, .reluLinear:
                    spec.score.applyPolynomial(wgt, x)
                    if let L {
                        mc_sub(wide[0], L[i], L[j], MPFR_RNDN)
                        mc_exp(tmp, wide[0], MPFR_RNDN)
                        mc_mul(wgt, wgt, tmp, MPFR_RNDN)
                    }
                }
                mc_add(den, den, wgt, MPFR_RNDN)
                for c in 0..<dv { mc_fma(num[c], wgt, v[j * dv + c], num[c], MPFR_RNDN) }
            }
            if let s0 {
                // σ = c·e^{L_i}·φ(q̃_i)
                featureMap(row: i)
                if let L { mc_exp(tmp, L[i], MPFR_RNDN); mc_mul(tmp, tmp, cq, MPFR_RNDN) } else { mc_set(tmp, cq, MPFR_RNDN) }
                for a in 0..<f {
                    mc_mul(wgt, feat[a], tmp, MPFR_RNDN)
                    if let z0 { mc_fma(den, wgt, z0[a], den, MPFR_RNDN) }
                    for c in 0..<dv { mc_fma(num[c], wgt, s0[a * dv + c], num[c], MPFR_RNDN) }
                }
            }
            for c in 0..<dv {
                if isSum { mc_div(o, num[c], den, MPFR_RNDN) } else { mc_set(o, num[c], MPFR_RNDN) }
                mc_fma(r, o, dO[i * dv + c], r, MPFR_RNDN)
            }
        }
    }

    /// `feat ← φ(q̃_i)` (identity, or the packed second-order map with √2 weights).
    private func featureMap(row i: Int) {
        ReferenceSequence.features(spec.score, dim: dk, x: qt[i * dk], into: feat[0], sqrt2: sqrt2[0])
    }
}
