import CMPFR

/// A binary floating-point number of arbitrary, explicit precision (MPFR).
///
/// Every operation is *correctly rounded*: the result is the exact
/// mathematical result rounded once, to nearest with ties to even, to the
/// precision of the destination. Results of the functional API (`a + b`,
/// `exp(x)`, …) take the larger of the operands' precisions.
///
/// `BigFloat` is a reference type: the `mpfr_t` lives behind a stable heap
/// pointer owned by this final class (copying the C struct would double-free).
/// The in-place API (`setSum`, `addProduct`, …) writes into an existing value
/// without allocating; use it in hot loops. The functional API allocates.
///
/// Special values follow IEEE 754 as MPFR implements it: ±0, ±∞ and NaN
/// propagate; there is no overflow at practical exponents (MPFR's range is
/// about ±2^(2^30) by default: exp(x) is finite for |x| < 7.4e8).
public final class BigFloat: @unchecked Sendable {
    @usableFromInline let ptr: UnsafeMutablePointer<__mpfr_struct>

    /// The precision (significand bits) of new values when none is given.
    public static let defaultPrecision = 128

    /// A new value equal to +0 with `precision` significand bits.
    public init(precision: Int = BigFloat.defaultPrecision) {
        precondition(precision >= mc_prec_min() && precision <= 1 << 24, "unsupported precision \(precision)")
        ptr = .allocate(capacity: 1)
        mc_init2(ptr, precision)
        mc_set_zero(ptr, 1)
    }

    deinit {
        mc_clear(ptr)
        ptr.deallocate()
    }

    /// Significand bits of this value.
    public var precision: Int { mc_get_prec(ptr) }

    /// Runs `body` with the raw MPFR pointer, keeping `self` alive for the call.
    @inlinable
    public func withUnsafeMPFR<R>(_ body: (UnsafeMutablePointer<__mpfr_struct>) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(ptr) }
    }
}

// MARK: - Construction and conversion

extension BigFloat {
    /// `x` rounded once to `precision` bits (exact when `precision ≥ 53`).
    public convenience init(_ x: Double, precision: Int = BigFloat.defaultPrecision) {
        self.init(precision: precision)
        mc_set_d(ptr, x, MPFR_RNDN)
    }

    /// `x` rounded once to `precision` bits (exact when `precision ≥ 24`).
    public convenience init(_ x: Float, precision: Int = BigFloat.defaultPrecision) {
        self.init(precision: precision)
        mc_set_flt(ptr, x, MPFR_RNDN)
    }

    /// `x` exactly when `precision ≥ 11` (every binary16 value is a binary32 value).
    public convenience init(_ x: Float16, precision: Int = BigFloat.defaultPrecision) {
        self.init(precision: precision)
        mc_set_flt(ptr, Float(x), MPFR_RNDN)
    }

    /// The integer `n` rounded once to `precision` bits.
    public convenience init(_ n: Int, precision: Int = BigFloat.defaultPrecision) {
        self.init(precision: precision)
        mc_set_si(ptr, n, MPFR_RNDN)
    }

    /// A copy of `x` rounded once to `precision` bits (default: `x`'s precision).
    public convenience init(_ x: BigFloat, precision: Int? = nil) {
        self.init(precision: precision ?? x.precision)
        withExtendedLifetime(x) { _ = mc_set(ptr, x.ptr, MPFR_RNDN) }
    }

    /// `m · 2^e` rounded once to `precision` bits.
    public convenience init(mantissa m: Int, exponent e: Int, precision: Int = BigFloat.defaultPrecision) {
        self.init(precision: precision)
        mc_set_si_2exp(ptr, m, e, MPFR_RNDN)
    }

    /// The value rounded once to the nearest `Double` (ties to even),
    /// including subnormals and overflow to ±∞.
    public var doubleValue: Double { withExtendedLifetime(self) { mc_get_d(ptr, MPFR_RNDN) } }

    /// The value rounded once to the nearest `Float` (ties to even),
    /// including subnormals and overflow to ±∞. MPFR rounds directly from the
    /// full value, never through `Double` (no double rounding).
    public var floatValue: Float { withExtendedLifetime(self) { mc_get_flt(ptr, MPFR_RNDN) } }

    public static func nan(precision: Int = BigFloat.defaultPrecision) -> BigFloat {
        let r = BigFloat(precision: precision); mc_set_nan(r.ptr); return r
    }
    public static func infinity(sign: FloatingPointSign = .plus, precision: Int = BigFloat.defaultPrecision) -> BigFloat {
        let r = BigFloat(precision: precision); mc_set_inf(r.ptr, sign == .plus ? 1 : -1); return r
    }
    /// Signed zero.
    public static func zero(sign: FloatingPointSign = .plus, precision: Int = BigFloat.defaultPrecision) -> BigFloat {
        let r = BigFloat(precision: precision); mc_set_zero(r.ptr, sign == .plus ? 1 : -1); return r
    }
    /// π correctly rounded to `precision` bits.
    public static func pi(precision: Int = BigFloat.defaultPrecision) -> BigFloat {
        let r = BigFloat(precision: precision); mc_const_pi(r.ptr, MPFR_RNDN); return r
    }
}

// MARK: - Classification

extension BigFloat {
    public var isNaN: Bool { withExtendedLifetime(self) { mc_nan_p(ptr) != 0 } }
    public var isInfinite: Bool { withExtendedLifetime(self) { mc_inf_p(ptr) != 0 } }
    public var isZero: Bool { withExtendedLifetime(self) { mc_zero_p(ptr) != 0 } }
    public var isFinite: Bool { withExtendedLifetime(self) { mc_number_p(ptr) != 0 } }
    /// `.minus` for negative numbers, −0, −∞ and NaNs with the sign bit set.
    public var sign: FloatingPointSign { withExtendedLifetime(self) { mc_signbit(ptr) != 0 ? .minus : .plus } }
    /// −1, 0 or +1 (0 for ±0 and NaN).
    public var signum: Int { withExtendedLifetime(self) { isNaN ? 0 : Int(mc_sgn(ptr)) } }
    /// The exponent `e` with `x = f · 2^e`, `0.5 ≤ |f| < 1` (finite non-zero values only).
    public var exponent: Int {
        precondition(isFinite && !isZero, "exponent of \(self) is undefined")
        return withExtendedLifetime(self) { mc_get_exp(ptr) }
    }
}
