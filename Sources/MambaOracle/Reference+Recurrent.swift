import CMPFR
import MambaPrecision
import MambaVariants

extension Reference {
    /// The recurrent form (docs/MATH.md §3) in MPFR: `S_t = α_t S_{t−1} + φ(k_t) v_tᵀ`,
    /// `z_t = α_t z_{t−1} + φ(k_t)`, `y_t = c·φ(q_t)ᵀS_t` or
    /// `φ(q_t)ᵀS_t / φ(q_t)ᵀz_t`, with `α_t = exp(a_t)` and the packed
    /// second-order map (√2 weights) for the squared score. The exponential
    /// score streams over a KV cache with an online maximum instead.
    /// Returns the final state for scores with a feature map.
    public static func recurrent(_ p: CoreProblem, precision: Int = BigFloat.defaultPrecision) throws -> ReferenceOutput {
        if let m = p.validationError() { throw ReferenceError.invalidProblem(m) }
        return stateForm(p, precision: precision, exponentialBlock: 1) { recurrentSequence($0) }
    }

    /// One sequence of the recurrent form: outputs, final S and z.
    static func recurrentSequence(_ c: ReferenceSequence) -> (MPFRBuffer, MPFRBuffer, MPFRBuffer) {
        let f = c.featureDim!
        let n = c.n, dv = c.dv, pr = c.precision
        let s = MPFRBuffer(count: f * dv, precision: pr)
        let z = MPFRBuffer(count: f, precision: pr)
        if let s0 = c.s0 { for i in 0..<(f * dv) { mc_set(s[i], s0[i], MPFR_RNDN) } }
        if let z0 = c.z0 { for i in 0..<f { mc_set(z[i], z0[i], MPFR_RNDN) } }
        let out = MPFRBuffer(count: n * dv, precision: pr)
        let fk = MPFRBuffer(count: f, precision: pr), fq = MPFRBuffer(count: f, precision: pr)
        let t = MPFRBuffer(count: 3, precision: pr)
        let alpha = MPFRBuffer(count: 1, precision: c.decayPrecision)
        let sqrt2 = MPFRBuffer(count: 1, precision: pr + 8)
        mc_set_ui(sqrt2[0], 2, MPFR_RNDN); mc_sqrt(sqrt2[0], sqrt2[0], MPFR_RNDN)
        let cq = t[2]
        c.queryConstant(cq)
        for step in 0..<n {
            c.features(of: c.kM, row: step, into: fk, sqrt2: sqrt2[0])
            c.features(of: c.qM, row: step, into: fq, sqrt2: sqrt2[0])
            if let A = c.steps {
                mc_exp(alpha[0], A[step], MPFR_RNDN)
                for i in 0..<(f * dv) { mc_mul(s[i], s[i], alpha[0], MPFR_RNDN) }
                for i in 0..<f { mc_mul(z[i], z[i], alpha[0], MPFR_RNDN) }
            }
            for a in 0..<f {
                mc_add(z[a], z[a], fk[a], MPFR_RNDN)
                for col in 0..<dv { mc_fma(s[a * dv + col], fk[a], c.vM[step * dv + col], s[a * dv + col], MPFR_RNDN) }
            }
            mc_set_zero(t[1], 1)
            if c.spec.normalization == .sum { for a in 0..<f { mc_fma(t[1], fq[a], z[a], t[1], MPFR_RNDN) } }
            for col in 0..<dv {
                let y = out[step * dv + col]
                mc_set_zero(y, 1)
                for a in 0..<f { mc_fma(y, fq[a], s[a * dv + col], y, MPFR_RNDN) }
                if c.spec.normalization == .sum { mc_div(y, y, t[1], MPFR_RNDN) } else { mc_mul(y, y, cq, MPFR_RNDN) }
            }
        }
        return (out, s, z)
    }

    /// The exponential score without a finite state: for each query, keys in
    /// blocks of `blockSize` with an online maximum `m` (FlashAttention's
    /// rescaling): `ℓ ← ℓ·e^{m−m'} + Σ e^{x_j−m'}`, `acc ← acc·e^{m−m'} + Σ e^{x_j−m'} v_j`,
    /// where `x_j = s·q_i·k_j + L_i − L_j`. `blockSize = 1` is the streaming
    /// (recurrent) form over a KV cache.
    static func streamingExponential(_ c: ReferenceSequence, blockSize: Int) -> MPFRBuffer {
        let n = c.n, dv = c.dv, pr = c.precision
        let out = MPFRBuffer(count: n * dv, precision: pr)
        let acc = MPFRBuffer(count: dv, precision: pr)
        let t = MPFRBuffer(count: 6, precision: pr)
        let scratch = ReferenceScratch(precision: pr)
        let xs = MPFRBuffer(count: blockSize, precision: pr)
        let m = t[0], l = t[1], mNew = t[2], r = t[3], e = t[4]
        for i in 0..<n {
            mc_set_inf(m, -1); mc_set_zero(l, 1); acc.zero()
            var j0 = 0
            while j0 <= i {
                let j1 = Swift.min(i + 1, j0 + blockSize)
                mc_set(mNew, m, MPFR_RNDN)
                for j in j0..<j1 {
                    let x = xs[j - j0]
                    c.dot(x, i, j, scratch)
                    mc_mul(x, x, c.scale[0], MPFR_RNDN)
                    if let L = c.prefix { mc_add(x, x, L[i], MPFR_RNDN); mc_sub(x, x, L[j], MPFR_RNDN) }
                    mc_max(mNew, mNew, x, MPFR_RNDN)
                }
                // rescale what we have by e^{m − m'} (0 on the first block: m = −∞)
                mc_sub(r, m, mNew, MPFR_RNDN); mc_exp(r, r, MPFR_RNDN)
                mc_mul(l, l, r, MPFR_RNDN)
                for col in 0..<dv { mc_mul(acc[col], acc[col], r, MPFR_RNDN) }
                for j in j0..<j1 {
                    mc_sub(e, xs[j - j0], mNew, MPFR_RNDN); mc_exp(e, e, MPFR_RNDN)
                    mc_add(l, l, e, MPFR_RNDN)
                    for col in 0..<dv { mc_fma(acc[col], e, c.vM[j * dv + col], acc[col], MPFR_RNDN) }
                }
                mc_set(m, mNew, MPFR_RNDN)
                j0 = j1
            }
            for col in 0..<dv {
                if c.spec.normalization == .sum {
                    mc_div(out[i * dv + col], acc[col], l, MPFR_RNDN)
                } else {
                    mc_exp(r, m, MPFR_RNDN)
                    mc_mul(out[i * dv + col], acc[col], r, MPFR_RNDN)
                }
            }
        }
        return out
    }
}
