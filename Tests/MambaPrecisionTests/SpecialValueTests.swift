import Testing
import MambaPrecision

@Suite("Special values through BigFloat and the formats")
struct SpecialValueTests {
    @Test func zerosKeepTheirSign() {
        for sign in [FloatingPointSign.plus, .minus] {
            let z = BigFloat.zero(sign: sign)
            #expect(z.isZero && z.sign == sign)
            #expect(z.doubleValue == 0 && z.doubleValue.sign == sign)
            #expect(z.floatValue == 0 && z.floatValue.sign == sign)
            #expect(z.float16Value == 0 && z.float16Value.sign == sign)
            #expect(BigFloat(Double(sign: sign, exponent: 0, significand: 0)).sign == sign)
            for format in NumberFormat.allCases {
                let r = format.round(z)
                #expect(r.isZero && r.sign == sign, "\(format)")
                #expect(identical(format.round(z.doubleValue), z.doubleValue), "\(format)")
            }
        }
    }

    @Test func infinitiesAndNaN() {
        for sign in [FloatingPointSign.plus, .minus] {
            let inf = BigFloat.infinity(sign: sign)
            let expected = sign == .plus ? Double.infinity : -Double.infinity
            #expect(inf.doubleValue == expected)
            #expect(inf.floatValue == Float(expected))
            #expect(inf.float16Value == Float16(expected))
            #expect(BigFloat(expected).isInfinite && BigFloat(expected).sign == sign)
            for format in NumberFormat.allCases {
                if format.hasInfinities {
                    #expect(format.round(inf).isInfinite && format.round(inf).sign == sign, "\(format)")
                    #expect(format.round(expected) == expected, "\(format)")
                } else {
                    #expect(format.round(inf).isNaN, "\(format)")
                }
            }
        }
        let nan = BigFloat.nan()
        #expect(nan.doubleValue.isNaN && nan.floatValue.isNaN && nan.float16Value.isNaN)
        #expect(BigFloat(Double.nan).isNaN && BigFloat(Float16.nan).isNaN)
        for format in NumberFormat.allCases {
            #expect(format.round(nan).isNaN && format.round(Double.nan).isNaN, "\(format)")
        }
    }

    /// The extreme finite values of Double, Float and Float16 survive the trip
    /// into BigFloat and back, and through the matching format's rounding.
    @Test func extremeValuesRoundTrip() {
        for d in [Double.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude] {
            for x in [d, -d] {
                #expect(identical(BigFloat(x, precision: 53).doubleValue, x))
                #expect(identical(NumberFormat.binary64.round(BigFloat(x)).doubleValue, x))
                #expect(identical(NumberFormat.binary64.round(x), x))
            }
        }
        for f in [Float.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude] {
            for x in [f, -f] {
                #expect(identical(BigFloat(x, precision: 24).floatValue, x))
                #expect(identical(NumberFormat.binary32.round(Double(x)), Double(x)))
                #expect(identical(NumberFormat.binary32.round(x), x))
            }
        }
        for h in [Float16.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude] {
            for x in [h, -h] {
                #expect(BigFloat(x, precision: 11).float16Value.bitPattern == x.bitPattern)
                #expect(identical(NumberFormat.binary16.round(Double(x)), Double(x)))
                #expect(NumberFormat.binary16.round(BigFloat(x)).float16Value.bitPattern == x.bitPattern)
            }
        }
        // The format parameters match Swift's types.
        #expect(NumberFormat.binary64.greatestFiniteMagnitude == .greatestFiniteMagnitude)
        #expect(NumberFormat.binary64.leastNonzeroMagnitude == .leastNonzeroMagnitude)
        #expect(NumberFormat.binary32.greatestFiniteMagnitude == Double(Float.greatestFiniteMagnitude))
        #expect(NumberFormat.binary32.leastNonzeroMagnitude == Double(Float.leastNonzeroMagnitude))
        #expect(NumberFormat.binary16.greatestFiniteMagnitude == 65504)
        #expect(NumberFormat.binary16.leastNonzeroMagnitude == Double(Float16.leastNonzeroMagnitude))
        #expect(NumberFormat.binary16.leastNormalMagnitude == Double(Float16.leastNormalMagnitude))
    }

    /// Each format's largest finite and smallest subnormal values are fixed
    /// points of its rounding; half an ulp beyond the largest overflows (or,
    /// for E4M3, one step further), and half the smallest subnormal ties to zero.
    @Test(arguments: NumberFormat.allCases)
    func boundariesOfEachFormat(format: NumberFormat) {
        let max = format.greatestFiniteMagnitude, tiny = format.leastNonzeroMagnitude
        #expect(format.round(max) == max && format.round(-max) == -max)
        #expect(format.round(tiny) == tiny && format.round(-tiny) == -tiny)
        #expect(format.round(BigFloat(max)) == BigFloat(max))
        #expect(format.isRepresentable(max) && format.isRepresentable(tiny))
        #expect(!format.isRepresentable(BigFloat(tiny) * BigFloat(1.5)))
        let halfTiny = BigFloat(tiny)
        halfTiny.multiply(byPowerOfTwo: -1)
        #expect(format.round(halfTiny).isZero)
        #expect(format.round(-halfTiny).isZero && format.round(-halfTiny).sign == .minus)
        let bump = BigFloat(tiny)
        bump.multiply(byPowerOfTwo: -101)                       // halfTiny + bump is exact at 128 bits
        #expect(format.round(halfTiny + bump) == BigFloat(tiny))
        #expect(format.round(BigFloat(tiny) * BigFloat(1.5)) == BigFloat(2 * tiny))   // ties to even
        let halfUlp = format.ulp(at: max) / 2
        if format != .binary64 {          // max + ½ulp is not a Double for binary64; use BigFloat
            #expect(format.round((max + halfUlp).nextDown) == max)
        }
        let beyond = BigFloat(max, precision: 200) + BigFloat(halfUlp, precision: 200)
        let justBelow = beyond - BigFloat(halfUlp * pow2(-100), precision: 200)
        #expect(justBelow < beyond)
        #expect(format.round(justBelow) == BigFloat(max))
        if format.hasInfinities {
            #expect(format.round(beyond).isInfinite && format.round(-beyond).sign == .minus)
        } else {
            #expect(format.round(beyond) == BigFloat(max))              // E4M3: 464 ties to 448
            #expect(format.round(beyond + BigFloat(1)).isNaN)
        }
    }
}
