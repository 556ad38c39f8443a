import CMPFR

/// An exact rational number n/d (GMP `mpq_t`), always in canonical form:
/// d > 0 and gcd(n, d) = 1, so equal values have equal representations.
///
/// All arithmetic is exact (the numbers grow as needed); there are no
/// rounding errors, no overflow, no infinities and no NaN. Dividing by zero
/// is a programming error (precondition failure), as is creating a rational
/// from a non-finite `Double` or `BigFloat` through the non-failable initialisers.
///
/// Like `BigFloat`, the GMP value lives behind a stable heap pointer owned by
/// this final class; every C call is wrapped in `withExtendedLifetime` so that
/// an optimised build cannot free a temporary before the call uses it.
/// Values are immutable once created, so sharing them across threads is safe.
public final class Rational: @unchecked Sendable {
    @usableFromInline let ptr: UnsafeMutablePointer<__mpq_struct>

    /// Zero.
    public init() {
        ptr = .allocate(capacity: 1)
        mc_q_init(ptr)
    }

    deinit {
        mc_q_clear(ptr)
        ptr.deallocate()
    }

    /// The integer `n`.
    public convenience init(_ n: Int) {
        self.init()
        mc_q_set_si(ptr, n, 1)
    }

    /// numerator / denominator, reduced to lowest terms (any signs; `Int.min` is fine).
    ///
    /// - Precondition: `denominator != 0`.
    public convenience init(_ numerator: Int, _ denominator: Int) {
        precondition(denominator != 0, "zero denominator")
        self.init()
        if denominator > 0 {
            mc_q_set_si(ptr, numerator, UInt(denominator))
        } else {
            let d = Rational(denominator)
            mc_q_set_si(ptr, numerator, 1)
            withExtendedLifetime(d) { mc_q_div(ptr, ptr, d.ptr) }
        }
    }

    /// The exact value of `x` (every finite `Double` is a dyadic rational).
    ///
    /// - Precondition: `x` is finite.
    public convenience init(_ x: Double) {
        precondition(x.isFinite, "\(x) is not a rational number")
        self.init()
        mc_q_set_d(ptr, x)
    }

    /// The exact value of `x`, or nil for ±∞ and NaN.
    public convenience init?(exactly x: Double) {
        guard x.isFinite else { return nil }
        self.init(x)
    }

    /// A copy of `q` (a new owner of an equal value).
    public convenience init(_ q: Rational) {
        self.init()
        withExtendedLifetime(q) { mc_q_set(ptr, q.ptr) }
    }
}

// MARK: - Arithmetic (exact)

extension Rational {
    @inline(__always)
    static func binary(_ a: Rational, _ b: Rational,
                       _ f: (UnsafeMutablePointer<__mpq_struct>, UnsafePointer<__mpq_struct>, UnsafePointer<__mpq_struct>) -> Void) -> Rational {
        let r = Rational()
        withExtendedLifetime((a, b)) { f(r.ptr, a.ptr, b.ptr) }
        return r
    }

    public static func + (a: Rational, b: Rational) -> Rational { binary(a, b, mc_q_add) }
    public static func - (a: Rational, b: Rational) -> Rational { binary(a, b, mc_q_sub) }
    public static func * (a: Rational, b: Rational) -> Rational { binary(a, b, mc_q_mul) }

    /// The exact quotient.
    ///
    /// - Precondition: `b != 0`.
    public static func / (a: Rational, b: Rational) -> Rational {
        precondition(!b.isZero, "division by zero")
        return binary(a, b, mc_q_div)
    }

    public static prefix func - (a: Rational) -> Rational {
        let r = Rational()
        withExtendedLifetime(a) { mc_q_neg(r.ptr, a.ptr) }
        return r
    }

    /// |a|.
    public var magnitude: Rational { signum < 0 ? -self : self }
}

// MARK: - Comparison and classification

extension Rational: Equatable, Comparable, Hashable {
    public static func == (a: Rational, b: Rational) -> Bool {
        withExtendedLifetime((a, b)) { mc_q_equal(a.ptr, b.ptr) != 0 }
    }
    public static func < (a: Rational, b: Rational) -> Bool {
        withExtendedLifetime((a, b)) { mc_q_cmp(a.ptr, b.ptr) < 0 }
    }
    /// Hashes the canonical "n/d" form, so equal values hash equally.
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

    /// −1, 0 or +1.
    public var signum: Int { withExtendedLifetime(self) { Int(mc_q_sgn(ptr)) } }
    public var isZero: Bool { signum == 0 }
}

// MARK: - Text

extension Rational: CustomStringConvertible {
    /// "n/d" in lowest terms with d > 0, or just "n" when d = 1 (e.g. "-3/7", "5", "0").
    public var description: String {
        withExtendedLifetime(self) {
            guard let cString = mc_q_get_str(ptr, 10) else { fatalError("mpq_get_str failed") }
            defer { mc_gmp_free_str(cString) }
            return String(cString: cString)
        }
    }

    /// The largest decimal exponent accepted by `init?(_: String)` (|e| ≤ this):
    /// a bound on the size of the digit strings built while parsing.
    public static let maximumDecimalExponent = 1_000_000

    /// Parses an exact rational from text, or returns nil.
    ///
    /// Accepted forms (optional leading `+` or `-`, no whitespace):
    /// - a fraction of decimal integers, "n/d" with d ≠ 0: "-3/7", "6/4" (= 3/2);
    /// - a decimal number with optional fraction and exponent, read exactly:
    ///   "1.25" = 5/4, "0.1" = 1/10, "2.5e-3" = 1/400, ".5", "7.", "1E6".
    ///
    /// "inf", "nan", hexadecimal, empty strings and exponents beyond
    /// ±`maximumDecimalExponent` return nil.
    public convenience init?(_ string: String) {
        guard let (numerator, denominator) = Rational.parseExact(string) else { return nil }
        self.init()
        let text = numerator + "/" + denominator
        let status = text.withCString { mc_q_set_str(ptr, $0, 10) }   // canonicalises on success
        if status != 0 { return nil }
    }

    /// Splits a decimal or fraction literal into signed numerator and positive
    /// denominator digit strings, validating every character (GMP would skip whitespace).
    static func parseExact(_ string: String) -> (String, String)? {
        var bytes = Array(string.utf8)[...]
        var negative = false
        if let s = bytes.first, s == UInt8(ascii: "+") || s == UInt8(ascii: "-") {
            negative = s == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        func digits(_ s: ArraySlice<UInt8>) -> String { String(decoding: s, as: UTF8.self) }
        let sign = negative ? "-" : ""

        if let slash = bytes.firstIndex(of: UInt8(ascii: "/")) {
            let n = bytes[..<slash], d = bytes[(slash + 1)...]
            guard !n.isEmpty, !d.isEmpty, n.allSatisfy(isDigit), d.allSatisfy(isDigit),
                  d.contains(where: { $0 != UInt8(ascii: "0") }) else { return nil }
            return (sign + digits(n), digits(d))
        }

        var mantissa = bytes
        var exponent = 0
        if let e = bytes.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            mantissa = bytes[..<e]
            var exponentBytes = bytes[(e + 1)...]
            var exponentNegative = false
            if let s = exponentBytes.first, s == UInt8(ascii: "+") || s == UInt8(ascii: "-") {
                exponentNegative = s == UInt8(ascii: "-")
                exponentBytes = exponentBytes.dropFirst()
            }
            guard !exponentBytes.isEmpty, exponentBytes.allSatisfy(isDigit),
                  exponentBytes.count <= 9, let magnitude = Int(digits(exponentBytes)),
                  magnitude <= maximumDecimalExponent else { return nil }
            exponent = exponentNegative ? -magnitude : magnitude
        }
        let integerPart: ArraySlice<UInt8>, fractionPart: ArraySlice<UInt8>
        if let dot = mantissa.firstIndex(of: UInt8(ascii: ".")) {
            integerPart = mantissa[..<dot]
            fractionPart = mantissa[(dot + 1)...]
        } else {
            integerPart = mantissa
            fractionPart = []
        }
        guard !(integerPart.isEmpty && fractionPart.isEmpty),
              integerPart.allSatisfy(isDigit), fractionPart.allSatisfy(isDigit) else { return nil }
        // value = (integer digits ++ fraction digits) · 10^(exponent − fraction digit count)
        let scale = exponent - fractionPart.count
        let allDigits = digits(integerPart) + digits(fractionPart)
        if scale >= 0 {
            return (sign + allDigits + String(repeating: "0", count: scale), "1")
        }
        return (sign + allDigits, "1" + String(repeating: "0", count: -scale))
    }
}
