import Testing
import MambaPrecision

/// The position of a half on the number line from its bit pattern alone
/// (sign-magnitude → two's complement): an independent ordinal.
func bitOrdinal(_ h: Float16) -> Int64 {
    let magnitude = Int64(h.bitPattern & 0x7FFF)
    return h.bitPattern & 0x8000 == 0 ? magnitude : -magnitude
}

@Suite("ULP spacing, ordinals and distances")
struct ULPTests {
    let half = NumberFormat.binary16

    @Test func namedDistancesInBinary16() {
        let tiny = Double(Float16.leastNonzeroMagnitude)
        #expect(half.ulpsBetween(tiny, -tiny) == 2)                       // through zero
        #expect(half.ulpsBetween(tiny, 0) == 1)
        #expect(half.ulpsBetween(0.0, -0.0) == 0)
        #expect(half.ulpsBetween(1, Double(Float16(1).nextDown)) == 1)     // across a binade, below 1
        #expect(half.ulpsBetween(1, Double(Float16(1).nextUp)) == 1)
        #expect(half.ulpsBetween(65504, 32768) == 1023)                   // 0x7BFF − 0x7800
        #expect(half.ulpsBetween(65504, 32768) == UInt64(Float16(65504).bitPattern - Float16(32768).bitPattern))
        #expect(half.ulpsBetween(1, 2) == 1024)
        #expect(half.ulpsBetween(-65504, 65504) == 2 * 0x7BFF)
        #expect(half.ulpDistance(BigFloat(1), reference: BigFloat(Double(Float16(1).nextDown))) == 1)
        // the smallest normal and the largest subnormal are neighbours
        #expect(half.ulpsBetween(half.leastNormalMagnitude, half.leastNormalMagnitude - tiny) == 1)
    }

    @Test func binary64DistancesDoNotOverflow() {
        let f = NumberFormat.binary64
        #expect(f.ulpsBetween(-.greatestFiniteMagnitude, .greatestFiniteMagnitude) == 2 * UInt64(0x7FEF_FFFF_FFFF_FFFF))
        #expect(f.ulpsBetween(1.0, 1.0.nextUp) == 1)
        #expect(f.ulpsBetween(Double.leastNonzeroMagnitude, -Double.leastNonzeroMagnitude) == 2)
        #expect(f.ordinal(of: 1.0) == Int64(bitPattern: 1.0.bitPattern))
    }

    /// Symmetric, zero iff equal, equal to the bit-pattern ordinal difference,
    /// on random pairs of finite halves (including pairs straddling zero).
    @Test func randomPairsAgreeWithBitPatterns() {
        var rng = SplitMix64(seed: 0x0171_D157)
        func randomHalf() -> Float16 {
            while true {
                let h = Float16(bitPattern: UInt16.random(in: 0...0xFFFF, using: &rng))
                if h.isFinite { return h }
            }
        }
        for _ in 0..<20_000 {
            let a = randomHalf(), b = rng.next() % 8 == 0 ? randomHalf().nextUp : randomHalf()
            guard b.isFinite else { continue }
            let expected = (bitOrdinal(a) - bitOrdinal(b)).magnitude
            let ab = half.ulpsBetween(Double(a), Double(b))
            #expect(ab == expected)
            #expect(ab == half.ulpsBetween(Double(b), Double(a)))
            #expect((ab == 0) == (a == b))
            #expect(half.ulpDistance(BigFloat(a), reference: BigFloat(b)) == Double(expected))
        }
    }

    /// ordinal and value(atOrdinal:) are inverse over the whole of binary16 and E4M3.
    @Test(arguments: [NumberFormat.binary16, .e4m3, .e5m2])
    func ordinalsAreABijection(format: NumberFormat) {
        let n = format.largestOrdinal
        var previous = -Double.infinity
        for k in -n...n {
            let v = format.value(atOrdinal: k)
            #expect(v > previous)                         // strictly increasing: no value skipped twice
            #expect(format.isRepresentable(v))
            #expect(format.ordinal(of: v) == k)
            previous = v
        }
        #expect(format.value(atOrdinal: n) == format.greatestFiniteMagnitude)
        #expect(format.value(atOrdinal: 1) == format.leastNonzeroMagnitude)
    }

    @Test func ulpAtValues() {
        #expect(half.ulp(at: 1.0) == pow2(-10))
        #expect(half.ulp(at: 0.999) == pow2(-11))           // binade of the argument itself
        #expect(half.ulp(at: 65504) == 32)
        #expect(half.ulp(at: 1e9) == 32)                    // beyond the range: ulp(max)
        #expect(half.ulp(at: .infinity) == 32)
        #expect(half.ulp(at: 0) == pow2(-24))
        #expect(half.ulp(at: -pow2(-20)) == pow2(-24))      // subnormal spacing
        #expect(half.ulp(at: pow2(-14)) == pow2(-24))       // smallest normal: same spacing
        #expect(half.ulp(at: .nan).isNaN)
        #expect(NumberFormat.e4m3.ulp(at: 448) == 32)
        #expect(NumberFormat.binary64.ulp(at: 1.0) == Double.ulpOfOne)
        #expect(NumberFormat.binary32.ulp(at: 3.0) == Double(Float(3).ulp))
        #expect(half.ulp(at: BigFloat(1000)) == BigFloat(0.5))
    }

    @Test func fractionalErrorAgainstExactReferences() {
        // reference 1 + 2⁻¹² is not a half; 1 is off by a quarter of ulp(1) = 2⁻¹⁰
        let reference = BigFloat(1 + pow2(-12))
        #expect(half.ulpError(value: BigFloat(1), reference: reference) == 0.25)
        #expect(half.ulpDistance(BigFloat(1), reference: reference) == 0.25)
        #expect(half.ulpError(value: 1.0 + pow2(-10), reference: 1 + pow2(-12)) == 0.75)
        // value and reference both format values: ordinal count, integer
        #expect(half.ulpDistance(1.0, reference: 1.0 + 3 * pow2(-10)) == 3)
        // the ulp is taken at the reference: a non-format reference just below 2
        #expect(half.ulpError(value: 2, reference: 2 - pow2(-20)) == pow2(-20) / pow2(-10))
    }

    @Test func specialValuesInDistances() {
        let nan = BigFloat.nan(), inf = BigFloat.infinity()
        #expect(half.ulpDistance(nan, reference: nan) == 0)
        #expect(half.ulpDistance(nan, reference: BigFloat(1)) == .infinity)
        #expect(half.ulpDistance(BigFloat(1), reference: nan) == .infinity)
        #expect(half.ulpDistance(inf, reference: inf) == 0)
        #expect(half.ulpDistance(inf, reference: -inf) == .infinity)
        #expect(half.ulpError(value: BigFloat(65504), reference: inf) == .infinity)
        #expect(half.ulpDistance(BigFloat.zero(sign: .minus), reference: BigFloat.zero()) == 0)
    }
}
