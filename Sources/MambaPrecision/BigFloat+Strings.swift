import CMPFR

// MARK: - Decimal strings
//
// Output is scientific notation, `[-]d.ddd…e±XX` (at least two exponent
// digits), with "nan", "inf", "-inf" for the special values and "0.0e+00" /
// "-0.0e+00" for the zeros. Input accepts the same and anything else MPFR's
// `mpfr_strtofr` reads in base 10 ("1", "-2.5e-3", ".5", "1E10", "inf",
// "infinity", "nan", "@inf@", case-insensitive), as long as the whole string is
// consumed.

extension BigFloat: CustomStringConvertible {
    /// The shortest decimal string that reads back (at this value's precision,
    /// rounding to nearest) as exactly this value, in the form `-d.ddde±XX`.
    ///
    /// "Shortest" is searched digit count by digit count for precisions up to
    /// 512 bits; above that the value is printed with MPFR's round-trip digit
    /// count ⌈p·log₁₀2⌉ + 1 with trailing zeros removed (still round-trips,
    /// maybe not shortest). Either way `BigFloat(x.description, precision:
    /// x.precision) == x`, signs of zeros included.
    public var description: String {
        if let special = specialString { return special }
        let p = precision
        if p <= 512 {
            let maximal = BigFloat.roundTripDigits(precision: p)
            let probe = BigFloat(precision: p)
            for n in 2..<maximal {
                let (digits, exponent) = decimalDigits(n)
                let text = BigFloat.scientific(digits: digits, exponent: exponent, trimZeros: true)
                if probe.parse(text), probe == self { return text }
            }
        }
        let (digits, exponent) = decimalDigits(0)
        return BigFloat.scientific(digits: digits, exponent: exponent, trimZeros: true)
    }

    /// The value correctly rounded (to nearest) to `significantDigits` decimal
    /// digits, as `-d.ddde±XX` with exactly that many digits (`-de±XX` for one).
    /// Special values as in `description`.
    public func decimalString(significantDigits: Int) -> String {
        precondition(significantDigits >= 1, "need at least one significant digit")
        if let special = specialString {
            if isZero {
                let zeros = String(repeating: "0", count: significantDigits - 1)
                return (sign == .minus ? "-" : "") + (zeros.isEmpty ? "0" : "0." + zeros) + "e+00"
            }
            return special
        }
        let (digits, exponent) = decimalDigits(significantDigits)
        return BigFloat.scientific(digits: digits, exponent: exponent, trimZeros: false)
    }

    /// Parses a decimal string, rounding once to nearest-even at `precision` bits.
    ///
    /// Returns nil for the empty string, leading whitespace, embedded NUL, or any unread
    /// trailing characters ("1.5x", "1.5 "). Accepts signs, a decimal point,
    /// exponents (`e`/`E`), "inf", "infinity", "nan" (any case, optionally
    /// signed). Values beyond MPFR's exponent range overflow to ±∞ or underflow to ±0.
    public convenience init?(_ string: String, precision: Int = BigFloat.defaultPrecision) {
        self.init(precision: precision)
        if !parse(string) { return nil }
    }
}

extension BigFloat {
    /// "nan", "inf", "-inf", "0.0e+00", "-0.0e+00", or nil for nonzero finite values.
    var specialString: String? {
        if isNaN { return "nan" }
        if isInfinite { return sign == .minus ? "-inf" : "inf" }
        if isZero { return sign == .minus ? "-0.0e+00" : "0.0e+00" }
        return nil
    }

    /// The digit count MPFR uses for round-tripping a p-bit value: 1 + ⌈p · log₁₀ 2⌉.
    static func roundTripDigits(precision p: Int) -> Int {
        1 + Int((Double(p) * 0.30102999566398120).rounded(.up))
    }

    /// Significand digits (with a leading "-" when negative) and the exponent e
    /// with value = 0.d₁d₂… × 10^e, correctly rounded to `n` digits (n = 0: MPFR's choice).
    func decimalDigits(_ n: Int) -> (String, Int) {
        withExtendedLifetime(self) {
            var exponent = 0
            guard let cString = mc_get_str(nil, &exponent, 10, n, ptr, MPFR_RNDN) else {
                fatalError("mpfr_get_str failed")
            }
            defer { mc_free_str(cString) }
            return (String(cString: cString), exponent)
        }
    }

    /// Formats digits "[-]d₁d₂…" and exponent e (value 0.d₁d₂… × 10^e) as "[-]d₁.d₂…e±XX".
    static func scientific(digits: String, exponent: Int, trimZeros: Bool) -> String {
        var body = Substring(digits)
        let negative = body.first == "-"
        if negative { body = body.dropFirst() }
        var rest = body.dropFirst()
        if trimZeros {
            while rest.last == "0" { rest = rest.dropLast() }
            if rest.isEmpty { rest = "0" }
        }
        let e = exponent - 1
        let magnitude = String(e.magnitude)
        let exponentText = (e < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" + magnitude : magnitude)
        let mantissa = rest.isEmpty ? String(body.prefix(1)) : String(body.prefix(1)) + "." + rest
        return (negative ? "-" : "") + mantissa + "e" + exponentText
    }

    /// Sets self from the whole of `string` (base 10, rounding to nearest);
    /// false (self unspecified) if anything is left unread or nothing was read.
    func parse(_ string: String, rounding: BigFloat.Rounding = .nearest) -> Bool {
        guard let first = string.utf8.first, !(first == 0x20 || (0x09...0x0D).contains(first)),
              !string.utf8.contains(0) else { return false }
        return withExtendedLifetime(self) {
            string.withCString { start in
                var end: UnsafeMutablePointer<CChar>? = nil
                _ = mc_strtofr(ptr, start, &end, 10, rounding.mpfr)
                guard let end, end != UnsafeMutablePointer(mutating: start) else { return false }
                return end.pointee == 0
            }
        }
    }
}
