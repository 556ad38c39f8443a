import CMPFR
import MambaPrecision
import MambaVariants

extension Reference {
    /// The chunked (SSD) form (docs/MATH.md §3) in MPFR with chunk-local prefix sums
    /// `ℓ_i = a_{c₀} + … + a_i`: intra-chunk `W_ij = f(s q_i·k_j) exp(ℓ_i − ℓ_j)`,
    /// inter-chunk `c·exp(ℓ_i)·φ(q_i)ᵀS_{c−1}`, carry
    /// `S_c = exp(ℓ_last) S_{c−1} + Σ_j exp(ℓ_last − ℓ_j) φ(k_j) v_jᵀ` (same for z).
    /// The exponential score uses key blocks of `chunkSize` with an online maximum.
    public static func chunked(_ p: CoreProblem, chunkSize: Int, precision: Int = BigFloat.defaultPrecision) throws
        -> ReferenceOutput
    {
        if let m = p.validationError() { throw ReferenceError.invalidProblem(m) }
        precondition(chunkSize >= 1)
        return stateForm(p, precision: precision, exponentialBlock: chunkSize) { chunkedSequence($0, chunkSize: chunkSize) }
    }

    /// The driver of the state forms (chunked, recurrent): per sequence,
    /// `sequence` gives the output and the final state `(o, S, z)`; the
    /// exponential score, which has no finite state, streams over key blocks
    /// of `exponentialBlock` with an online maximum instead.
    static func stateForm(_ p: CoreProblem, precision: Int, exponentialBlock: Int,
                          _ sequence: (ReferenceSequence) -> (MPFRBuffer, MPFRBuffer, MPFRBuffer)) -> ReferenceOutput {
        var o: [BigFloat] = [], fs: [BigFloat] = [], fz: [BigFloat] = []
        for seq in 0..<p.sequences {
            let c = ReferenceSequence(problem: p, sequence: seq, precision: precision)
            if p.spec.score == .exponential {
                o += streamingExponential(c, blockSize: exponentialBlock).values()
                continue
            }
            let (out, st, zt) = sequence(c)
            o += out.values()
            fs += st.values()
            if p.spec.normalization == .sum { fz += zt.values() }
        }
        let hasState = p.spec.score != .exponential
        return ReferenceOutput(precision: precision, o: o, denominators: nil,
                               finalStateS: hasState ? fs : nil,
                               finalStateZ: hasState && p.spec.normalization == .sum ? fz : nil,
                               magnitude: [], accumulationMagnitude: [], decayMagnitude: [])
    }

    /// One sequence of the chunked form: outputs, final S and z.
    static func chunkedSequence(_ c: ReferenceSequence, chunkSize: Int) -> (MPFRBuffer, MPFRBuffer, MPFRBuffer) {
        let f = c.featureDim!
        let n = c.n, dv = c.dv, pr = c.precision
        let sum = c.spec.normalization == .sum
        let s = MPFRBuffer(count: f * dv, precision: pr)
        let z = MPFRBuffer(count: f, precision: pr)
        if let s0 = c.s0 { for i in 0..<(f * dv) { mc_set(s[i], s0[i], MPFR_RNDN) } }
        if let z0 = c.z0 { for i in 0..<f { mc_set(z[i], z0[i], MPFR_RNDN) } }
        let out = MPFRBuffer(count: n * dv, precision: pr)
        let fq = MPFRBuffer(count: f, precision: pr)
        let fk = MPFRBuffer(count: chunkSize * f, precision: pr)
        let ell = MPFRBuffer(count: chunkSize, precision: c.decayPrecision)
        let t = MPFRBuffer(count: 6, precision: pr)
        let g = MPFRBuffer(count: 2, precision: c.decayPrecision)
        let num = MPFRBuffer(count: dv, precision: pr)
        let newS = MPFRBuffer(count: f * dv, precision: pr), newZ = MPFRBuffer(count: f, precision: pr)
        let sqrt2 = MPFRBuffer(count: 1, precision: pr + 8)
        mc_set_ui(sqrt2[0], 2, MPFR_RNDN); mc_sqrt(sqrt2[0], sqrt2[0], MPFR_RNDN)
        let scratch = ReferenceScratch(precision: pr)
        let cq = t[5]
        c.queryConstant(cq)
        var c0 = 0
        while c0 < n {
            let c1 = Swift.min(n, c0 + chunkSize)
            // chunk-local inclusive prefix sums
            for i in c0..<c1 {
                if let A = c.steps {
                    if i == c0 { mc_set(ell[0], A[i], MPFR_RNDN) } else { mc_add(ell[i - c0], ell[i - c0 - 1], A[i], MPFR_RNDN) }
                } else { mc_set_zero(ell[i - c0], 1) }
            }
            let sub = MPFRBuffer(count: f, precision: pr)
            for j in c0..<c1 {
                c.features(of: c.kM, row: j, into: sub, sqrt2: sqrt2[0])
                for a in 0..<f { mc_set(fk[(j - c0) * f + a], sub[a], MPFR_RNDN) }
            }
            for i in c0..<c1 {
                num.zero()
                let den = t[0]
                mc_set_zero(den, 1)
                // intra-chunk
                for j in c0...i {
                    let x = t[1], w = t[2]
                    c.dot(x, i, j, scratch)
                    c.score(w, x: x)
                    if c.steps != nil {
                        mc_sub(g[0], ell[i - c0], ell[j - c0], MPFR_RNDN)
                        mc_exp(g[0], g[0], MPFR_RNDN)
                        mc_mul(w, w, g[0], MPFR_RNDN)
                    }
                    mc_add(den, den, w, MPFR_RNDN)
                    for col in 0..<dv { mc_fma(num[col], w, c.vM[j * dv + col], num[col], MPFR_RNDN) }
                }
                // inter-chunk: c·exp(ℓ_i)·φ(q_i)ᵀ S
                c.features(of: c.qM, row: i, into: fq, sqrt2: sqrt2[0])
                let coef = t[3]
                mc_set(coef, cq, MPFR_RNDN)
                if c.steps != nil { mc_exp(g[1], ell[i - c0], MPFR_RNDN); mc_mul(coef, coef, g[1], MPFR_RNDN) }
                let acc = t[4]
                for col in 0..<dv {
                    mc_set_zero(acc, 1)
                    for a in 0..<f { mc_fma(acc, fq[a], s[a * dv + col], acc, MPFR_RNDN) }
                    mc_fma(num[col], coef, acc, num[col], MPFR_RNDN)
                }
                if sum {
                    mc_set_zero(acc, 1)
                    for a in 0..<f { mc_fma(acc, fq[a], z[a], acc, MPFR_RNDN) }
                    mc_fma(den, coef, acc, den, MPFR_RNDN)
                    for col in 0..<dv { mc_div(out[i * dv + col], num[col], den, MPFR_RNDN) }
                } else {
                    for col in 0..<dv { mc_set(out[i * dv + col], num[col], MPFR_RNDN) }
                }
            }
            // carry
            let last = c1 - 1 - c0
            let total = t[3]
            if c.steps != nil { mc_exp(total, ell[last], MPFR_RNDN) } else { mc_set_ui(total, 1, MPFR_RNDN) }
            for i in 0..<(f * dv) { mc_mul(newS[i], s[i], total, MPFR_RNDN) }
            for i in 0..<f { mc_mul(newZ[i], z[i], total, MPFR_RNDN) }
            for j in c0..<c1 {
                let w = t[2]
                if c.steps != nil {
                    mc_sub(g[0], ell[last], ell[j - c0], MPFR_RNDN); mc_exp(w, g[0], MPFR_RNDN)
                } else { mc_set_ui(w, 1, MPFR_RNDN) }
                for a in 0..<f {
                    mc_mul(t[1], w, fk[(j - c0) * f + a], MPFR_RNDN)
                    mc_add(newZ[a], newZ[a], t[1], MPFR_RNDN)
                    for col in 0..<dv { mc_fma(newS[a * dv + col], t[1], c.vM[j * dv + col], newS[a * dv + col], MPFR_RNDN) }
                }
            }
            for i in 0..<(f * dv) { mc_set(s[i], newS[i], MPFR_RNDN) }
            for i in 0..<f { mc_set(z[i], newZ[i], MPFR_RNDN) }
            c0 = c1
        }
        return (out, s, z)
    }
}
