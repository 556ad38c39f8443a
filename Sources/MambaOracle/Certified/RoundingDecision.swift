import CMPFR
import MambaPrecision

/// Deciding a rounding from an enclosure (Proofs/T7, step 5).
///
/// Round-to-nearest (Float64, or `d` significant decimal digits) is a
/// monotone non-decreasing map, so if both ends of `[lo, hi] ∋ y` round to
/// the same number, so does `y`: that number is `y` correctly rounded.
enum RoundingDecision {
    /// The Float64 nearest to every point of `[lo, hi]`, or nil when the ends
    /// round differently. An interval within `[−2^−1075, 2^−1075]` rounds to
    /// zero; its sign is that of the enclosure when the enclosure has one
    /// sign, and + when it holds 0.
    static func float64(_ lo: UnsafeMutablePointer<__mpfr_struct>, _ hi: UnsafeMutablePointer<__mpfr_struct>) -> Double? {
        if mc_number_p(lo) == 0 || mc_number_p(hi) == 0 { return nil }
        let a = mc_get_d(lo, MPFR_RNDN), b = mc_get_d(hi, MPFR_RNDN)
        guard a == b else { return nil }
        if a == 0 { return mc_sgn(hi) < 0 ? -0.0 : 0.0 }
        return a
    }

    /// The `digits`-significant-digit decimal of every point of `[lo, hi]`, or nil.
    static func decimal(_ lo: BigFloat, _ hi: BigFloat, digits: Int) -> String? {
        guard lo.isFinite, hi.isFinite else { return nil }
        if lo.isZero && hi.isZero { return BigFloat.zero().decimalString(significantDigits: digits) }
        let a = lo.decimalString(significantDigits: digits), b = hi.decimalString(significantDigits: digits)
        return a == b ? a : nil
    }
}
