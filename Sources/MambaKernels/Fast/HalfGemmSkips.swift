#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Exact work skipping for the pure binary16 GEMM (`Arithmetic.halfGemm`).
///
/// Why: binary16 underflows where Float32 does not. On the benchmark's
/// problem (paper distribution, chunked 2Mamba) most binary16 decay factors
/// `e^{ℓ_last − ℓ_j}` and query scales `c·e^{ℓ_i}` round to 0, so about 60%
/// of the carry's value rows and 70% of the inter-chunk query rows are zero,
/// and emulating their products one binary16 operation at a time was most of
/// the mode's time.
///
/// Why it is exact: the sum `s_{p+1} = h(s_p + h(a_ip·b_pj))` starts at
/// `s_0 = +0` and never becomes −0 (`+0 + (−0) = +0`, `x + (−x) = +0`), so a
/// product that is ±0 leaves it unchanged bit for bit. A product is ±0 when
/// one factor is ±0 and the other is finite (`0·∞` is NaN). Hence:
///
/// - a step `p` whose row `b_p·` is all zeros is dropped when every entry of
///   A is finite;
/// - a row `i` whose `a_i·` is all zeros is `+0` (no products formed) when
///   every entry of B is finite.
///
/// Without finiteness nothing is dropped on that side, so infinities and
/// NaN propagate exactly as before.
enum HalfGemmSkips {
    /// Compacts the packed operands in place: `a` (`m×k`, row-major) becomes
    /// the kept rows and steps (`rows.count × steps`, followed by zero rows up
    /// to a multiple of `rowMultiple`), `b` (`k×np`, real columns `n`) its
    /// first `steps` rows. Returns the original indices of the kept rows, in
    /// order, and the number of kept steps; rows not kept are exactly +0.
    static func compact(a: UnsafeMutablePointer<Float>, m: Int, k: Int, b: UnsafeMutablePointer<Float>, n: Int,
                        np: Int, rowMultiple: Int) -> (rows: [Int], steps: Int) {
        var steps: [Int] = []
        if allFinite(a, m * k) {
            steps.reserveCapacity(k)
            for p in 0..<k where !allZero(b + p * np, n) { steps.append(p) }
        } else {
            steps = Array(0..<k)
        }
        var rows: [Int] = []
        if allFinite(b, k * np) {
            rows.reserveCapacity(m)
            for i in 0..<m where !allZero(a + i * k, k) { rows.append(i) }
        } else {
            rows = Array(0..<m)
        }
        let kk = steps.count
        if kk == k && rows.count == m { return (rows, k) }
        // Forward copies only: every destination precedes its source.
        for (t, p) in steps.enumerated() where t != p {
            let dst = b + t * np, src = b + p * np
            for j in 0..<np { dst[j] = src[j] }
        }
        if kk == k {  // every step kept: whole rows move (the inter-chunk query product drops rows only)
            for (r, i) in rows.enumerated() where r != i { memmove(a + r * k, a + i * k, k * MemoryLayout<Float>.stride) }
        } else {
            steps.withUnsafeBufferPointer { kept in
                for (r, i) in rows.enumerated() {
                    let dst = a + r * kk, src = a + i * k
                    for t in 0..<kk { dst[t] = src[kept[t]] }
                }
            }
        }
        let padded = (rows.count + rowMultiple - 1) / rowMultiple * rowMultiple
        (a + rows.count * kk).update(repeating: 0, count: (padded - rows.count) * kk)
        return (rows, kk)
    }

    static func allFinite(_ p: UnsafePointer<Float>, _ count: Int) -> Bool {
        // Exponent field all ones ⇔ ±∞ or NaN; one pass, no early exit (vectorises).
        var bad: UInt32 = 0
        for e in 0..<count { bad |= (p[e].bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0 }
        return bad == 0
    }

    /// Whether every value is ±0 (`x != 0` is true for NaN too): sixteen
    /// lanes of magnitude bits at a time, leaving at the first nonzero block
    /// (an all-zero query row of 2080 features was scanned one by one).
    static func allZero(_ p: UnsafePointer<Float>, _ count: Int) -> Bool {
        let raw = UnsafeRawPointer(p)
        var j = 0
        while j + 16 <= count {
            let bits = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<UInt32>.self) & 0x7FFF_FFFF
            if bits != SIMD16<UInt32>(repeating: 0) { return false }
            j += 16
        }
        while j < count { if p[j] != 0 { return false }; j += 1 }
        return true
    }
}
