import CMPFR

/// Directed rounding: the building block of rigorous enclosures.
///
/// MPFR rounds every operation correctly in the requested direction, so a
/// value computed with `.down` is a lower bound of the exact result and one
/// computed with `.up` an upper bound (docs/MATH.md §7.3, Proofs/T7).
extension BigFloat {
    /// Rounding direction of one MPFR operation.
    public enum Rounding: Sendable {
        case nearest, down, up
        /// The MPFR rounding mode.
        public var mpfr: mpfr_rnd_t {
            switch self {
            case .nearest: return MPFR_RNDN
            case .down: return MPFR_RNDD
            case .up: return MPFR_RNDU
            }
        }
    }

    /// `1/√n` rounded once in direction `rounding` to `precision` bits (`n ≥ 1`).
    public convenience init(reciprocalSquareRootOf n: Int, precision: Int, rounding: Rounding) {
        precondition(n >= 1, "1/sqrt(n) needs n >= 1")
        self.init(precision: precision)
        withExtendedLifetime(self) {
            // n < 2^63 is exact at 64 bits; rec_sqrt then rounds once.
            let t = BigFloat(precision: 64)
            t.withUnsafeMPFR { tp in
                _ = mc_set_si(tp, n, MPFR_RNDN)
                _ = mc_rec_sqrt(ptr, tp, rounding.mpfr)
            }
        }
    }

    /// A decimal string rounded once in direction `rounding` to `precision`
    /// bits; nil when it is not a number (same grammar as `init?(_:precision:)`).
    public convenience init?(_ string: String, precision: Int, rounding: Rounding) {
        self.init(precision: precision)
        if !parse(string, rounding: rounding) { return nil }
    }
}
