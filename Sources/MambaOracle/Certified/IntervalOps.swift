import CMPFR

/// Interval operations on MPFR endpoints with directed rounding.
///
/// Each function writes `[rlo, rhi] ⊇ {a ∘ b : a ∈ [alo, ahi], b ∈ [blo, bhi]}`:
/// lower endpoints are rounded down (`MPFR_RNDD`), upper ones up (`MPFR_RNDU`),
/// so the exact result set is enclosed whatever the precision of `r`
/// (Proofs/T7, step 2). Results must not alias operands.
typealias MPFRPointer = UnsafeMutablePointer<__mpfr_struct>

enum Interval {
    /// Product of two intervals, by the signs of the endpoints (nine cases;
    /// only the mixed-mixed case needs four products).
    @inline(__always)
    static func mul(_ rlo: MPFRPointer, _ rhi: MPFRPointer, _ alo: MPFRPointer, _ ahi: MPFRPointer,
                    _ blo: MPFRPointer, _ bhi: MPFRPointer, tmp: MPFRPointer) {
        let aPos = mc_sgn(alo) >= 0, aNeg = mc_sgn(ahi) <= 0
        let bPos = mc_sgn(blo) >= 0, bNeg = mc_sgn(bhi) <= 0
        if aPos {
            if bPos { mc_mul(rlo, alo, blo, MPFR_RNDD); mc_mul(rhi, ahi, bhi, MPFR_RNDU) }
            else if bNeg { mc_mul(rlo, ahi, blo, MPFR_RNDD); mc_mul(rhi, alo, bhi, MPFR_RNDU) }
            else { mc_mul(rlo, ahi, blo, MPFR_RNDD); mc_mul(rhi, ahi, bhi, MPFR_RNDU) }
        } else if aNeg {
            if bPos { mc_mul(rlo, alo, bhi, MPFR_RNDD); mc_mul(rhi, ahi, blo, MPFR_RNDU) }
            else if bNeg { mc_mul(rlo, ahi, bhi, MPFR_RNDD); mc_mul(rhi, alo, blo, MPFR_RNDU) }
            else { mc_mul(rlo, alo, bhi, MPFR_RNDD); mc_mul(rhi, alo, blo, MPFR_RNDU) }
        } else {
            if bPos { mc_mul(rlo, alo, bhi, MPFR_RNDD); mc_mul(rhi, ahi, bhi, MPFR_RNDU) }
            else if bNeg { mc_mul(rlo, ahi, blo, MPFR_RNDD); mc_mul(rhi, alo, blo, MPFR_RNDU) }
            else {
                mc_mul(rlo, alo, bhi, MPFR_RNDD); mc_mul(tmp, ahi, blo, MPFR_RNDD); mc_min(rlo, rlo, tmp, MPFR_RNDD)
                mc_mul(rhi, alo, blo, MPFR_RNDU); mc_mul(tmp, ahi, bhi, MPFR_RNDU); mc_max(rhi, rhi, tmp, MPFR_RNDU)
            }
        }
    }

    /// `{a² : a ∈ [alo, ahi]}`: `[0, max(alo², ahi²)]` when the interval holds 0.
    @inline(__always)
    static func sqr(_ rlo: MPFRPointer, _ rhi: MPFRPointer, _ alo: MPFRPointer, _ ahi: MPFRPointer, tmp: MPFRPointer) {
        if mc_sgn(alo) >= 0 { mc_sqr(rlo, alo, MPFR_RNDD); mc_sqr(rhi, ahi, MPFR_RNDU) }
        else if mc_sgn(ahi) <= 0 { mc_sqr(rlo, ahi, MPFR_RNDD); mc_sqr(rhi, alo, MPFR_RNDU) }
        else {
            mc_set_zero(rlo, 1)
            mc_sqr(rhi, alo, MPFR_RNDU); mc_sqr(tmp, ahi, MPFR_RNDU); mc_max(rhi, rhi, tmp, MPFR_RNDU)
        }
    }

    /// `exp` is increasing: `[exp↓(alo), exp↑(ahi)]`.
    @inline(__always)
    static func exp(_ rlo: MPFRPointer, _ rhi: MPFRPointer, _ alo: MPFRPointer, _ ahi: MPFRPointer) {
        mc_exp(rlo, alo, MPFR_RNDD); mc_exp(rhi, ahi, MPFR_RNDU)
    }

    /// `[alo − bhi, ahi − blo]`.
    @inline(__always)
    static func sub(_ rlo: MPFRPointer, _ rhi: MPFRPointer, _ alo: MPFRPointer, _ ahi: MPFRPointer,
                    _ blo: MPFRPointer, _ bhi: MPFRPointer) {
        mc_sub(rlo, alo, bhi, MPFR_RNDD); mc_sub(rhi, ahi, blo, MPFR_RNDU)
    }

    /// `a / b` for `0 ∉ [blo, bhi]` (the caller checks): for `b > 0` the lower
    /// end divides by `bhi` when `alo ≥ 0` and by `blo` otherwise, and
    /// symmetrically for the upper end; `b < 0` is reduced to it by `a/b = (−a)/(−b)`.
    @inline(__always)
    static func div(_ rlo: MPFRPointer, _ rhi: MPFRPointer, _ alo: MPFRPointer, _ ahi: MPFRPointer,
                    _ blo: MPFRPointer, _ bhi: MPFRPointer, tmp: MPFRPointer, tmp2: MPFRPointer) {
        if mc_sgn(blo) > 0 {
            mc_div(rlo, alo, mc_sgn(alo) >= 0 ? bhi : blo, MPFR_RNDD)
            mc_div(rhi, ahi, mc_sgn(ahi) >= 0 ? blo : bhi, MPFR_RNDU)
        } else {
            // −b ∈ [−bhi, −blo] > 0 and −a ∈ [−ahi, −alo]; negation is exact.
            mc_neg(tmp, bhi, MPFR_RNDN); mc_neg(tmp2, blo, MPFR_RNDN)  // tmp = −bhi (low), tmp2 = −blo (high)
            // lower end of (−a)/(−b) uses −ahi; upper end uses −alo.
            let naLoNonNeg = mc_sgn(ahi) <= 0, naHiNonNeg = mc_sgn(alo) <= 0
            mc_div(rlo, ahi, naLoNonNeg ? tmp2 : tmp, MPFR_RNDU)  // = −(rlo'), rounded the other way
            mc_div(rhi, alo, naHiNonNeg ? tmp : tmp2, MPFR_RNDD)
            mc_neg(rlo, rlo, MPFR_RNDN); mc_neg(rhi, rhi, MPFR_RNDN)
        }
    }
}
