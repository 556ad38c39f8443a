import CMPFR

// MARK: - Conversion to narrow IEEE types

extension BigFloat {
    /// The value rounded once, to nearest with ties to even, to binary16,
    /// including subnormals (spacing 2^−24) and overflow to ±∞ for
    /// |x| ≥ 65520 (= 65504 + ½ ulp).
    ///
    /// The rounding goes straight from the full value through
    /// `NumberFormat.binary16` (MPFR with the binary16 exponent range), never
    /// through `Float` or `Double`: rounding first to a wider format and then
    /// to binary16 can double-round (a value just above a binary16 midpoint
    /// can land exactly on it and then tie to even the wrong way).
    /// ±0 keep their sign; NaN gives NaN.
    public var float16Value: Float16 {
        withExtendedLifetime(self) {
            NumberFormat.binary16.withScratch { r in
                let t = mc_set(r, ptr, MPFR_RNDN)
                NumberFormat.binary16.completeRounding(r, ternary: t)
                return Float16(mc_get_flt(r, MPFR_RNDN))   // exact: r is a binary16 value
            }
        }
    }

    /// Replaces the value with `x` exactly when `x` is representable at this
    /// precision (always for `Float16` when precision ≥ 11), else rounds once.
    public func set(_ x: Float16) { set(Float(x)) }
}
