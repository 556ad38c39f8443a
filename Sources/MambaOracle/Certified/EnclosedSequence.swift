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
/// - `e^{L_t} ∈ [fLo_t, fHi_t]` (decayed feature-map scores) and, for the
///   factored decay, `e^{−L_t} ∈ [eLo_t, eHi_t]`;
/// - the query constant `c ∈ [cLo, cHi]` (`s`, or `s²` for squared) and `√2`;
/// - the initial state as exact rows (`s0`, `F` rows of `dv`) and `z0`.
final class EnclosedSequence: @unchecked Sendable {
    let base: ReferenceSequence
    let sLo: MPFRBuffer, sHi: MPFRBuffer
    let lLo: MPFRBuffer?, lHi: MPFRBuffer?
    /// `e^{−L}` (factored decay only) and `e^{L}` (any decay; not for the exponential score).
    let eLo: MPFRBuffer?, eHi: MPFRBuffer?, fLo: MPFRBuffer?, fHi: MPFRBuffer?
    var factored: Bool { eLo != nil }
    /// `[cLo, cHi] ∋ c` and `[√2↓, √2↑]` (two elements each: lo, hi), at the working precision.
    let queryConstant: MPFRBuffer, sqrt2: MPFRBuffer
    /// The initial state `S₀` (`F` rows of `dv`) and `z₀` (exact), when given.
    let s0: ValueRows?
    let z0: MPFRBuffer?

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
            if p.spec.score != .exponential {
                let f = MPFRBuffer(count: n, precision: lp), g = MPFRBuffer(count: n, precision: lp)
                for i in 0..<n { Interval.exp(f[i], g[i], lo[i], hi[i]) }
                fLo = f; fHi = g
            } else { fLo = nil; fHi = nil }
            if !c.pairwiseDecay && p.spec.score != .exponential {
                let a = MPFRBuffer(count: n, precision: lp), b = MPFRBuffer(count: n, precision: lp)
                let t = MPFRBuffer(count: 2, precision: lp)
                for i in 0..<n {
                    // e^{−L} ∈ [exp↓(−lHi), exp↑(−lLo)]; negation is exact.
                    mc_neg(t[0], hi[i], MPFR_RNDN); mc_neg(t[1], lo[i], MPFR_RNDN)
                    Interval.exp(a[i], b[i], t[0], t[1])
                }
                eLo = a; eHi = b
            } else { eLo = nil; eHi = nil }
        } else {
            lLo = nil; lHi = nil; eLo = nil; eHi = nil; fLo = nil; fHi = nil
        }
        queryConstant = MPFRBuffer(count: 3, precision: sp)
        if p.spec.score == .squared {
            Interval.sqr(queryConstant[0], queryConstant[1], sLo[0], sHi[0], tmp: queryConstant[2])
        } else {
            mc_set(queryConstant[0], sLo[0], MPFR_RNDD); mc_set(queryConstant[1], sHi[0], MPFR_RNDU)
        }
        sqrt2 = MPFRBuffer(count: 2, precision: sp)
        Interval.sqrt2(sqrt2[0], sqrt2[1])
        if let st = p.initialState, let f = p.featureDim {
            let dv = p.valueDim
            s0 = ValueRows(st.s[seq * f * dv ..< (seq + 1) * f * dv], width: dv)
            z0 = st.z.map { MPFRBuffer.exactly($0[seq * f ..< (seq + 1) * f]) }
        } else { s0 = nil; z0 = nil }
    }

    /// Values `v` as `ValueRows` (shared with the p-bit oracle's sequence).
    var values: ValueRows { ValueRows(mpfr: base.vM, abs: base.vAbs, integer: base.vRows, width: base.dv) }

    /// `x_ij = q̃_i·k̃_j ∈ [lo, hi]`: exact (an `Int128` sum rounded down and up
    /// into ≥ 128-bit `lo`, `hi`) or two `fma` chains at `2p + 128` bits rounded
    /// down and up (Proofs/T7, step 3).
    @inline(__always)
    func dot(_ lo: MPFRPointer, _ hi: MPFRPointer, _ i: Int, _ j: Int, _ scratch: ReferenceScratch) {
        let c = base
        Self.dot(lo, hi, c.qRows[i], c.kRows[j], c.qM[i * c.dk], c.kM[j * c.dk], length: c.dk, scratch)
    }

    /// `a·b ∈ [lo, hi]` for exact rows `a`, `b` of `length` entries, as `dot(_:_:_:_:_:)`.
    static func dot(_ lo: MPFRPointer, _ hi: MPFRPointer, _ ia: IntegerRow?, _ ib: IntegerRow?,
                    _ a: MPFRPointer, _ b: MPFRPointer, length: Int, _ scratch: ReferenceScratch) {
        if let ia, let ib {
            let (m, ex) = IntegerRow.dot(ia, ib)
            mpfrSetDirected(lo, m, ex, MPFR_RNDD, scratch)
            mpfrSetDirected(hi, m, ex, MPFR_RNDU, scratch)
        } else {
            for (dst, mode) in [(lo, MPFR_RNDD), (hi, MPFR_RNDU)] {
                mc_set_zero(scratch.acc, 1)
                for k in 0..<length { mc_fma(scratch.acc, a + k, b + k, scratch.acc, mode) }
                mc_set(dst, scratch.acc, mode)
            }
        }
    }

    /// `r ← n·2^e` rounded once in direction `mode` (the sum is exact in 128 bits first).
    private static func mpfrSetDirected(_ r: MPFRPointer, _ n: Int128, _ e: Int, _ mode: mpfr_rnd_t,
                                        _ t: ReferenceScratch) {
        let m = n.magnitude
        mpfr_set_ui_2exp(t.wide, UInt(UInt64(truncatingIfNeeded: m >> 64)), e + 64, MPFR_RNDN)  // exact
        mpfr_set_ui_2exp(t.lo, UInt(UInt64(truncatingIfNeeded: m)), e, MPFR_RNDN)              // exact
        mc_add(t.wide, t.wide, t.lo, MPFR_RNDN)  // exact: ≥ 128 bits hold the 128-bit integer
        if n < 0 { mc_neg(t.wide, t.wide, MPFR_RNDN) }
        mc_set(r, t.wide, mode)
    }
}
