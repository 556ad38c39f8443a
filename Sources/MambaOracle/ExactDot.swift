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
    /// two's-complement 128-bit integer `hi·2^64 + lo`, without a carry chain:
    /// each product `P_d = h_d·2^64 + l_d` (`Int64.multipliedFullWidth`, `l_d`
    /// unsigned) is added as three parts, `Σh_d` (`|h_d| < 2^48`), `Σ⌊l_d/2^32⌋`
    /// and `Σ(l_d mod 2^32)` (each `< 64·2^32`), none of which can overflow 64 bits;
    /// the three are combined once at the end. Two sets of sums alternate over `d`
    /// (independent dependency chains); integer sums are exact in any order.
    @inline(__always)
    static func dotParts(_ a: IntegerRow, _ b: IntegerRow) -> (Int64, UInt64) {
        var h0: Int64 = 0, m0: UInt64 = 0, l0: UInt64 = 0
        var h1: Int64 = 0, m1: UInt64 = 0, l1: UInt64 = 0
        a.mantissas.withUnsafeBufferPointer { pa in
            b.mantissas.withUnsafeBufferPointer { pb in
                let count = Swift.min(pa.count, pb.count)
                let x = pa.baseAddress!, y = pb.baseAddress!
                var d = 0
                while d + 1 < count {
                    let (ph0, pl0) = x[d].multipliedFullWidth(by: y[d])
                    let (ph1, pl1) = x[d + 1].multipliedFullWidth(by: y[d + 1])
                    h0 &+= ph0; m0 &+= pl0 &>> 32; l0 &+= pl0 & 0xFFFF_FFFF
                    h1 &+= ph1; m1 &+= pl1 &>> 32; l1 &+= pl1 & 0xFFFF_FFFF
                    d += 2
                }
                if d < count {
                    let (ph, pl) = x[d].multipliedFullWidth(by: y[d])
                    h0 &+= ph; m0 &+= pl &>> 32; l0 &+= pl & 0xFFFF_FFFF
                }
            }
        }
        // Σ = H·2^64 + M·2^32 + L with M, L < 2^39: M·2^32 = ⌊M/2^32⌋·2^64 + (M mod 2^32)·2^32.
        let m = m0 &+ m1, l = l0 &+ l1
        let (lo, carry) = ((m & 0xFFFF_FFFF) &<< 32).addingReportingOverflow(l)
        let hi = h0 &+ h1 &+ Int64(m &>> 32) &+ (carry ? 1 : 0)
        return (hi, lo)
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
