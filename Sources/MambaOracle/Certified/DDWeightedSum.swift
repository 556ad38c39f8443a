import CMPFR

/// Rows of exact binary32 numbers as SIMD4 lanes (`chunks` per row, padded
/// with zeros) and their absolute values, for `DDWeightedSum`.
struct SIMDRows: @unchecked Sendable {
    let chunks: Int
    let x: [SIMD4<Double>], ax: [SIMD4<Double>]

    /// Rows of `width` entries read from `values` (53-bit MPFR copies); nil
    /// unless every entry is a binary32 number (so that a 26-bit half of a
    /// weight times it is exact, Proofs/T7 step 6 (d)).
    init?(_ values: MPFRBuffer, rows: Int, width: Int) {
        let chunks = (width + 3) / 4
        var x = [SIMD4<Double>](repeating: .zero, count: rows * chunks)
        for r in 0..<rows {
            for col in 0..<width {
                let v = mc_get_d(values[r * width + col], MPFR_RNDN)  // exact: the inputs are Doubles
                guard v.isFinite, Double(Float(v)) == v else { return nil }
                x[r * chunks + col / 4][col % 4] = v
            }
        }
        self.chunks = chunks
        self.x = x
        ax = x.map { SIMD4($0[0].magnitude, $0[1].magnitude, $0[2].magnitude, $0[3].magnitude) }
    }

    /// One row of ones (the unweighted sum `Σ_t ŵ_t`).
    static let ones = SIMDRows(one: ())
    private init(one: ()) { chunks = 1; x = [SIMD4(1, 0, 0, 0)]; ax = x }
}

/// `Σ_t ŵ_t·x_t` for balls `ŵ_t` (`DDBall`) and rows `x_t` of binary32
/// numbers, column by column (Proofs/T7, step 8 (c)): the forward's
/// error-free accumulation (step 6 (d): `S` by `twoSum` of the exact products
/// `split(h)·x`, `C` a Double sum of their errors and `RN(l·x)`) in blocks of
/// `B = 64` terms, each block's `(S, C)` folded into a running pair
/// `(T, U)` (`twoSum` into `T`, a Double sum into `U`), and the radius
/// `R = Σ_t (r_t + κ_m|h_t|)|x_t|` in Double, where `κ_m` bounds the
/// accumulation's error relative to `A = Σ_t |h_t||x_t|`:
/// `κ_m = (8B² + 8B + 5K² + 9KB + 7K)u²`, `K = ⌈m/B⌉` blocks for `m` terms.
/// The enclosure is `T + U ± (R + m·2^−1070)(1 + 2(m + 3)u)`, rounded up.
/// Terms that are exactly 0 are skipped, and `ρ_t ≥ 2^−900`: `R = 0` only
/// when every term's `x` is 0 in that column, and then the sum is exactly 0.
final class DDWeightedSum {
    static let block = 64
    let chunks: Int
    private let s: UnsafeMutablePointer<SIMD4<Double>>, c: UnsafeMutablePointer<SIMD4<Double>>
    private let t: UnsafeMutablePointer<SIMD4<Double>>, uu: UnsafeMutablePointer<SIMD4<Double>>
    private let rad: UnsafeMutablePointer<SIMD4<Double>>
    private var inBlock = 0, terms = 0, kappa = 0.0
    /// Drops the bound (`EnclosureFault.fastBoundDropped`): the enclosure is the centre alone.
    var dropBound = false

    init(chunks: Int) {
        self.chunks = chunks
        s = .allocate(capacity: chunks); c = .allocate(capacity: chunks); t = .allocate(capacity: chunks)
        uu = .allocate(capacity: chunks); rad = .allocate(capacity: chunks)
    }
    deinit { s.deallocate(); c.deallocate(); t.deallocate(); uu.deallocate(); rad.deallocate() }

    /// Starts a sum of at most `m` terms.
    func start(terms m: Int) {
        for k in 0..<chunks { s[k] = .zero; c[k] = .zero; t[k] = .zero; uu[k] = .zero; rad[k] = .zero }
        inBlock = 0; terms = 0
        let b = Double(Self.block), k = Double((Swift.max(m, 1) + Self.block - 1) / Self.block)
        kappa = ((8 * b * b + 8 * b + 5 * k * k + 9 * k * b + 7 * k) * 0x1p-106 * (1 + 0x1p-20)).nextUp
    }

    /// Adds `w·x_row` (`w.inRange` holds: the caller checked it).
    @inline(__always)
    func add(_ w: DDBall, _ rows: SIMDRows, _ row: Int) {
        if w.isExactZero { return }
        if inBlock == Self.block { fold() }
        inBlock += 1; terms += 1
        let (h1, h2) = DD.split(w.h)
        let a1 = SIMD4(repeating: h1), a2 = SIMD4(repeating: h2), a3 = SIMD4(repeating: w.l)
        // ρ_t ≥ 2^−900: a term with x ≠ 0 (|x| ≥ 2^−149) then adds at least 2^−1049 to R, so R = 0
        // means every x of the column was 0 and the sum is exactly T + U = 0 (kept decidable).
        let rho = SIMD4(repeating: Swift.max(w.r + kappa * w.h.magnitude, 0x1p-900))
        rows.x.withUnsafeBufferPointer { xb in
            rows.ax.withUnsafeBufferPointer { ab in
                let x = xb.baseAddress! + row * chunks, ax = ab.baseAddress! + row * chunks
                for k in 0..<chunks {
                    let v = x[k]
                    let p1 = a1 * v, p2 = a2 * v, p3 = a3 * v  // p1, p2 exact
                    let (s1, e1) = DD.twoSum(s[k], p1)
                    let (s2, e2) = DD.twoSum(s1, p2)
                    s[k] = s2
                    c[k] = ((c[k] + e1) + e2) + p3
                    rad[k] = rad[k] + rho * ax[k]
                }
            }
        }
    }

    /// Folds the block's `(S, C)` into `(T, U)`.
    private func fold() {
        for k in 0..<chunks {
            let (t1, e) = DD.twoSum(t[k], s[k])
            t[k] = t1
            uu[k] = (uu[k] + e) + c[k]
            s[k] = .zero; c[k] = .zero
        }
        inBlock = 0
    }

    /// Ends the sum: writes column `col`'s enclosure into `lo`, `hi` for each
    /// `col < width` at their precision (`into(col)`), outward.
    func finish(width: Int, tmp: MPFRPointer, tmp2: MPFRPointer, into: (Int) -> (MPFRPointer, MPFRPointer)) {
        if inBlock > 0 { fold() }
        let m = Double(terms)
        let grow = (1 + 2 * (m + 3) * 0x1p-53) * DDBall.up
        for col in 0..<width {
            let (lo, hi) = into(col)
            let r = rad[col / 4][col % 4]
            let b = r == 0 || dropBound ? 0 : ((r + m * 0x1p-1070) * grow).nextUp
            DDBall.enclose(t[col / 4][col % 4], uu[col / 4][col % 4], b, lo, hi, tmp: tmp, tmp2: tmp2)
        }
    }
}
