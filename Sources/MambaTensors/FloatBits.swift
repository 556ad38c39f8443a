import CHalf

/// Bit-level conversions between the stored floating-point formats.
///
/// Widening (binary16 → binary32/64, bfloat16 → binary32/64, binary32 →
/// binary64) is exact for every value. NaNs are widened *bitwise*: the sign
/// and the whole payload are kept, and a signalling NaN stays signalling
/// (hardware conversions would quiet it).
///
/// Narrowing rounds to nearest, ties to even, exactly once: a `Double` is
/// first rounded *to odd* into a `Float` (24 bits, at least two more than
/// binary16's 11 or bfloat16's 8, everywhere in their exponent ranges), and
/// that `Float` is then rounded to nearest even. Round-to-odd as the
/// intermediate step makes the two roundings equal to one (Boldo &
/// Melquiond, "Emulation of FMA and correctly rounded sums: proved
/// algorithms using rounding to odd", IEEE TC 2008); rounding `Double →
/// Float → Half` to nearest twice would not be. Overflow gives ±∞,
/// underflow gives subnormals or ±0. A narrowed NaN keeps its sign and the
/// leading payload bits; if those are all zero the quiet bit is set so the
/// result is still a NaN.
enum FloatBits {
    // MARK: Widening (exact)

    static func float(halfBits h: UInt16) -> Float {
        if h & 0x7C00 == 0x7C00 && h & 0x03FF != 0 {
            return Float(bitPattern: UInt32(h & 0x8000) << 16 | 0x7F80_0000 | UInt32(h & 0x03FF) << 13)
        }
        return mc_half_bits_to_float_scalar(h)
    }

    static func float(bfloat16Bits b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    static func double(floatBits b: UInt32) -> Double {
        if b & 0x7F80_0000 == 0x7F80_0000 && b & 0x007F_FFFF != 0 {
            return Double(bitPattern: UInt64(b & 0x8000_0000) << 32 | 0x7FF0_0000_0000_0000
                          | UInt64(b & 0x007F_FFFF) << 29)
        }
        return Double(Float(bitPattern: b))
    }

    static func double(halfBits h: UInt16) -> Double {
        double(floatBits: float(halfBits: h).bitPattern)
    }

    static func double(bfloat16Bits b: UInt16) -> Double {
        double(floatBits: UInt32(b) << 16)
    }

    // MARK: Narrowing (one rounding to nearest, ties to even)

    /// `d` rounded to nearest even as a binary32 bit pattern.
    static func floatBits(rounding d: Double) -> UInt32 {
        if d.isNaN { return nanFloatBits(d) }
        return Float(d).bitPattern
    }

    /// `d` rounded *to odd* as a binary32: truncated toward zero, with the
    /// last significand bit set when the truncation was inexact.
    static func floatRoundedToOdd(_ d: Double) -> Float {
        if d.isNaN { return Float(bitPattern: nanFloatBits(d)) }
        var f = Float(d)
        if Double(f) == d { return f }
        if f.isInfinite {
            f = d > 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude
        } else if abs(Double(f)) > abs(d) {
            f = d > 0 ? f.nextDown : f.nextUp
        }
        return Float(bitPattern: f.bitPattern | 1)
    }

    /// `f` rounded to nearest even as a binary16 bit pattern.
    static func halfBits(rounding f: Float) -> UInt16 {
        let b = f.bitPattern
        if b & 0x7F80_0000 == 0x7F80_0000 && b & 0x007F_FFFF != 0 { return nanHalfBits(floatBits: b) }
        return mc_float_to_half_bits_scalar(f)
    }

    /// `d` rounded once to nearest even as a binary16 bit pattern.
    static func halfBits(rounding d: Double) -> UInt16 {
        halfBits(rounding: floatRoundedToOdd(d))
    }

    /// `f` rounded to nearest even as a bfloat16 bit pattern.
    static func bfloat16Bits(rounding f: Float) -> UInt16 {
        let b = f.bitPattern
        if b & 0x7F80_0000 == 0x7F80_0000 && b & 0x007F_FFFF != 0 {
            let payload = UInt16(truncatingIfNeeded: b >> 16)
            return payload & 0x007F == 0 ? payload | 0x0040 : payload
        }
        // Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to
        // even; a carry out of the significand correctly bumps the exponent
        // (up to infinity for the largest values).
        let rounded = b &+ 0x7FFF &+ ((b >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// `d` rounded once to nearest even as a bfloat16 bit pattern.
    static func bfloat16Bits(rounding d: Double) -> UInt16 {
        bfloat16Bits(rounding: floatRoundedToOdd(d))
    }

    // MARK: NaN narrowing

    private static func nanFloatBits(_ d: Double) -> UInt32 {
        let b = d.bitPattern
        let sign = UInt32(truncatingIfNeeded: b >> 32) & 0x8000_0000
        var payload = UInt32(truncatingIfNeeded: (b & 0x000F_FFFF_FFFF_FFFF) >> 29)
        if payload == 0 { payload = 0x0040_0000 }
        return sign | 0x7F80_0000 | payload
    }

    private static func nanHalfBits(floatBits b: UInt32) -> UInt16 {
        let sign = UInt16(truncatingIfNeeded: b >> 16) & 0x8000
        var payload = UInt16(truncatingIfNeeded: (b & 0x007F_FFFF) >> 13)
        if payload == 0 { payload = 0x0200 }
        return sign | 0x7C00 | payload
    }

    // MARK: Bulk forms (F16C when available, via CHalf)

    /// Every element widened exactly; NaNs bitwise.
    static func floats(halfBits: [UInt16]) -> [Float] {
        var result = [Float](repeating: 0, count: halfBits.count)
        halfBits.withUnsafeBufferPointer { src in
            result.withUnsafeMutableBufferPointer { dst in
                if let s = src.baseAddress, let d = dst.baseAddress { mc_half_to_float(s, d, src.count) }
            }
        }
        for (i, h) in halfBits.enumerated() where h & 0x7C00 == 0x7C00 && h & 0x03FF != 0 {
            result[i] = float(halfBits: h)
        }
        return result
    }

    /// Every element rounded to nearest even binary16; NaNs as `halfBits(rounding:)`.
    static func halfBits(rounding floats: [Float]) -> [UInt16] {
        var result = [UInt16](repeating: 0, count: floats.count)
        floats.withUnsafeBufferPointer { src in
            result.withUnsafeMutableBufferPointer { dst in
                if let s = src.baseAddress, let d = dst.baseAddress { mc_float_to_half(s, d, src.count) }
            }
        }
        for (i, f) in floats.enumerated() where f.isNaN {
            result[i] = halfBits(rounding: f)
        }
        return result
    }
}
