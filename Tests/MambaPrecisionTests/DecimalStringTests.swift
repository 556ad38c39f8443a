import Testing
import MambaPrecision

/// The significant digits of Swift's shortest round-trip `Double.description`
/// ("0.0001" → "1", "123.25" → "12325", "1e-05" → "1").
func swiftShortestDigits(_ x: Double) -> String {
    var text = Substring(x.magnitude.description)
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) { text = text[..<e] }
    var digits = Substring(text.filter { $0 != "." })
    while digits.first == "0" { digits = digits.dropFirst() }
    while digits.last == "0" { digits = digits.dropLast() }
    return String(digits)
}

@Suite("Decimal strings")
struct DecimalStringTests {
    @Test func formatting() {
        #expect(BigFloat(0.1, precision: 53).description == "1.0e-01")
        #expect(BigFloat(1, precision: 53).description == "1.0e+00")
        #expect(BigFloat(-1234.5, precision: 53).description == "-1.2345e+03")
        #expect(BigFloat(1e-100, precision: 53).description == "1.0e-100")
        #expect(BigFloat(1.0 / 3, precision: 53).description == "3.333333333333333e-01")
        #expect(BigFloat.pi(precision: 128).decimalString(significantDigits: 5) == "3.1416e+00")
        #expect(BigFloat(-1234.5, precision: 53).decimalString(significantDigits: 3) == "-1.23e+03")
        #expect(BigFloat(1234.5, precision: 53).decimalString(significantDigits: 1) == "1e+03")
        #expect(BigFloat(0.5, precision: 53).decimalString(significantDigits: 4) == "5.000e-01")
        #expect(BigFloat.zero(sign: .minus).decimalString(significantDigits: 3) == "-0.00e+00")
        #expect("\(BigFloat(2.5))" == "2.5e+00")
    }

    @Test func specialValues() {
        #expect(BigFloat.nan().description == "nan")
        #expect(BigFloat.infinity().description == "inf")
        #expect(BigFloat.infinity(sign: .minus).description == "-inf")
        #expect(BigFloat.zero().description == "0.0e+00")
        #expect(BigFloat.zero(sign: .minus).description == "-0.0e+00")
        for text in ["nan", "inf", "-inf", "0.0e+00", "-0.0e+00"] {
            let x = BigFloat(text)!
            #expect(x.description == text)
        }
        #expect(BigFloat("NaN")!.isNaN)
        #expect(BigFloat("-Infinity")!.isInfinite)
        #expect(BigFloat("Inf")!.sign == .plus)
    }

    @Test func parsing() {
        #expect(BigFloat("1e10", precision: 53)! == BigFloat(1e10))
        #expect(BigFloat("-2.5E-3", precision: 53)! == BigFloat(-2.5e-3))
        #expect(BigFloat("+3")! == BigFloat(3))
        #expect(BigFloat(".5")! == BigFloat(0.5))
        #expect(BigFloat("0.1", precision: 53)! == BigFloat(0.1, precision: 53))
        for bad in ["", " 1", "1 ", "1.5x", "abc", "--1", "1e", "0x10", "1,5", "1\u{0}2", "nanx"] {
            #expect(BigFloat(bad) == nil, "accepted \(bad.debugDescription)")
        }
    }

    /// parse(print(x)) == x at the same precision, for random values at many
    /// precisions (zeros' signs included); at 53 bits the digit count equals
    /// Swift's shortest round-trip representation.
    @Test func roundTrip() {
        var rng = SplitMix64(seed: 0xD1_6175)
        for precision in [1, 2, 11, 24, 53, 64, 113, 128, 256, 600] {
            for _ in 0..<300 {
                let a = randomDouble(exponents: -1000...1000, using: &rng)
                let b = randomDouble(exponents: -60...0, using: &rng)
                let x = BigFloat(a, precision: precision + 60) * BigFloat(1 + b, precision: precision + 60)
                let v = BigFloat(x, precision: precision)
                let text = v.description
                let back = BigFloat(text, precision: precision)
                #expect(back.map { identical($0, v) } == true, "p = \(precision): \(text)")
            }
        }
        for _ in 0..<2000 {
            let d = randomDouble(exponents: -1022...1023, using: &rng)
            let text = BigFloat(d, precision: 53).description
            #expect(Double(text) == d)
            let mantissa = text.split(separator: "e")[0].filter { $0 != "-" && $0 != "." }
            var digits = Substring(mantissa)
            while digits.last == "0" { digits = digits.dropLast() }
            #expect(String(digits) == swiftShortestDigits(d), "\(d): \(text)")
        }
    }
}
