import Testing
import MambaPrecision

/// Decodes an OCP FP8 byte independently of `NumberFormat`: sign, biased
/// exponent, fraction; exponent field 0 is subnormal. E4M3 ("fn"): bias 7,
/// S.1111.111 is NaN and there are no infinities. E5M2: bias 15, IEEE-like.
func decodeFP8(_ byte: UInt8, exponentBits: Int) -> Double {
    let fractionBits = 7 - exponentBits
    let bias = (1 << (exponentBits - 1)) - 1
    let sign: Double = byte & 0x80 == 0 ? 1 : -1
    let field = Int(byte >> fractionBits) & ((1 << exponentBits) - 1)
    let fraction = Int(byte) & ((1 << fractionBits) - 1)
    if exponentBits == 4, byte & 0x7F == 0x7F { return .nan }
    if exponentBits == 5, field == 31 { return fraction == 0 ? sign * .infinity : .nan }
    if field == 0 { return sign * Double(fraction) * pow2(1 - bias - fractionBits) }
    return sign * Double((1 << fractionBits) + fraction) * pow2(field - bias - fractionBits)
}

@Suite("FP8 E4M3 and E5M2")
struct FP8Tests {
    @Test func parameters() {
        #expect(NumberFormat.e4m3.greatestFiniteMagnitude == 448)
        #expect(NumberFormat.e5m2.greatestFiniteMagnitude == 57344)
        #expect(NumberFormat.e4m3.leastNormalMagnitude == pow2(-6))
        #expect(NumberFormat.e4m3.leastNonzeroMagnitude == pow2(-9))
        #expect(NumberFormat.e5m2.leastNormalMagnitude == pow2(-14))
        #expect(NumberFormat.e5m2.leastNonzeroMagnitude == pow2(-16))
        #expect(!NumberFormat.e4m3.hasInfinities && NumberFormat.e5m2.hasInfinities)
        #expect(NumberFormat.e4m3.overflowBehavior == .nan)
        #expect(NumberFormat.e5m2.overflowBehavior == .infinity)
        #expect(NumberFormat(rawValue: "fp8-e4m3") == .e4m3)
        #expect(NumberFormat.e4m3.largestOrdinal == 126)      // 0x01 … 0x7E
        #expect(NumberFormat.e5m2.largestOrdinal == 123)      // 0x01 … 0x7B
    }

    /// Every byte of both encodings: finite values are representable, round to
    /// themselves, and sit at ordinal = magnitude bits.
    @Test(arguments: [(NumberFormat.e4m3, 4), (NumberFormat.e5m2, 5)])
    func everyEncodingRoundTrips(format: NumberFormat, exponentBits: Int) {
        for byte in UInt8.min...UInt8.max {
            let v = decodeFP8(byte, exponentBits: exponentBits)
            if v.isNaN { #expect(format.round(v).isNaN); continue }
            if v.isInfinite { #expect(format.round(v) == v); continue }
            #expect(format.isRepresentable(v))
            #expect(identical(format.round(v), v))
            #expect(identical(format.round(BigFloat(v)).doubleValue, v))
            let magnitude = Int64(byte & 0x7F)
            #expect(format.ordinal(of: v) == (byte & 0x80 == 0 || v == 0 ? magnitude : -magnitude))
        }
    }

    @Test func e4m3OverflowIsNaN() {
        let f = NumberFormat.e4m3
        #expect(f.round(448) == 448)
        #expect(f.round(460) == 448)
        #expect(f.round(464) == 448)               // midpoint 448 | 480: ties to 448 (even significand)
        #expect(f.round(464.0.nextUp).isNaN)       // rounds to 480, the NaN pattern
        #expect(f.round(470).isNaN)
        #expect(f.round(-1000).isNaN)
        #expect(f.round(Double.infinity).isNaN)
        #expect(f.round(-Double.infinity).isNaN)
        #expect(f.round(BigFloat(1e300)).isNaN)
        #expect(f.round(432) == 448)               // midpoint 416 | 448: ties to 448
        #expect(f.round(-400) == -384)             // midpoint 384 | 416: ties to 384
    }

    @Test func e5m2OverflowIsInfinity() {
        let f = NumberFormat.e5m2
        #expect(f.round(57344) == 57344)
        #expect(f.round(61440.0.nextDown) == 57344)    // just below max + ½ ulp
        #expect(f.round(61440) == .infinity)          // max + ½ ulp
        #expect(f.round(-1e6) == -.infinity)
        #expect(f.round(53248) == 49152)              // midpoint 6·2¹³ | 7·2¹³: ties to the even 6·2¹³
    }

    @Test func subnormals() {
        let e4 = NumberFormat.e4m3, e5 = NumberFormat.e5m2
        #expect(e4.round(pow2(-9)) == pow2(-9))
        #expect(e4.round(pow2(-10)) == 0)                     // half the least subnormal ties to 0
        #expect(e4.round(pow2(-10).nextUp) == pow2(-9))
        #expect(e4.round(3 * pow2(-10)) == pow2(-8))          // 1.5 × least ties to 2 × least
        #expect(e4.round(5 * pow2(-10)) == pow2(-8))          // 2.5 × least ties to 2 × least
        #expect(e4.round(7 * pow2(-9)) == 7 * pow2(-9))       // largest subnormal
        #expect(e4.round(-pow2(-11)).sign == .minus)          // underflow keeps the sign
        #expect(e5.round(pow2(-16)) == pow2(-16))
        #expect(e5.round(3 * pow2(-17)) == pow2(-15))
        #expect(e5.round(3 * pow2(-16)) == 3 * pow2(-16))     // largest subnormal
        #expect(e5.round(-pow2(-18)) == 0 && e5.round(-pow2(-18)).sign == .minus)
    }
}
