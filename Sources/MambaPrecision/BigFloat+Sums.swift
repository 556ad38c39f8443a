import CMPFR

// MARK: - Sums and dot products

extension BigFloat {
    /// Σ terms, correctly rounded: the exact sum of all terms rounded once, to
    /// nearest-even, to `precision` bits (default: the largest precision among
    /// the terms, or `defaultPrecision` for none). Uses `mpfr_sum`, so the
    /// result does not depend on the order of the terms and there is no
    /// cancellation error however the terms cancel.
    ///
    /// The empty sum is +0. IEEE rules for special values: any NaN, or +∞ and
    /// −∞ together, give NaN; otherwise an infinity wins; an exact zero sum is
    /// +0 unless every term is −0.
    public static func sum(_ terms: [BigFloat], precision: Int? = nil) -> BigFloat {
        let r = BigFloat(precision: precision ?? terms.map(\.precision).max() ?? defaultPrecision)
        let pointers: [UnsafeMutablePointer<__mpfr_struct>?] = terms.map { $0.ptr }
        withExtendedLifetime((terms, r)) {
            _ = mpfr_sum(r.ptr, pointers, UInt(terms.count), MPFR_RNDN)
        }
        return r
    }

    /// Σ a[i]·b[i] accumulated in index order by fused multiply-add at
    /// `precision` bits: s₀ = +0, sᵢ = RN(sᵢ₋₁ + a[i]·b[i]), one rounding per term
    /// (the products are never rounded on their own).
    ///
    /// This is the classical recursive dot product in a precision of the
    /// caller's choosing, not a correctly rounded one: with u = 2^−precision
    /// and n terms, |result − exact| ≤ γₙ · Σ|a[i]·b[i]|, γₙ = n·u/(1 − n·u).
    /// At the default 128 bits and realistic n this is far below any format's
    /// resolution, which is what an oracle needs; for a single rounding of the
    /// exact value, form the products exactly and use `sum(_:precision:)`.
    /// NaN and ∞ propagate as in IEEE arithmetic (∞ · 0 is NaN).
    ///
    /// - Precondition: `a.count == b.count`.
    public static func dot(_ a: [BigFloat], _ b: [BigFloat], precision: Int = defaultPrecision) -> BigFloat {
        precondition(a.count == b.count, "dot product of vectors of lengths \(a.count) and \(b.count)")
        let s = BigFloat(precision: precision)
        for i in a.indices { s.addProduct(a[i], b[i]) }
        return s
    }
}
