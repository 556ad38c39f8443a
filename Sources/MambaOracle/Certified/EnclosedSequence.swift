import CMPFR
import MambaVariants

/// One (batch, head) sequence prepared for the certified oracle at one
/// working precision: the shared `ReferenceSequence` (exact integer rows,
/// inputs as MPFR numbers) plus enclosures of everything that is not exact
/// (Proofs/T7, step 1):
///
/// - the scale `s ∈ [sLo, sHi]` (a point when the kernel received a binary value);
/// - the prefix sums `L_t ∈ [lLo_t, lHi_t]` (per-step decays summed rounding
///   down and up; given prefix sums are exact);
/// - for the factored decay, `e^{−L_t} ∈ [eLo_t, eHi_t]` and `e^{L_t} ∈ [fLo_t, fHi_t]`.
final class EnclosedSequence: @unchecked Sendable {
    let base: ReferenceSequence
    let sLo: MPFRBuffer, sHi: MPFRBuffer
    let lLo: MPFRBuffer?, lHi: MPFRBuffer?
    /// `e^{−L}` and `e^{L}` enclosures (factored decay only; not for the exponential score).
    let eLo: MPFRBuffer?, eHi: MPFRBuffer?, fLo: MPFRBuffer?, fHi: MPFRBuffer?
    var factored: Bool { eLo != nil }

    init(problem p: CoreProblem, sequence seq: Int, precision: Int) {
        let c = ReferenceSequence(problem: p, sequence: seq, precision: precision)
        base = c
        let sp = Swift.max(precision, 64)
        sLo = MPFRBuffer(count: 1, precision: sp); sHi = MPFRBuffer(count: 1, precision: sp)
        p.scaleSpec.set(sLo[0], MPFR_RNDD); p.scaleSpec.set(sHi[0], MPFR_RNDU)
        let n = c.n
        if p.spec.hasDecay, let d = p.decay {
            let lp = c.decayPrecision
            let lo = MPFRBuffer(count: n, precision: lp), hi = MPFRBuffer(count: n, precision: lp)
            switch d {
            case .perStep(let a):
                let ap = MPFRBuffer(count: 1, precision: 53)
                for t in 0..<n {
                    let x = a[seq * n + t]
                    if t == 0 { mc_set_d(lo[0], x, MPFR_RNDD); mc_set_d(hi[0], x, MPFR_RNDU) } else {
                        mc_set_d(ap[0], x, MPFR_RNDN)  // exact
                        mc_add(lo[t], lo[t - 1], ap[0], MPFR_RNDD); mc_add(hi[t], hi[t - 1], ap[0], MPFR_RNDU)
                    }
                }
            case .prefixSum(let l):
                for t in 0..<n { mc_set_d(lo[t], l[seq * n + t], MPFR_RNDN); mc_set_d(hi[t], l[seq * n + t], MPFR_RNDN) }
            }
            lLo = lo; lHi = hi
            if !c.pairwiseDecay && p.spec.score != .exponential {
                let a = MPFRBuffer(count: n, precision: lp), b = MPFRBuffer(count: n, precision: lp)
                let f = MPFRBuffer(count: n, precision: lp), g = MPFRBuffer(count: n, precision: lp)
                let t = MPFRBuffer(count: 2, precision: lp)
                for i in 0..<n {
                    // e^{−L} ∈ [exp↓(−lHi), exp↑(−lLo)]; negation is exact.
                    mc_neg(t[0], hi[i], MPFR_RNDN); mc_neg(t[1], lo[i], MPFR_RNDN)
                    Interval.exp(a[i], b[i], t[0], t[1])
                    Interval.exp(f[i], g[i], lo[i], hi[i])
                }
                eLo = a; eHi = b; fLo = f; fHi = g
            } else { eLo = nil; eHi = nil; fLo = nil; fHi = nil }
        } else {
            lLo = nil; lHi = nil; eLo = nil; eHi = nil; fLo = nil; fHi = nil
        }
    }
}
