import CMPFR

// MARK: - Rounding into a format
//
// Rounding is emulated exactly with MPFR, in two steps:
//
// 1. round the exact value once to p = `significandBits` bits in MPFR's own
//    (huge) exponent range, keeping the ternary value t = sign(rounded − exact);
// 2. narrow the thread's exponent range to the format's and call
//    `mpfr_check_range` (overflow, and underflow below half the smallest
//    subnormal) then `mpfr_subnormalize` (re-rounds to the subnormal grid).
//    Both use t, so a value that step 1 rounded onto a midpoint of the
//    coarser grid is still rounded in the direction of the exact value: the
//    whole is a *single* rounding, never a double rounding.
//
// The exponent range is per thread in a thread-safe MPFR build (Debian's is:
// `mpfr_buildopt_tls_p() == 1`) and is restored before returning.

extension NumberFormat {
    /// Finishes rounding `r` into the format.
    ///
    /// On entry `r` has precision `significandBits` and holds the exact value
    /// rounded to nearest-even with an unbounded exponent; `t` is the ternary
    /// value of that rounding (negative, zero, positive as `r` is below, equal
    /// to, above the exact value). On exit `r` is the exact value rounded to
    /// nearest-even into the format, with the format's subnormals and overflow.
    @usableFromInline
    func completeRounding(_ r: UnsafeMutablePointer<__mpfr_struct>, ternary t: Int32) {
        if mc_nan_p(r) != 0 || mc_zero_p(r) != 0 { return }
        if mc_inf_p(r) != 0 {
            if !hasInfinities { mc_set_nan(r) }
            return
        }
        let savedEmin = mc_get_emin(), savedEmax = mc_get_emax()
        _ = mc_set_emin(mpfrEmin)
        _ = mc_set_emax(mpfrEmax)
        let rangeTernary = mc_check_range(r, t, MPFR_RNDN)
        _ = mc_subnormalize(r, rangeTernary, MPFR_RNDN)
        _ = mc_set_emin(savedEmin)
        _ = mc_set_emax(savedEmax)
        // E4M3: the emulated range still contains 480 (= S.1111.111, NaN in
        // the encoding) and overflows to ±∞ from 496 on; both mean NaN.
        if self == .e4m3, mc_inf_p(r) != 0 || Swift.abs(mc_get_d(r, MPFR_RNDN)) > 448 {
            mc_set_nan(r)
        }
    }

    /// Runs `body` with an initialised `significandBits`-bit MPFR scratch value
    /// that lives on the stack (its limbs on the heap) for the duration of the call.
    @inline(__always)
    func withScratch<R>(_ body: (UnsafeMutablePointer<__mpfr_struct>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: __mpfr_struct.self, capacity: 1) { buffer in
            let r = buffer.baseAddress!
            mc_init2(r, significandBits)
            defer { mc_clear(r) }
            return body(r)
        }
    }
}

extension NumberFormat {
    /// `x` rounded to nearest, ties to even, into this format: one rounding of
    /// the exact value of `x`, with gradual underflow (subnormals) and the
    /// format's overflow behaviour.
    ///
    /// - Zeros keep their sign; a nonzero value that underflows to zero keeps
    ///   the sign of `x` (IEEE). Exactly half the smallest subnormal rounds to
    ///   zero (zero is "even"); anything larger rounds to the smallest subnormal.
    /// - Overflow (`overflowBehavior`): IEEE-like formats return ±∞ iff
    ///   |x| ≥ greatestFiniteMagnitude + ½ ulp(greatestFiniteMagnitude);
    ///   E4M3 returns NaN iff |x| > 464 (the midpoint between 448 and the
    ///   pattern 480 that encodes NaN; 464 itself ties to 448, whose last
    ///   significand bit is even) and for ±∞.
    /// - NaN returns NaN.
    ///
    /// The result has precision `significandBits`.
    public func round(_ x: BigFloat) -> BigFloat {
        let r = BigFloat(precision: significandBits)
        round(x, into: r)
        return r
    }

    /// `result ← round(x)` without allocating (unless `result` aliases `x`
    /// and has a different precision). `result`'s precision is set to
    /// `significandBits` if it differs.
    public func round(_ x: BigFloat, into result: BigFloat) {
        let source = (x === result && result.precision != significandBits) ? BigFloat(x) : x
        withExtendedLifetime((source, result)) {
            if mc_get_prec(result.ptr) != significandBits { mc_set_prec(result.ptr, significandBits) }
            let t = mc_set(result.ptr, source.ptr, MPFR_RNDN)
            completeRounding(result.ptr, ternary: t)
        }
    }

    /// `x` rounded to nearest-even into this format, returned as the (exactly
    /// representable) `Double` of that value. Same rules as `round(_: BigFloat)`.
    public func round(_ x: Double) -> Double {
        withScratch { r in
            let t = mc_set_d(r, x, MPFR_RNDN)
            completeRounding(r, ternary: t)
            return mc_get_d(r, MPFR_RNDN)
        }
    }

    /// `x` rounded to nearest-even into this format, returned as a `Float`
    /// (exact for every format but binary64, whose values may not fit a
    /// `Float`; for binary64 the result is `x`). Disfavoured so that a bare
    /// literal, `format.round(448)`, means the `Double` overload.
    @_disfavoredOverload
    public func round(_ x: Float) -> Float {
        withScratch { r in
            let t = mc_set_flt(r, x, MPFR_RNDN)
            completeRounding(r, ternary: t)
            return mc_get_flt(r, MPFR_RNDN)
        }
    }

    /// Whether `round(x)` is `x` itself: NaN (every format has one), ±∞ when
    /// the format has infinities, and finite values exactly representable in
    /// the format (±0 included).
    public func isRepresentable(_ x: BigFloat) -> Bool {
        if x.isNaN { return true }
        if x.isInfinite { return hasInfinities }
        return withExtendedLifetime(x) {
            withScratch { r in
                let t = mc_set(r, x.ptr, MPFR_RNDN)
                guard t == 0 else { return false }
                completeRounding(r, ternary: 0)
                return mc_equal_p(r, x.ptr) != 0
            }
        }
    }

    /// Whether the `Double` `x` is a value of this format (see `isRepresentable(_: BigFloat)`).
    public func isRepresentable(_ x: Double) -> Bool {
        if x.isNaN { return true }
        if x.isInfinite { return hasInfinities }
        return round(x) == x
    }
}

extension BigFloat {
    /// This value rounded to nearest-even into `format` (one rounding; see `NumberFormat.round(_:)`).
    public func rounded(to format: NumberFormat) -> BigFloat { format.round(self) }
}
