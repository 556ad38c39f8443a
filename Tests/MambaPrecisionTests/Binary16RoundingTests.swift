import Testing
import MambaPrecision

/// `NumberFormat.binary16` (MPFR emulation) against Swift's own `Float16(Double)`
/// conversion, which rounds once to nearest-even in hardware or compiler-rt.
@Suite("Rounding to binary16")
struct Binary16RoundingTests {
    let format = NumberFormat.binary16

    /// Every finite half value, both midpoints around it and the Doubles just
    /// either side of each midpoint.
    @Test func everyHalfPatternAndItsMidpoints() {
        var checked = 0
        var failures = 0
        for bits in UInt16.min...UInt16.max {
            let h = Float16(bitPattern: bits)
            guard h.isFinite else { continue }
            let d = Double(h)
            var points = [d]
            for neighbour in [h.nextUp, h.nextDown] {
                // The exact midpoint (a Double: binary16 has 11 bits); beyond ±65504
                // the "neighbour" is the would-be next value ±65536.
                let n = neighbour.isInfinite ? (neighbour > 0 ? 65536.0 : -65536.0) : Double(neighbour)
                let mid = (d + n) / 2
                points += [mid, mid.nextUp, mid.nextDown]
            }
            for x in points {
                let expected = Double(Float16(x))
                let got = format.round(x)
                if !identical(got, expected) {
                    failures += 1
                    if failures <= 10 { Issue.record("binary16.round(\(x)) = \(got), Float16 gives \(expected)") }
                }
                checked += 1
            }
        }
        print("binary16: checked \(checked) points (all half patterns, midpoints ± 1 Double ulp), \(failures) failures")
        #expect(failures == 0)
        #expect(checked > 65536 * 6)
    }

    /// Midpoints tie to the neighbour with an even significand; a Double ulp
    /// either side decides the direction — checked without reference to Swift.
    @Test func tiesGoToEvenAndNeighboursDecide() {
        var failures = 0
        for bits in UInt16(0)..<0x7C00 {                     // +0 … 65504
            let h = Float16(bitPattern: bits)
            let up = h.nextUp
            let d = Double(h)
            let n = up.isInfinite ? 65536.0 : Double(up)
            let mid = (d + n) / 2
            let even = bits & 1 == 0 ? d : (up.isInfinite ? .infinity : n)
            let upper = up.isInfinite ? Double.infinity : n
            let results = [format.round(mid), -format.round(-mid), format.round(mid.nextDown), format.round(mid.nextUp)]
            if results != [even, even, d, upper] {
                failures += 1
                if failures <= 10 { Issue.record("around \(d): got \(results), expected \([even, even, d, upper])") }
            }
        }
        #expect(failures == 0)
    }

    /// A million random Doubles spanning the whole binary16 range (subnormals,
    /// overflow and far beyond), a quarter of them placed within a few Double
    /// ulps of a binary16 midpoint. Both the Double entry point and the
    /// BigFloat path (`float16Value` on one preallocated value) are checked.
    @Test func aMillionRandomDoubles() {
        let seed: UInt64 = 0x5EED_F16_2024
        print("binary16 random test seed: 0x\(String(seed, radix: 16))")
        var rng = SplitMix64(seed: seed)
        let scratch = BigFloat(precision: 53)
        var failures = 0
        let clock = ContinuousClock()
        let start = clock.now
        for i in 0..<1_000_000 {
            let x: Double
            if i % 4 == 0 {
                let h = Float16(bitPattern: UInt16.random(in: 0..<0x7C00, using: &rng))
                let mid = (Double(h) + (h.nextUp.isInfinite ? 65536 : Double(h.nextUp))) / 2
                var m = mid
                for _ in 0..<Int.random(in: 0...3, using: &rng) { m = rng.next() & 1 == 0 ? m.nextUp : m.nextDown }
                x = rng.next() & 1 == 0 ? m : -m
            } else {
                x = randomDouble(exponents: -30...17, using: &rng)
            }
            let expected = Float16(x)
            let viaDouble = format.round(x)
            scratch.set(x)
            let viaBigFloat = scratch.float16Value
            if !identical(viaDouble, Double(expected)) || viaBigFloat.bitPattern != expected.bitPattern {
                failures += 1
                if failures <= 10 {
                    Issue.record("x = \(x): Float16 \(expected), round \(viaDouble), float16Value \(viaBigFloat)")
                }
            }
        }
        print("binary16: 1e6 random doubles in \(clock.now - start), \(failures) failures")
        #expect(failures == 0)
    }

    /// `float16Value` rounds once from the full value. These inputs sit just
    /// above a binary16 midpoint by less than half a Float (resp. Double) ulp,
    /// so going through Float (resp. Double) lands exactly on the midpoint and
    /// ties to even — downwards, the wrong way.
    @Test func float16ValueIsASingleRounding() {
        // 1 + 2⁻¹¹ is the midpoint between 1 and 1 + 2⁻¹⁰ (odd significand).
        let aboveByFloatTiny = BigFloat(1, precision: 128) + BigFloat(mantissa: 1, exponent: -11) + BigFloat(mantissa: 1, exponent: -40)
        #expect(aboveByFloatTiny.float16Value == 1 + Float16.ulpOfOne)
        #expect(Float16(aboveByFloatTiny.floatValue) == 1)              // the double rounding we avoid
        #expect(Float16(aboveByFloatTiny.doubleValue) == 1 + Float16.ulpOfOne)

        let aboveByDoubleTiny = BigFloat(1, precision: 128) + BigFloat(mantissa: 1, exponent: -11) + BigFloat(mantissa: 1, exponent: -70)
        #expect(aboveByDoubleTiny.float16Value == 1 + Float16.ulpOfOne)
        #expect(Float16(aboveByDoubleTiny.doubleValue) == 1)            // through Double: wrong way
        #expect((-aboveByDoubleTiny).float16Value == -(1 + Float16.ulpOfOne))

        // Subnormal: 2.5 · 2⁻²⁴ ties to 2 · 2⁻²⁴; a hair above must give 3 · 2⁻²⁴.
        let subnormal = BigFloat(mantissa: 5, exponent: -25, precision: 128) + BigFloat(mantissa: 1, exponent: -100)
        #expect(subnormal.float16Value == 3 * Float16.leastNonzeroMagnitude)
        #expect(Float16(subnormal.doubleValue) == 2 * Float16.leastNonzeroMagnitude)
        #expect(NumberFormat.binary16.round(subnormal) == BigFloat(3 * Float16.leastNonzeroMagnitude))

        // Overflow threshold: 65520 = 65504 + ½ ulp goes to ∞, a hair below stays finite.
        let belowOverflow = BigFloat(65520, precision: 128) - BigFloat(mantissa: 1, exponent: -90)
        #expect(belowOverflow.float16Value == 65504)
        #expect(Float16(belowOverflow.doubleValue) == .infinity)         // Double rounds up to 65520 first
        #expect(BigFloat(65520, precision: 128).float16Value == .infinity)
    }
}
