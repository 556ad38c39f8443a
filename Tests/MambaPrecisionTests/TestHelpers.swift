import MambaPrecision

/// SplitMix64: a tiny, fully specified generator, so every random test is
/// reproducible from the seed it prints.
struct SplitMix64: RandomNumberGenerator {
    private(set) var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Bitwise identity (so +0 ≠ −0), with every NaN equal to every NaN.
func identical(_ a: Double, _ b: Double) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }
func identical(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

/// Identity of BigFloat values: same number and same sign of zero, or both NaN
/// (precision is not compared).
func identical(_ a: BigFloat, _ b: BigFloat) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    return a == b && a.sign == b.sign
}

/// 2^e as a Double.
func pow2(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1) }

/// A random Double with a uniformly random exponent in `exponents`, a uniformly
/// random 52-bit fraction and a random sign.
func randomDouble(exponents: ClosedRange<Int>, using rng: inout SplitMix64) -> Double {
    let e = Int.random(in: exponents, using: &rng)
    let fraction = rng.next() & ((1 << 52) - 1)
    let sign: FloatingPointSign = rng.next() & 1 == 0 ? .plus : .minus
    return Double(sign: sign, exponentBitPattern: UInt(e + 1023), significandBitPattern: fraction)
}
