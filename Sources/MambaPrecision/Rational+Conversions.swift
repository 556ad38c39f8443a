import CMPFR

// MARK: - Between rationals, BigFloat and the formats

extension BigFloat {
    /// `q` rounded once, to nearest with ties to even, to `precision` bits.
    public convenience init(_ q: Rational, precision: Int = BigFloat.defaultPrecision) {
        self.init(precision: precision)
        withExtendedLifetime(q) { _ = mc_set_q(ptr, q.ptr, MPFR_RNDN) }
    }
}

extension Rational {
    /// The exact value of the finite `x` (a dyadic rational m · 2^e), or nil for ±∞ and NaN.
    /// Both zeros give 0.
    public convenience init?(exactly x: BigFloat) {
        guard x.isFinite else { return nil }
        self.init()
        withExtendedLifetime(x) { _ = mc_get_q(ptr, x.ptr) }
    }

    /// The value rounded once to the nearest `Double` (ties to even), with
    /// subnormals and overflow to ±∞ — through `NumberFormat.binary64`, not
    /// GMP's `mpq_get_d` (which truncates).
    public var doubleValue: Double {
        withExtendedLifetime(self) {
            NumberFormat.binary64.withScratch { r in
                let t = mc_set_q(r, ptr, MPFR_RNDN)
                NumberFormat.binary64.completeRounding(r, ternary: t)
                return mc_get_d(r, MPFR_RNDN)
            }
        }
    }
}

extension NumberFormat {
    /// The exact rational `q` rounded once, to nearest-even, into this format
    /// (subnormals and overflow as in `round(_: BigFloat)`). Precision `significandBits`.
    public func round(_ q: Rational) -> BigFloat {
        let r = BigFloat(precision: significandBits)
        withExtendedLifetime((q, r)) {
            let t = mc_set_q(r.ptr, q.ptr, MPFR_RNDN)
            completeRounding(r.ptr, ternary: t)
        }
        return r
    }
}
