import CMPFR
import MambaVariants

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

    /// `[alo + blo, ahi + bhi]`.
    @inline(__always)
    static func add(_ rlo: MPFRPointer, _ rhi: MPFRPointer, _ alo: MPFRPointer, _ ahi: MPFRPointer,
                    _ blo: MPFRPointer, _ bhi: MPFRPointer) {
        mc_add(rlo, alo, blo, MPFR_RNDD); mc_add(rhi, ahi, bhi, MPFR_RNDU)
    }

    /// `[r] += [a]·[b]`: the product enclosed by `mul` into `tmp`, then added by `add`
    /// (`t` holds 3 scratch numbers; no aliasing with the operands).
    @inline(__always)
    static func addProduct(_ rlo: MPFRPointer, _ rhi: MPFRPointer, _ alo: MPFRPointer, _ ahi: MPFRPointer,
                           _ blo: MPFRPointer, _ bhi: MPFRPointer, t: MPFRPointer) {
        mul(t, t + 1, alo, ahi, blo, bhi, tmp: t + 2)
        mc_add(rlo, rlo, t, MPFR_RNDD); mc_add(rhi, rhi, t + 1, MPFR_RNDU)
    }

    /// True when `[lo, hi]` lies strictly on one side of 0 (no NaN end): a divisor `div` can take.
    @inline(__always)
    static func excludesZero(_ lo: MPFRPointer, _ hi: MPFRPointer) -> Bool {
        mc_nan_p(lo) == 0 && mc_nan_p(hi) == 0 && (mc_sgn(lo) > 0 || mc_sgn(hi) < 0)
    }

    /// `√2 ∈ [lo, hi]` at the precision of `lo`, `hi`.
    static func sqrt2(_ lo: MPFRPointer, _ hi: MPFRPointer) {
        mc_set_ui(lo, 2, MPFR_RNDN); mc_sqrt(lo, lo, MPFR_RNDD)
        mc_set_ui(hi, 2, MPFR_RNDN); mc_sqrt(hi, hi, MPFR_RNDU)
    }

    /// Enclosures of the features `φ(x)` (docs/MATH.md §3.2, §4) of an exact row
    /// `x[0..<d]` into `lo[0..<F]`, `hi[0..<F]`: the identity for first-order
    /// scores (ReLU already applied), else the packed `φ₂(x)_(a,b) = c_ab x_a x_b`
    /// with `c_aa = 1`, `c_ab = √2 ∈ [r2lo, r2hi]`; each product rounded outward.
    /// `t` holds 3 scratch numbers.
    static func features(_ score: Score, dim d: Int, x: MPFRPointer, lo: MPFRPointer, hi: MPFRPointer,
                         sqrt2 r2lo: MPFRPointer, _ r2hi: MPFRPointer, t: MPFRPointer) {
        switch score {
        case .linear, .reluLinear:
            for a in 0..<d { mc_set(lo + a, x + a, MPFR_RNDD); mc_set(hi + a, x + a, MPFR_RNDU) }
        case .squared:
            var idx = 0
            for a in 0..<d {
                mc_sqr(lo + idx, x + a, MPFR_RNDD); mc_sqr(hi + idx, x + a, MPFR_RNDU); idx += 1
                for b in (a + 1)..<Swift.max(d, a + 1) where b < d {
                    mc_mul(t, x + a, x + b, MPFR_RNDD); mc_mul(t + 1, x + a, x + b, MPFR_RNDU)
                    mul(lo + idx, hi + idx, t, t + 1, r2lo, r2hi, tmp: t + 2)
                    idx += 1
                }
            }
        case .exponential:
            preconditionFailure("no feature map")
        }
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
