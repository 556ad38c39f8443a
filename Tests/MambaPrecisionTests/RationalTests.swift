import Testing
import MambaPrecision

@Suite("Exact rationals")
struct RationalTests {
    @Test func arithmeticIdentities() {
        #expect(Rational(1, 3) + Rational(1, 6) == Rational(1, 2))
        #expect(Rational(1, 3) * Rational(3) == Rational(1))
        #expect(Rational(1, 3) - Rational(1, 2) == Rational(-1, 6))
        #expect(Rational(2, 3) / Rational(4, 9) == Rational(3, 2))
        #expect(-Rational(5, 7) == Rational(5, -7))
        #expect(Rational(-6, -4) == Rational(3, 2))
        #expect(Rational(Int.min, -1).description == "9223372036854775808")
        // (a + b)(a − b) = a² − b², exactly
        let a = Rational(123_456_789, 1_000_003), b = Rational(-987_654_321, 77)
        #expect((a + b) * (a - b) == a * a - b * b)
        #expect(Rational(1, 3) < Rational(1, 2) && Rational(-1, 2) < Rational(-1, 3))
        #expect(Rational(0, 5).isZero && Rational(-2, 3).signum == -1)
        #expect(Rational(-2, 3).magnitude == Rational(2, 3))
        #expect(Set([Rational(1, 2), Rational(2, 4), Rational(3, 6)]).count == 1)
    }

    @Test func parsingIsExact() {
        #expect(Rational("0.1")! == Rational(1, 10))
        #expect(Rational("1.25")! == Rational(5, 4))
        #expect(Rational("-3/7")! == Rational(-3, 7))
        #expect(Rational("6/4")!.description == "3/2")
        #expect(Rational("2.5e-3")! == Rational(1, 400))
        #expect(Rational("-1E6")! == Rational(-1_000_000))
        #expect(Rational(".5")! == Rational(1, 2))
        #expect(Rational("7.")! == Rational(7))
        #expect(Rational("+0.000")!.isZero)
        #expect(Rational("123456789012345678901234567890")!.description == "123456789012345678901234567890")
        for bad in ["", "1/0", "abc", "1.2.3", " 1", "1 ", "1e", "inf", "nan", "1/-2", "3/", "/3", ".", "1e+", "0x10", "1 /2"] {
            #expect(Rational(bad) == nil, "accepted \(bad.debugDescription)")
        }
        #expect(Rational("1e1000001") == nil)            // beyond maximumDecimalExponent
    }

    @Test func doubleConversionIsExact() {
        // 0.1 as a Double is 3602879701896397 / 2⁵⁵, not 1/10
        #expect(Rational(0.1) == Rational(3_602_879_701_896_397, 36_028_797_018_963_968))
        #expect(Rational(0.1) != Rational(1, 10))
        #expect(Rational(exactly: Double.nan) == nil && Rational(exactly: Double.infinity) == nil)
        var rng = SplitMix64(seed: 0x0AA7)
        for _ in 0..<2000 {
            let d = randomDouble(exponents: -1022...1023, using: &rng)
            #expect(Rational(d).doubleValue == d)
            #expect(Rational(exactly: BigFloat(d, precision: 53))! == Rational(d))
        }
        #expect(Rational(Double.leastNonzeroMagnitude).doubleValue == .leastNonzeroMagnitude)
        #expect(Rational(-Double.greatestFiniteMagnitude).doubleValue == -.greatestFiniteMagnitude)
    }

    /// `doubleValue` rounds to nearest (GMP's mpq_get_d would truncate).
    @Test func doubleValueRoundsToNearest() {
        #expect(Rational(1, 3).doubleValue == 1.0 / 3.0)
        #expect(Rational(2, 3).doubleValue == 2.0 / 3.0)                   // truncation would be 1 ulp low
        #expect(Rational("18014398509481987")!.doubleValue == 18_014_398_509_481_988)   // 2⁵⁴ + 3 → 2⁵⁴ + 4
        #expect(Rational("18014398509481986")!.doubleValue == 18_014_398_509_481_984)   // tie → even
        // into the subnormals: ¾ of the least subnormal rounds up to it, ¼ rounds to 0
        let threeQuarters = Rational(3) * Rational(Double.leastNonzeroMagnitude) / Rational(4)
        #expect(threeQuarters.doubleValue == .leastNonzeroMagnitude)
        let oneQuarter = Rational(Double.leastNonzeroMagnitude) / Rational(4)
        #expect(oneQuarter.doubleValue == 0)
        #expect(Rational("1e400")!.doubleValue == .infinity)
    }

    @Test func toAndFromBigFloat() {
        #expect(BigFloat(Rational(1, 3), precision: 128) == BigFloat(1, precision: 128) / BigFloat(3, precision: 128))
        #expect(BigFloat(Rational(-5, 4), precision: 2) == BigFloat(-1.0))      // −1.25 → −1 at 2 bits
        let x = BigFloat.pi(precision: 200)
        let q = Rational(exactly: x)!
        #expect(BigFloat(q, precision: 200) == x)
        #expect(Rational(exactly: BigFloat.infinity()) == nil)
        #expect(Rational(exactly: BigFloat.zero(sign: .minus))!.isZero)
        #expect(NumberFormat.binary16.round(Rational(1, 3)) == BigFloat(Double(Float16(1.0 / 3.0))))
        #expect(NumberFormat.e4m3.round(Rational(1000)).isNaN)
    }
}
