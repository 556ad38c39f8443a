import CMPFR

/// Exact dot products of binary floating-point vectors by integer arithmetic.
///
/// A row whose non-zero entries share a narrow exponent range is stored as
/// 64-bit integers `M_d` and one exponent `E`: `x_d = M_d · 2^E` exactly. Then
/// `q·k = 2^(E_q+E_k) · Σ_d M_{q,d} M_{k,d}`, summed exactly in `Int128` when
/// `|M| < 2^56` and `d ≤ 64` (products < 2^112, sums < 2^118). One rounding
/// happens at the end, into MPFR. Rows that do not fit (exponent spread > 56
/// minus their significant bits, or `d > 64`) return nil and the caller
/// falls back to MPFR arithmetic. Float32/Float16/bfloat16 inputs with the
/// usual dynamic range always fit.
struct IntegerRow {
    var mantissas: [Int64]
    var exponent: Int

    static let maxBits = 56

    /// Bit length of the largest |mantissa| (0 for an all-zero row).
    var topBits: Int { mantissas.map { 64 - $0.magnitude.leadingZeroBitCount }.max() ?? 0 }

    /// - Parameter dotProductOperand: rows used in dot products are limited to
    ///   64 entries so that an `Int128` sum of products cannot overflow.
    init?(_ xs: ArraySlice<Double>, dotProductOperand: Bool = true) {
        guard !dotProductOperand || xs.count <= 64 else { return nil }
        var lo = Int.max, hi = Int.min
        for x in xs where x != 0 {
            guard x.isFinite else { return nil }
            let sig = x.significandBitPattern | (x.isNormal ? (1 << 52) : 0)
            let e0 = Int(x.exponent) - 52  // value = sig · 2^e0 (normal numbers)
            let tz = sig.trailingZeroBitCount
            lo = Swift.min(lo, e0 + tz)
            hi = Swift.max(hi, Int(x.exponent))
        }
        if lo == Int.max { mantissas = Array(repeating: 0, count: xs.count); exponent = 0; return }
        guard hi - lo + 1 <= IntegerRow.maxBits else { return nil }
        exponent = lo
        mantissas = xs.map { x in
            guard x != 0 else { return 0 }
            let m = Int64(x.magnitude * pow2(-lo))  // exact: an integer below 2^56
            return x < 0 ? -m : m
        }
    }

    /// Exact `Σ_d a_d b_d` as (integer, exponent).
    @inline(__always)
    static func dot(_ a: IntegerRow, _ b: IntegerRow) -> (Int128, Int) {
        let (hi, lo) = dotParts(a, b)
        return (Int128(hi) << 64 | Int128(lo), a.exponent + b.exponent)
    }

    /// Exact `Σ_d a_d b_d` (≤ 64 terms of `|a_d|, |b_d| < 2^56`) as the
    /// two's-complement 128-bit integer `hi·2^64 + lo`: each product is below
    /// 2^112 and each of the two alternating `Int128` sums (independent
    /// dependency chains) below 2^117, so nothing wraps; integer sums are exact
    /// in any order. (`Int128` products of sign-extended `Int64`s compile to one
    /// widening multiply and an add-with-carry: measured 20% faster than three
    /// carry-free 64-bit partial sums.)
    @inline(__always)
    static func dotParts(_ a: IntegerRow, _ b: IntegerRow) -> (Int64, UInt64) {
        var s0: Int128 = 0, s1: Int128 = 0
        a.mantissas.withUnsafeBufferPointer { pa in
            b.mantissas.withUnsafeBufferPointer { pb in
                let count = Swift.min(pa.count, pb.count)
                let x = pa.baseAddress!, y = pb.baseAddress!
                var d = 0
                while d + 1 < count {
                    s0 &+= Int128(x[d]) &* Int128(y[d])
                    s1 &+= Int128(x[d + 1]) &* Int128(y[d + 1])
                    d += 2
                }
                if d < count { s0 &+= Int128(x[d]) &* Int128(y[d]) }
            }
        }
        let s = s0 &+ s1
        return (Int64(truncatingIfNeeded: s >> 64), UInt64(truncatingIfNeeded: s))
    }
}

@inline(__always) func pow2(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1) }

/// Sets `r` to `n · 2^e` rounded once to `r`'s precision. `tmp` must have at
/// least 128 bits (it holds `n · 2^e` exactly) and `tmpLo` at least 64.
@inline(__always)
func mpfrSet(_ r: UnsafeMutablePointer<__mpfr_struct>, int128 n: Int128, exponent e: Int,
             tmp: UnsafeMutablePointer<__mpfr_struct>, tmpLo: UnsafeMutablePointer<__mpfr_struct>) {
    let m = n.magnitude
    let hi = UInt64(truncatingIfNeeded: m >> 64)
    let lo = UInt64(truncatingIfNeeded: m)
    if hi == 0 {
        mpfr_set_ui_2exp(r, UInt(lo), e, MPFR_RNDN)  // one rounding
    } else {
        // hi·2^(e+64) + lo·2^e is exact in 128 bits (both on the 2^e grid, < 2^128·2^e).
        mpfr_set_ui_2exp(tmp, UInt(hi), e + 64, MPFR_RNDN)
        mpfr_set_ui_2exp(tmpLo, UInt(lo), e, MPFR_RNDN)
        mpfr_add(tmp, tmp, tmpLo, MPFR_RNDN)
        mc_set(r, tmp, MPFR_RNDN)
    }
    if n < 0 { mpfr_neg(r, r, MPFR_RNDN) }
}
