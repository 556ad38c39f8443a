import CMPFR

// MARK: - Units in the last place
//
// Two notions, kept apart on purpose:
//
// * the *ordinal distance* between two values of the format: how many steps
//   along the format's number line separate them (`ulpsBetween`). It is
//   symmetric, zero iff the values are equal (+0 and −0 are the same point),
//   and counts across binades and through zero uniformly, one per
//   representable value;
// * the *ULP error* of an arbitrary value against an arbitrary reference:
//   |value − reference| / ulp(reference) (`ulpError`), a real number, the
//   usual accuracy measure when the reference is an exact (oracle) result.
//
// `ulpDistance` picks the first when both arguments are values of the format
// and the second otherwise.

extension NumberFormat {
    /// The binary exponent k of ulp = 2^k at a value whose MPFR exponent is
    /// `mpfrExponent` (x = f · 2^mpfrExponent, ½ ≤ |f| < 1), clamped to the
    /// format's subnormal spacing below and to ulp(greatestFiniteMagnitude) above.
    func ulpExponent(mpfrExponent: Int) -> Int {
        let e = Swift.min(Swift.max(mpfrExponent - 1, emin), emax)
        return e - significandBits + 1
    }

    /// The spacing of the format's values at |x|.
    ///
    /// For |x| in the binade [2^e, 2^(e+1)) with emin ≤ e ≤ emax, this is
    /// 2^(e − p + 1); below 2^emin (subnormals and ±0) it is the subnormal
    /// spacing 2^(emin − p + 1) = `leastNonzeroMagnitude`; at and beyond
    /// 2^(emax+1), including ±∞, it is ulp(greatestFiniteMagnitude) = 2^(emax − p + 1).
    /// `x` need not be a value of the format: it is its own binade that counts
    /// (so just below a power of two the ulp is the smaller one). NaN gives NaN.
    ///
    /// The result is an exact power of two with `x`'s precision.
    public func ulp(at x: BigFloat) -> BigFloat {
        if x.isNaN { return BigFloat.nan(precision: x.precision) }
        let k: Int
        if x.isZero { k = ulpExponent(mpfrExponent: Int.min / 2) }
        else if x.isInfinite { k = ulpExponent(mpfrExponent: Int.max / 2) }
        else { k = ulpExponent(mpfrExponent: x.exponent) }
        return BigFloat(mantissa: 1, exponent: k, precision: x.precision)
    }

    /// The spacing of the format's values at |x| (see `ulp(at: BigFloat)`). Exact.
    public func ulp(at x: Double) -> Double {
        if x.isNaN { return .nan }
        let k: Int
        if x == 0 { k = ulpExponent(mpfrExponent: Int.min / 2) }
        else if x.isInfinite { k = ulpExponent(mpfrExponent: Int.max / 2) }
        else { k = ulpExponent(mpfrExponent: Int(x.exponent) + 1) }
        return Double(sign: .plus, exponent: k, significand: 1)
    }
}

// MARK: - Ordinals

extension NumberFormat {
    /// The position of the finite format value `x` on the format's number line:
    /// 0 for ±0, n for the n-th positive value (1 is `leastNonzeroMagnitude`),
    /// −n for its negation. Consecutive values have consecutive ordinals, so
    /// for IEEE-like formats this is the magnitude of the bit pattern with the sign applied.
    ///
    /// - Precondition: `x` is finite and exactly representable in the format.
    public func ordinal(of x: Double) -> Int64 {
        precondition(x.isFinite && isRepresentable(x), "\(x) is not a finite \(self) value")
        let magnitude = Swift.abs(x)
        let p = significandBits
        let n: Int64
        if magnitude < leastNormalMagnitude {
            n = Int64(magnitude / leastNonzeroMagnitude)                  // exact: a small integer
        } else {
            let e = Int(magnitude.exponent)                                // emin ≤ e ≤ emax
            let m = Int64(magnitude.significand * Double(1 << (p - 1)))    // 2^(p−1) ≤ m < 2^p, exact
            n = (Int64(e - emin) << (p - 1)) + m
        }
        return x < 0 ? -n : n
    }

    /// The ordinal of the finite format value `x` (see `ordinal(of: Double)`).
    ///
    /// - Precondition: `x` is finite and exactly representable in the format.
    public func ordinal(of x: BigFloat) -> Int64 {
        precondition(x.isFinite && isRepresentable(x), "\(x) is not a finite \(self) value")
        return ordinal(of: x.doubleValue)                                  // exact: formats ⊂ binary64
    }

    /// The ordinal of `greatestFiniteMagnitude`: the number of positive finite values.
    public var largestOrdinal: Int64 { ordinal(of: greatestFiniteMagnitude) }

    /// The format value with ordinal `n` (inverse of `ordinal(of:)`); `n == 0` gives +0.
    ///
    /// - Precondition: |n| ≤ `largestOrdinal`.
    public func value(atOrdinal n: Int64) -> Double {
        precondition(n.magnitude <= largestOrdinal.magnitude, "ordinal \(n) is outside \(self)")
        let p = significandBits
        let a = Int64(n.magnitude)
        let half = Int64(1) << (p - 1)
        let magnitude: Double
        if a < half {
            magnitude = Double(a) * leastNonzeroMagnitude
        } else {
            let e = emin + Int(a / half) - 1
            let m = a % half + half
            magnitude = Double(sign: .plus, exponent: e - p + 1, significand: Double(m))
        }
        return n < 0 ? -magnitude : magnitude
    }

    /// The number of steps between two finite format values along the format's
    /// number line: |ordinal(a) − ordinal(b)|.
    ///
    /// Symmetric; zero iff a == b (so +0 and −0 are 0 apart); additive along
    /// the line (ulpsBetween(a, c) = ulpsBetween(a, b) + ulpsBetween(b, c) for
    /// a ≤ b ≤ c); across a binade boundary each representable value counts
    /// once; through zero the two zeros count as one point, so the smallest
    /// positive and smallest negative subnormals are 2 apart. Never overflows:
    /// even for binary64 the distance is below 2^64.
    ///
    /// - Precondition: both values are finite and representable in the format.
    public func ulpsBetween(_ a: Double, _ b: Double) -> UInt64 {
        let oa = ordinal(of: a), ob = ordinal(of: b)
        if (oa < 0) == (ob < 0) { return (oa - ob).magnitude }
        return oa.magnitude + ob.magnitude
    }

    /// The number of steps between two finite format values (see `ulpsBetween(_: Double, _: Double)`).
    ///
    /// - Precondition: both values are finite and representable in the format.
    public func ulpsBetween(_ a: BigFloat, _ b: BigFloat) -> UInt64 {
        precondition(a.isFinite && isRepresentable(a), "\(a) is not a finite \(self) value")
        precondition(b.isFinite && isRepresentable(b), "\(b) is not a finite \(self) value")
        return ulpsBetween(a.doubleValue, b.doubleValue)
    }
}

// MARK: - ULP error and distance

extension NumberFormat {
    /// Special cases shared by `ulpError` and `ulpDistance`: nil when both are finite.
    private func specialDistance(valueIsNaN: Bool, referenceIsNaN: Bool, bothFinite: Bool, equal: Bool) -> Double? {
        if valueIsNaN || referenceIsNaN { return valueIsNaN && referenceIsNaN ? 0 : .infinity }
        if bothFinite { return nil }
        return equal ? 0 : .infinity
    }

    /// The error of `value` in units of the format's ulp at `reference`:
    /// |value − reference| / ulp(at: reference).
    ///
    /// `reference` is typically an exact or high-precision oracle result and
    /// need not be a format value; neither need `value`. Not symmetric (the
    /// ulp is taken at the reference). The difference is formed with 64
    /// significant bits and the quotient (an exact power-of-two scaling)
    /// converted to `Double`, so the result carries a relative error below 2^−52.
    ///
    /// Special values: NaN against NaN is 0 (both say "not a number"), NaN
    /// against anything else is +∞; equal infinities are 0 apart, any other
    /// comparison involving an infinity is +∞.
    public func ulpError(value: BigFloat, reference: BigFloat) -> Double {
        if let special = specialDistance(valueIsNaN: value.isNaN, referenceIsNaN: reference.isNaN,
                                         bothFinite: value.isFinite && reference.isFinite,
                                         equal: value == reference) { return special }
        let difference = BigFloat(precision: 64)
        difference.setDifference(value, reference)
        difference.setMagnitude(difference)
        let k = reference.isZero ? ulpExponent(mpfrExponent: Int.min / 2)
                                 : ulpExponent(mpfrExponent: reference.exponent)
        difference.multiply(byPowerOfTwo: -k)
        return difference.doubleValue
    }

    /// `ulpError(value:reference:)` for `Double` arguments.
    public func ulpError(value: Double, reference: Double) -> Double {
        ulpError(value: BigFloat(value, precision: 53), reference: BigFloat(reference, precision: 53))
    }

    /// The distance between `value` and `reference` in ulps of the format.
    ///
    /// - When both are finite values of the format: the ordinal distance
    ///   `ulpsBetween(value, reference)` as a `Double` (exact up to 2^53). It is
    ///   symmetric, an integer, zero iff the values are equal, and counts the
    ///   representable values between them across binades and through zero.
    /// - Otherwise (e.g. an exact reference that is not a format value): the
    ///   fractional `ulpError(value:reference:)`, |value − reference| / ulp(reference).
    ///
    /// The two agree when both are format values in the same binade; across a
    /// binade boundary the ordinal count is the one that makes sense.
    /// Special values as in `ulpError`: NaN vs NaN and ∞ vs the same ∞ are 0,
    /// every other comparison involving NaN or ∞ is +∞.
    public func ulpDistance(_ value: BigFloat, reference: BigFloat) -> Double {
        if let special = specialDistance(valueIsNaN: value.isNaN, referenceIsNaN: reference.isNaN,
                                         bothFinite: value.isFinite && reference.isFinite,
                                         equal: value == reference) { return special }
        if isRepresentable(value) && isRepresentable(reference) {
            return Double(ulpsBetween(value.doubleValue, reference.doubleValue))
        }
        return ulpError(value: value, reference: reference)
    }

    /// `ulpDistance(_:reference:)` for `Double` arguments.
    public func ulpDistance(_ value: Double, reference: Double) -> Double {
        if value.isFinite && reference.isFinite && isRepresentable(value) && isRepresentable(reference) {
            return Double(ulpsBetween(value, reference))
        }
        return ulpDistance(BigFloat(value, precision: 53), reference: BigFloat(reference, precision: 53))
    }
}
