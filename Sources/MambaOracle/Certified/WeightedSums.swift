import CMPFR

/// Exact rows `x_r` (`width` entries each) that a certified weighted sum runs
/// over: values `v`, keys, queries, the upstream gradient `dO` or an initial
/// state `S₀`. Every entry is a Double, so the MPFR copy (53 bits) and the
/// absolute values are exact; `integer` holds the rows the fixed-point
/// accumulator can take (`IntegerRow`), nil where one does not fit.
struct ValueRows: @unchecked Sendable {
    let mpfr: MPFRBuffer
    let abs: [Double]
    let integer: [IntegerRow?]
    let width: Int
    /// Every row fits the fixed-point accumulator.
    let allInteger: Bool

    init(mpfr: MPFRBuffer, abs: [Double], integer: [IntegerRow?], width: Int) {
        self.mpfr = mpfr; self.abs = abs; self.integer = integer; self.width = width
        allInteger = integer.allSatisfy { $0 != nil }
    }

    /// Rows of `xs` (row-major, `width` entries each).
    init(_ xs: ArraySlice<Double>, width: Int) {
        let m = MPFRBuffer(count: xs.count, precision: 53)
        m.setAll(xs)
        let rows = width == 0 ? 0 : xs.count / width, b = xs.startIndex
        self.init(mpfr: m, abs: xs.map { Swift.abs($0) },
                  integer: (0..<rows).map { IntegerRow(xs[b + $0 * width ..< b + ($0 + 1) * width], dotProductOperand: false) },
                  width: width)
    }

    /// Row `r` as `IntegerRow` usable in an exact `Int128` dot product (≤ 64 entries), or nil.
    func dotRow(_ r: Int) -> IntegerRow? { width <= 64 ? integer[r] : nil }
}

/// Per-worker temporaries of `Reference.encloseWeightedSums` (no allocation in its loop).
final class WeightedSumWorkspace: @unchecked Sendable {
    /// Precision of the weights (the working precision p).
    let precision: Int
    let num: MPFRBuffer, prod: MPFRBuffer, rad: MPFRBuffer, r64: MPFRBuffer, wide: MPFRBuffer
    let acc: UnsafeMutablePointer<UInt64>
    var rd: [Double], radius: [Double]

    init(terms: Int, width: Int, precision p: Int) {
        precision = p
        num = MPFRBuffer(count: width, precision: Swift.max(320, p + 64))
        prod = MPFRBuffer(count: 1, precision: Swift.max(320, p + 64))
        rad = MPFRBuffer(count: terms, precision: 64)
        r64 = MPFRBuffer(count: 2, precision: 64)
        wide = MPFRBuffer(count: 2, precision: 320)
        acc = .allocate(capacity: Swift.max(1, width * FixedPointAccumulator.limbs))
        rd = [Double](repeating: 0, count: terms)
        radius = [Double](repeating: 0, count: width)
    }
    deinit { acc.deallocate() }
}

extension Reference {
    /// Encloses `Σ_{t<m} w_t·x_{first+t, c}` for every column `c` of `values`,
    /// given enclosures `w_t ∈ [lo(t), hi(t)]` at the workspace's precision p
    /// (Proofs/T7, step 4), writing `[rlo[c], rhi[c]]`.
    ///
    /// Midpoint–radius: `w_t = lo_t + θ_t`, `0 ≤ θ_t ≤ r_t = (hi_t − lo_t)↑`, so
    /// the sum is `C_c + Σ_t θ_t x_tc` with centre `C_c = Σ_t lo_t x_tc` and
    /// `|Σ_t θ_t x_tc| ≤ R_c = Σ_t r_t|x_tc|`. The centre is the 256-bit
    /// fixed-point sum (p ≤ 128 and every row an `IntegerRow`: within `m·2^lsb`
    /// of `C`) or an MPFR sum of exact products at `p′ ≥ p + 64` bits (within
    /// `γ_m(2^−p′)·Σ_t|lo_t x_tc|`, added to `r_t`). `R_c` is bounded from above in
    /// Double: `r_t·2^−E` rounded up, and a Double sum `σ` of `m` non-negative
    /// products satisfies `R ≤ (σ + 2(m+1)·2^−1074)(1 + 2(m+1)·2^−53)` (Higham
    /// Lemma 3.1 with gradual underflow; `nextUp` covers each rounding of the
    /// bound). A NaN or infinite weight gives `[−∞, +∞]`.
    static func encloseWeightedSums(count m: Int, lo wLo: (Int) -> MPFRPointer, hi wHi: (Int) -> MPFRPointer,
                                    values: ValueRows, first: Int, into rlo: MPFRPointer, _ rhi: MPFRPointer,
                                    workspace ws: WeightedSumWorkspace, fault: EnclosureFault = .none) {
        let dv = values.width, p = ws.precision, num = ws.num, r64 = ws.r64
        if m == 0 {
            for col in 0..<dv { mc_set_zero(rlo + col, 1); mc_set_zero(rhi + col, 1) }
            return
        }
        var lsb: Int? = nil
        var truncated = false
        if p <= 128 && values.allInteger {
            lsb = accumulateFixedGrid(count: m, weight: wLo, rows: values.integer, first: first, width: dv,
                                      into: num, acc: ws.acc, wide: ws.wide, truncated: &truncated)
        }
        let np = num.precision
        // Higham's γ_m ≤ 2m·2^−p′ for the MPFR fallback sum, as a power of two ≥ it.
        let gammaExp = lsb == nil ? (Int.bitWidth - (2 * m).leadingZeroBitCount) - np : nil
        if lsb == nil {
            num.zero()
            for t in 0..<m {
                let w = wLo(t)
                if mc_zero_p(w) != 0 { continue }
                let x = values.mpfr.base + (first + t) * dv
                for col in 0..<dv {
                    mc_mul(ws.prod[0], w, x + col, MPFR_RNDN)  // exact: p + 53 ≤ p′ bits
                    mc_add(num[col], num[col], ws.prod[0], MPFR_RNDN)
                }
            }
        }
        // Per-term radius bound r_t = (hi_t − lo_t) [+ γ_m·|lo_t|], scaled by 2^−emax into Double.
        var emax = Int.min
        for t in 0..<m {
            let rt = ws.rad[t]
            mc_sub(rt, wHi(t), wLo(t), MPFR_RNDU)
            if let ge = gammaExp, mc_zero_p(wLo(t)) == 0 {
                mc_abs(r64[0], wLo(t), MPFR_RNDU); mc_mul_2si(r64[0], r64[0], ge, MPFR_RNDU)
                mc_add(rt, rt, r64[0], MPFR_RNDU)
            }
            if mc_zero_p(rt) == 0 {
                if mc_number_p(rt) == 0 { emax = Int.max; break }
                emax = Swift.max(emax, mc_get_exp(rt))
            }
        }
        if emax == Int.max {  // an infinite or NaN weight: nothing is enclosed
            for col in 0..<dv { mc_set_inf(rlo + col, -1); mc_set_inf(rhi + col, 1) }
            return
        }
        for col in 0..<dv { ws.radius[col] = 0 }
        if emax != Int.min {
            for t in 0..<m {
                if mc_zero_p(ws.rad[t]) != 0 { ws.rd[t] = 0; continue }
                mc_mul_2si(r64[0], ws.rad[t], -emax, MPFR_RNDU)  // exact
                ws.rd[t] = mc_get_d(r64[0], MPFR_RNDU)
            }
            values.abs.withUnsafeBufferPointer { va in
                ws.rd.withUnsafeBufferPointer { rd in
                    ws.radius.withUnsafeMutableBufferPointer { radius in
                        for t in 0..<m where rd[t] != 0 {
                            let rt = rd[t], x = (first + t) * dv
                            for col in 0..<dv { radius[col] += rt * va[x + col] }
                        }
                    }
                }
            }
        }
        let slack = Double(2 * (m + 1))
        for col in 0..<dv {
            let a = (ws.radius[col] + slack * 0x1p-1074).nextUp
            let bound = (a * (1 + slack * 0x1p-53).nextUp).nextUp
            mc_set_d(r64[0], bound, MPFR_RNDU)
            if emax != Int.min { mc_mul_2si(r64[0], r64[0], emax, MPFR_RNDU) } else { mc_set_zero(r64[0], 1) }
            if let lsb, lsb != Int.min, truncated && fault != .truncationAssumedExact {
                mpfr_set_ui_2exp(r64[1], UInt(m), lsb, MPFR_RNDU)
                mc_add(r64[0], r64[0], r64[1], MPFR_RNDU)
            }
            if fault == .radiusDropped { mc_set_zero(r64[0], 1) }
            mc_sub(rlo + col, num[col], r64[0], MPFR_RNDD)
            mc_add(rhi + col, num[col], r64[0], MPFR_RNDU)
        }
    }
}
