import CMPFR

// MARK: - In-place arithmetic (no allocation)
//
// Each method overwrites `self` with the correctly rounded result at
// `self.precision`. Operands may alias `self`.

extension BigFloat {
    @inline(__always)
    func apply1(_ a: BigFloat, _ f: (UnsafeMutablePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, mpfr_rnd_t) -> Int32) {
        withExtendedLifetime((self, a)) { _ = f(ptr, a.ptr, MPFR_RNDN) }
    }
    @inline(__always)
    func apply2(_ a: BigFloat, _ b: BigFloat,
                _ f: (UnsafeMutablePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, mpfr_rnd_t) -> Int32) {
        withExtendedLifetime((self, a, b)) { _ = f(ptr, a.ptr, b.ptr, MPFR_RNDN) }
    }

    /// self ← x (rounded to self's precision).
    public func set(_ x: BigFloat) { apply1(x, mc_set) }
    /// self ← x (rounded once).
    public func set(_ x: Double) { withExtendedLifetime(self) { _ = mc_set_d(ptr, x, MPFR_RNDN) } }
    /// self ← x (rounded once).
    public func set(_ x: Float) { withExtendedLifetime(self) { _ = mc_set_flt(ptr, x, MPFR_RNDN) } }
    /// self ← n (rounded once).
    public func set(_ n: Int) { withExtendedLifetime(self) { _ = mc_set_si(ptr, n, MPFR_RNDN) } }
    /// self ← a + b
    public func setSum(_ a: BigFloat, _ b: BigFloat) { apply2(a, b, mc_add) }
    /// self ← a − b
    public func setDifference(_ a: BigFloat, _ b: BigFloat) { apply2(a, b, mc_sub) }
    /// self ← a · b
    public func setProduct(_ a: BigFloat, _ b: BigFloat) { apply2(a, b, mc_mul) }
    /// self ← a / b
    public func setQuotient(_ a: BigFloat, _ b: BigFloat) { apply2(a, b, mc_div) }
    /// self ← a · b + c with a single rounding.
    public func setFMA(_ a: BigFloat, _ b: BigFloat, _ c: BigFloat) {
        withExtendedLifetime((self, a, b, c)) { _ = mc_fma(ptr, a.ptr, b.ptr, c.ptr, MPFR_RNDN) }
    }
    /// self ← self + a · b with a single rounding (the accumulation step of a dot product).
    public func addProduct(_ a: BigFloat, _ b: BigFloat) {
        withExtendedLifetime((self, a, b)) { _ = mc_fma(ptr, a.ptr, b.ptr, ptr, MPFR_RNDN) }
    }
    /// self ← self + a
    public func add(_ a: BigFloat) { setSum(self, a) }
    /// self ← self − a
    public func subtract(_ a: BigFloat) { setDifference(self, a) }
    /// self ← self · a
    public func multiply(by a: BigFloat) { setProduct(self, a) }
    /// self ← self / a
    public func divide(by a: BigFloat) { setQuotient(self, a) }
    /// self ← −self (exact)
    public func negate() { apply1(self, mc_neg) }
    /// self ← self · 2^e (exact unless it leaves MPFR's exponent range)
    public func multiply(byPowerOfTwo e: Int) { withExtendedLifetime(self) { _ = mc_mul_2si(ptr, ptr, e, MPFR_RNDN) } }
    /// self ← |a|
    public func setMagnitude(_ a: BigFloat) { apply1(a, mc_abs) }
    /// self ← exp(a)
    public func setExp(_ a: BigFloat) { apply1(a, mc_exp) }
    /// self ← log(a)
    public func setLog(_ a: BigFloat) { apply1(a, mc_log) }
    /// self ← √a
    public func setSquareRoot(_ a: BigFloat) { apply1(a, mc_sqrt) }
    /// self ← a²
    public func setSquare(_ a: BigFloat) { apply1(a, mc_sqr) }
}

// MARK: - Functional arithmetic (allocates the result)

extension BigFloat {
    @inline(__always)
    static func binary(_ a: BigFloat, _ b: BigFloat,
                       _ f: (UnsafeMutablePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, mpfr_rnd_t) -> Int32) -> BigFloat {
        let r = BigFloat(precision: Swift.max(a.precision, b.precision))
        r.apply2(a, b, f)
        return r
    }
    @inline(__always)
    static func unary(_ a: BigFloat, _ f: (UnsafeMutablePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, mpfr_rnd_t) -> Int32) -> BigFloat {
        let r = BigFloat(precision: a.precision)
        r.apply1(a, f)
        return r
    }

    public static func + (a: BigFloat, b: BigFloat) -> BigFloat { binary(a, b, mc_add) }
    public static func - (a: BigFloat, b: BigFloat) -> BigFloat { binary(a, b, mc_sub) }
    public static func * (a: BigFloat, b: BigFloat) -> BigFloat { binary(a, b, mc_mul) }
    public static func / (a: BigFloat, b: BigFloat) -> BigFloat { binary(a, b, mc_div) }
    public static prefix func - (a: BigFloat) -> BigFloat { unary(a, mc_neg) }
    public static func + (a: BigFloat, b: Double) -> BigFloat { a + BigFloat(b, precision: Swift.max(a.precision, 53)) }
    public static func - (a: BigFloat, b: Double) -> BigFloat { a - BigFloat(b, precision: Swift.max(a.precision, 53)) }
    public static func * (a: BigFloat, b: Double) -> BigFloat { a * BigFloat(b, precision: Swift.max(a.precision, 53)) }
    public static func / (a: BigFloat, b: Double) -> BigFloat { a / BigFloat(b, precision: Swift.max(a.precision, 53)) }

    /// a · b + c with a single rounding.
    public static func fma(_ a: BigFloat, _ b: BigFloat, _ c: BigFloat) -> BigFloat {
        let r = BigFloat(precision: Swift.max(a.precision, b.precision, c.precision))
        r.setFMA(a, b, c)
        return r
    }
    public static func sqrt(_ a: BigFloat) -> BigFloat { unary(a, mc_sqrt) }
    /// 1/√a, correctly rounded (one rounding).
    public static func rsqrt(_ a: BigFloat) -> BigFloat { unary(a, mc_rec_sqrt) }
    public static func exp(_ a: BigFloat) -> BigFloat { unary(a, mc_exp) }
    /// eˣ − 1, accurate for small x.
    public static func expm1(_ a: BigFloat) -> BigFloat { unary(a, mc_expm1) }
    public static func log(_ a: BigFloat) -> BigFloat { unary(a, mc_log) }
    /// log(1 + x), accurate for small x.
    public static func log1p(_ a: BigFloat) -> BigFloat { unary(a, mc_log1p) }
    public static func abs(_ a: BigFloat) -> BigFloat { unary(a, mc_abs) }
    /// The smaller operand; if one is NaN, the other (IEEE minNum).
    public static func min(_ a: BigFloat, _ b: BigFloat) -> BigFloat { binary(a, b, mc_min) }
    /// The larger operand; if one is NaN, the other (IEEE maxNum).
    public static func max(_ a: BigFloat, _ b: BigFloat) -> BigFloat { binary(a, b, mc_max) }
}

// MARK: - Comparison

extension BigFloat: Equatable, Comparable {
    /// IEEE equality: NaN is unequal to everything, +0 == −0.
    public static func == (a: BigFloat, b: BigFloat) -> Bool {
        withExtendedLifetime((a, b)) { mc_equal_p(a.ptr, b.ptr) != 0 }
    }
    /// IEEE ordering: false whenever either operand is NaN.
    public static func < (a: BigFloat, b: BigFloat) -> Bool {
        withExtendedLifetime((a, b)) { mc_less_p(a.ptr, b.ptr) != 0 }
    }
    /// Compares magnitudes: negative, zero or positive as |a| <, =, > |b| (operands must not be NaN).
    public static func compareMagnitudes(_ a: BigFloat, _ b: BigFloat) -> Int {
        withExtendedLifetime((a, b)) { Int(mc_cmpabs(a.ptr, b.ptr)) }
    }
}
