import CMPFR

/// A 256-bit two's-complement fixed-point accumulator for `Σ_j g_j·v_j`
/// where `g_j` are MPFR numbers of at most 128 bits and `v_j` are exact
/// integer rows (`IntegerRow`, `|M| < 2^56`).
///
/// Every product `G·M` (≤ 184 bits) is exact; it is added after truncation
/// (toward zero) to the accumulator's grid `2^lsb`, with `lsb` chosen from
/// the largest product bound `2^Emax` so that `N` terms cannot overflow:
/// `lsb = Emax − 255 + ⌈log₂(N+1)⌉ + 1`. The total error is below
/// `N·2^lsb ≤ 2^(Emax − 238)` for `N ≤ 2^16`, i.e. 2^-238 relative to the
/// largest term — far below the `γ_N·2^-p·Σ|g v|` of sequential p-bit
/// accumulation it replaces (Proofs/T7). One rounding converts the sum to MPFR.
struct FixedPointAccumulator {
    /// Limbs of one 256-bit accumulator, least significant first.
    static let limbs = 4

    /// `(mantissa, exponent, negative)` with `|x| = mantissa · 2^exponent`, for a
    /// finite MPFR value of ≤ 128 bits (nil for zero).
    @inline(__always)
    static func decompose(_ x: UnsafeMutablePointer<__mpfr_struct>) -> (UInt128, Int, Bool)? {
        if mc_zero_p(x) != 0 { return nil }
        let prec = Int(x.pointee._mpfr_prec)
        let n = (prec + 63) / 64
        let d = x.pointee._mpfr_d!
        let m: UInt128 = n == 1 ? UInt128(d[0]) : (UInt128(d[1]) << 64) | UInt128(d[0])
        return (m, Int(x.pointee._mpfr_exp) - 64 * n, x.pointee._mpfr_sign < 0)
    }

    /// acc ± (p << left) or (p >> right) with `shift > 0` meaning right.
    @inline(__always)
    static func add(_ acc: UnsafeMutablePointer<UInt64>, _ p0: UInt64, _ p1: UInt64, _ p2: UInt64,
                    shift: Int, negative: Bool) {
        var s0: UInt64 = 0, s1: UInt64 = 0, s2: UInt64 = 0, s3: UInt64 = 0
        @inline(__always) func src(_ k: Int) -> UInt64 {
            switch k { case 0: return p0; case 1: return p1; case 2: return p2; default: return 0 }
        }
        if shift >= 0 {
            if shift >= 192 { return }  // below the grid: truncated to zero
            let ls = shift >> 6, b = UInt64(shift & 63)
            @inline(__always) func limb(_ k: Int) -> UInt64 {
                let lo = k + ls < 0 ? 0 : src(k + ls)
                if b == 0 { return lo }
                return (lo >> b) | (src(k + ls + 1) << (64 - b))
            }
            s0 = limb(0); s1 = limb(1); s2 = limb(2); s3 = 0
        } else {
            let l = -shift, ls = l >> 6, b = UInt64(l & 63)
            @inline(__always) func limb(_ k: Int) -> UInt64 {
                let i = k - ls
                let hi = i >= 0 && i <= 2 ? src(i) : 0
                if b == 0 { return hi }
                let lo = i - 1 >= 0 && i - 1 <= 2 ? src(i - 1) : 0
                return (hi << b) | (lo >> (64 - b))
            }
            s0 = limb(0); s1 = limb(1); s2 = limb(2); s3 = limb(3)
        }
        if negative {
            var borrow: UInt64 = 0
            @inline(__always) func sub(_ k: Int, _ v: UInt64) {
                let (d1, o1) = acc[k].subtractingReportingOverflow(v)
                let (d2, o2) = d1.subtractingReportingOverflow(borrow)
                acc[k] = d2
                borrow = (o1 || o2) ? 1 : 0
            }
            sub(0, s0); sub(1, s1); sub(2, s2); sub(3, s3)
        } else {
            var carry: UInt64 = 0
            @inline(__always) func add(_ k: Int, _ v: UInt64) {
                let (a1, o1) = acc[k].addingReportingOverflow(v)
                let (a2, o2) = a1.addingReportingOverflow(carry)
                acc[k] = a2
                carry = (o1 || o2) ? 1 : 0
            }
            add(0, s0); add(1, s1); add(2, s2); add(3, s3)
        }
    }

    /// `r ← acc·2^lsb` rounded once to r's precision. `wide` must have ≥ 320 bits.
    static func store(_ acc: UnsafePointer<UInt64>, lsb: Int, into r: UnsafeMutablePointer<__mpfr_struct>,
                      wide: UnsafeMutablePointer<__mpfr_struct>, limb: UnsafeMutablePointer<__mpfr_struct>) {
        let negative = (acc[3] >> 63) == 1
        var m = (acc[0], acc[1], acc[2], acc[3])
        if negative {  // two's complement magnitude
            m = (~m.0, ~m.1, ~m.2, ~m.3)
            var c: Bool
            (m.0, c) = m.0.addingReportingOverflow(1)
            if c { (m.1, c) = m.1.addingReportingOverflow(1) }
            if c { (m.2, c) = m.2.addingReportingOverflow(1) }
            if c { m.3 = m.3 &+ 1 }
        }
        // Σ limb_k·2^(lsb+64k) is exact in 320 bits (a 256-bit integer).
        mc_set_zero(wide, 1)
        for (k, l) in [m.0, m.1, m.2, m.3].enumerated() where l != 0 {
            mpfr_set_ui_2exp(limb, UInt(l), lsb + 64 * k, MPFR_RNDN)
            mc_add(wide, wide, limb, MPFR_RNDN)
        }
        if negative { mc_neg(wide, wide, MPFR_RNDN) }
        mc_set(r, wide, MPFR_RNDN)
    }
}
