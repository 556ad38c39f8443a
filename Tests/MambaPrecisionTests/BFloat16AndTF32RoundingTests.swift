import Testing
import MambaPrecision

/// Independent reference: round a Float32 to nearest-even by clearing its low
/// `droppedBits` fraction bits, the way GPU libraries convert to bfloat16
/// (16 dropped bits) and TF32 (13 dropped bits). Works uniformly across
/// subnormals (the fraction grid is uniform there) and carries into the
/// exponent, up to the ∞ pattern, exactly as IEEE overflow requires.
func roundFloatBitsToNearestEven(_ x: Float, droppingBits droppedBits: UInt32) -> Float {
    if x.isNaN { return x }
    let bits = x.bitPattern
    let lowestKept = (bits >> droppedBits) & 1
    let rounded = (bits &+ ((1 << (droppedBits - 1)) - 1) &+ lowestKept) & ~((1 << droppedBits) - 1)
    return Float(bitPattern: rounded)
}

@Suite("Rounding to bfloat16 and TF32")
struct BFloat16AndTF32RoundingTests {
    static let cases: [(NumberFormat, UInt32)] = [(.bfloat16, 16), (.tf32, 13)]

    /// For every value of the format reachable from a sampled set of kept-bit
    /// patterns (all of them for bfloat16): the value itself, the midpoint to
    /// the next pattern, and the Floats either side of that midpoint.
    @Test(arguments: cases)
    func patternsAndMidpoints(format: NumberFormat, droppedBits: UInt32) {
        let keptPatterns = UInt32(1) << (32 - droppedBits)            // 2^16 or 2^19
        let stride = keptPatterns <= 1 << 16 ? 1 : 7                   // TF32: every 7th pattern
        var failures = 0, checked = 0
        for kept in Swift.stride(from: UInt32(0), to: keptPatterns, by: stride) {
            let base = kept << droppedBits
            guard Float(bitPattern: base).isFinite else { continue }
            let midpoint = base | (1 << (droppedBits - 1))
            for bits in [base, midpoint, midpoint - 1, midpoint + 1, base | ((1 << droppedBits) - 1)] {
                let x = Float(bitPattern: bits)
                let expected = roundFloatBitsToNearestEven(x, droppingBits: droppedBits)
                let got = format.round(x)
                let viaBigFloat = format.round(BigFloat(x)).floatValue
                if !identical(got, expected) || !identical(viaBigFloat, expected) {
                    failures += 1
                    if failures <= 10 { Issue.record("\(format).round(\(x)) = \(got) / \(viaBigFloat), bit reference \(expected)") }
                }
                checked += 1
            }
        }
        print("\(format): checked \(checked) Float patterns around values and midpoints, \(failures) failures")
        #expect(failures == 0)
    }

    /// Uniformly random Float32 bit patterns (every exponent, subnormals, the top
    /// binade that overflows), seeded.
    @Test(arguments: cases)
    func randomFloatPatterns(format: NumberFormat, droppedBits: UInt32) {
        let seed: UInt64 = 0xBF16_7F32 &+ UInt64(droppedBits)
        print("\(format) random test seed: 0x\(String(seed, radix: 16))")
        var rng = SplitMix64(seed: seed)
        var failures = 0
        for _ in 0..<200_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            guard !x.isNaN else { continue }
            let expected = roundFloatBitsToNearestEven(x, droppingBits: droppedBits)
            if !identical(format.round(x), expected) {
                failures += 1
                if failures <= 10 { Issue.record("\(format).round(\(x)) = \(format.round(x)), bit reference \(expected)") }
            }
        }
        #expect(failures == 0)
    }

    /// The bit reference itself is checked on hand-computed cases, so the
    /// comparison above cannot pass by both sides being wrong the same way.
    @Test func bitReferenceSanity() {
        // 1 + 2⁻⁸ is the bfloat16 midpoint between 1 and 1 + 2⁻⁷: ties to 1.
        #expect(roundFloatBitsToNearestEven(1 + pow2f(-8), droppingBits: 16) == 1)
        #expect(roundFloatBitsToNearestEven(1 + pow2f(-8) + pow2f(-20), droppingBits: 16) == 1 + pow2f(-7))
        // 1 + 3·2⁻⁸ ties to 1 + 2⁻⁶ (even).
        #expect(roundFloatBitsToNearestEven(1 + 3 * pow2f(-8), droppingBits: 16) == 1 + pow2f(-6))
        #expect(roundFloatBitsToNearestEven(.greatestFiniteMagnitude, droppingBits: 16) == .infinity)
        #expect(roundFloatBitsToNearestEven(-.greatestFiniteMagnitude, droppingBits: 13) == -.infinity)
        #expect(roundFloatBitsToNearestEven(.leastNonzeroMagnitude, droppingBits: 13) == 0)
        #expect(NumberFormat.bfloat16.greatestFiniteMagnitude == Double(Float(bitPattern: 0x7F7F_0000)))
        #expect(NumberFormat.tf32.greatestFiniteMagnitude == Double(Float(bitPattern: 0x7F7F_E000)))
        #expect(NumberFormat.tf32.leastNonzeroMagnitude == Double(Float(bitPattern: 1 << 13)))
    }

    /// From a high-precision value just above a bfloat16 midpoint, rounding goes
    /// up; through Float it would land on the midpoint and tie down.
    @Test func singleRoundingFromBigFloat() {
        let x = BigFloat(1, precision: 128) + BigFloat(mantissa: 1, exponent: -8) + BigFloat(mantissa: 1, exponent: -60)
        #expect(NumberFormat.bfloat16.round(x) == BigFloat(1 + pow2(-7)))
        #expect(NumberFormat.bfloat16.round(x.floatValue) == 1)
    }
}

func pow2f(_ e: Int) -> Float { Float(sign: .plus, exponent: e, significand: 1) }
