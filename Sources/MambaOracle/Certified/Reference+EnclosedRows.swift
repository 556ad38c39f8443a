import CMPFR
import Dispatch
import MambaPrecision
import MambaVariants

/// A deliberately wrong interval operation, for tests that must catch it
/// (Proofs/T7, "planted bug"). Never set outside tests.
enum EnclosureFault: Sendable {
    case none
    /// The weight interval's upper end is rounded down to its lower end, as
    /// if an interval product had used the wrong rounding direction.
    case upperEndRoundedDown
}

/// Enclosures `[lo, hi]` of output rows of one sequence, and each row's
/// normaliser status (`RowStatus`).
final class RowEnclosures: @unchecked Sendable {
    enum RowStatus: UInt8 {
        case enclosed = 0
        /// The normaliser's enclosure contains 0 but is not the point 0: more precision may separate it.
        case denominatorContainsZero = 1
        /// The normaliser is exactly 0 (every weight is exactly 0): `y` is undefined at any precision.
        case zeroDenominator = 2
    }
    let lo: MPFRBuffer, hi: MPFRBuffer
    let status: UnsafeMutableBufferPointer<UInt8>
    init(rows n: Int, dv: Int, precision: Int) {
        lo = MPFRBuffer(count: n * dv, precision: precision)
        hi = MPFRBuffer(count: n * dv, precision: precision)
        status = .allocate(capacity: Swift.max(n, 1))
        status.initialize(repeating: 0)
    }
    deinit { status.deallocate() }
    func rowStatus(_ i: Int) -> RowStatus { RowStatus(rawValue: status[i])! }
}

extension Reference {
    /// Rigorous enclosures of the rows `rows` of `y = num/den` (or `num`) of
    /// docs/MATH.md §1, quadratic form, at the sequence's precision p.
    ///
    /// Proofs/T7: every weight `w_ij = f(s·q_i·k_j)·Γ_ij` is enclosed by
    /// interval operations with directed rounding (`Interval`); the numerator
    /// `Σ_j w_ij v_jc` is taken in midpoint–radius form, centre `Σ_j wLo_j v_jc`
    /// (fixed-point, exact but for a truncation bound, when p ≤ 128 and V's
    /// rows are exact integers; otherwise MPFR at p + 64 bits with Higham's
    /// `γ_m` bound) and radius `Σ_j (wHi_j − wLo_j)|v_jc|` bounded from above
    /// in scaled Double arithmetic; the normaliser is summed rounding down and up.
    static func enclosedRows(_ e: EnclosedSequence, rows: [Int], fault: EnclosureFault = .none) -> RowEnclosures {
        let c = e.base
        let n = c.n, dv = c.dv, p = c.precision, dp = c.decayPrecision
        let out = RowEnclosures(rows: n, dv: dv, precision: p)
        let fixedPoint = p <= 128 && c.vRows.allSatisfy { $0 != nil }
        let sum = c.spec.normalization == .sum
        let workers = Swift.max(1, Swift.min(rows.count, 2 * ProcessInfoLite.activeProcessorCount))
        let statusPtr = UnsafeMutableSendable(out.status.baseAddress!)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let scratch = ReferenceScratch(precision: p)
            let xw = Swift.max(p, 128)  // holds any exact Int128 dot product
            let xb = MPFRBuffer(count: 2, precision: xw)
            let t = MPFRBuffer(count: 8, precision: p)
            let d = MPFRBuffer(count: 6, precision: dp)
            let wLo = MPFRBuffer(count: n, precision: p), wHi = MPFRBuffer(count: n, precision: p)
            let rad = MPFRBuffer(count: n, precision: 64)
            let den = MPFRBuffer(count: 2, precision: p)
            let num = MPFRBuffer(count: dv, precision: fixedPoint ? 320 : p + 64)
            let prod = MPFRBuffer(count: 1, precision: p + 64)
            let r64 = MPFRBuffer(count: 2, precision: 64)
            let numB = MPFRBuffer(count: 2, precision: p)
            let wide = MPFRBuffer(count: 2, precision: 320)
            let acc = UnsafeMutablePointer<UInt64>.allocate(capacity: dv * FixedPointAccumulator.limbs)
            defer { acc.deallocate() }
            var rd = [Double](repeating: 0, count: n)
            var radius = [Double](repeating: 0, count: dv)
            let xLo = xb[0], xHi = xb[1], yLo = t[0], yHi = t[1], fLo = t[2], fHi = t[3], tmp = t[4], tmp2 = t[5]
            var r = w
            while r < rows.count {
                let i = rows[r]
                r += workers
                mc_set_zero(den[0], 1); mc_set_zero(den[1], 1)
                for j in 0...i {
                    // x = q_i·k_j: exact (integer rows) or enclosed (directed fma chains at 2p + 128 bits).
                    if let a = c.qRows[i], let b = c.kRows[j] {
                        let (m, ex) = IntegerRow.dot(a, b)
                        mpfrSet(xLo, int128: m, exponent: ex, tmp: scratch.wide, tmpLo: scratch.lo)
                        mc_set(xHi, xLo, MPFR_RNDN)
                    } else {
                        for (dst, mode) in [(xLo, MPFR_RNDD), (xHi, MPFR_RNDU)] {
                            mc_set_zero(scratch.acc, 1)
                            for k in 0..<c.dk { mc_fma(scratch.acc, c.qM[i * c.dk + k], c.kM[j * c.dk + k], scratch.acc, mode) }
                            mc_set(dst, scratch.acc, mode)
                        }
                    }
                    // s·x
                    Interval.mul(yLo, yHi, e.sLo[0], e.sHi[0], xLo, xHi, tmp: tmp)
                    let wl = wLo[j], wh = wHi[j]
                    if c.spec.score == .exponential {
                        // e^{s·x + L_i − L_j}, the argument enclosed at the decay precision.
                        if let lLo = e.lLo, let lHi = e.lHi {
                            mc_add(d[0], yLo, lLo[i], MPFR_RNDD); mc_sub(d[0], d[0], lHi[j], MPFR_RNDD)
                            mc_add(d[1], yHi, lHi[i], MPFR_RNDU); mc_sub(d[1], d[1], lLo[j], MPFR_RNDU)
                            Interval.exp(wl, wh, d[0], d[1])
                        } else {
                            Interval.exp(wl, wh, yLo, yHi)
                        }
                    } else {
                        c.spec.score.enclosePolynomial(fLo, fHi, yLo, yHi, tmp: tmp)
                        if let eLo = e.eLo, let eHi = e.eHi {
                            Interval.mul(wl, wh, fLo, fHi, eLo[j], eHi[j], tmp: tmp)
                        } else if let lLo = e.lLo, let lHi = e.lHi {
                            // Pairwise decay (huge prefix sums): Γ_ij = e^{L_i − L_j} enclosed per pair.
                            Interval.sub(d[0], d[1], lLo[i], lHi[i], lLo[j], lHi[j])
                            Interval.exp(d[2], d[3], d[0], d[1])
                            Interval.mul(wl, wh, fLo, fHi, d[2], d[3], tmp: tmp)
                        } else {
                            mc_set(wl, fLo, MPFR_RNDD); mc_set(wh, fHi, MPFR_RNDU)
                        }
                    }
                    if fault == .upperEndRoundedDown { mc_set(wh, wl, MPFR_RNDN) }
                    if sum { mc_add(den[0], den[0], wl, MPFR_RNDD); mc_add(den[1], den[1], wh, MPFR_RNDU) }
                }
                let m = i + 1
                // Centre Σ_j wLo_j v_jc.
                var lsb: Int? = nil
                if fixedPoint { lsb = accumulateFixedGrid(c, row: i, g: wLo, into: num, acc: acc, wide: wide) }
                // Higham's γ_m ≤ 2m·2^−(p+64) for the MPFR fallback sum, as a power of two ≥ it.
                let gammaExp = lsb == nil ? (Int.bitWidth - (2 * m).leadingZeroBitCount) - (p + 64) : nil
                if lsb == nil {
                    num.zero()
                    for j in 0...i {
                        let vj = c.vM.base + j * dv
                        for col in 0..<dv {
                            mc_mul(prod[0], wLo[j], vj + col, MPFR_RNDN)  // exact: p + 53 bits
                            mc_add(num[col], num[col], prod[0], MPFR_RNDN)
                        }
                    }
                }
                // Per-term radius bound t_j = (wHi_j − wLo_j) [+ γ_m·|wLo_j|], scaled by 2^−emax into Double.
                var emax = Int.min
                for j in 0...i {
                    mc_sub(rad[j], wHi[j], wLo[j], MPFR_RNDU)
                    if let ge = gammaExp, mc_zero_p(wLo[j]) == 0 {
                        mc_abs(r64[0], wLo[j], MPFR_RNDU); mc_mul_2si(r64[0], r64[0], ge, MPFR_RNDU)
                        mc_add(rad[j], rad[j], r64[0], MPFR_RNDU)
                    }
                    if mc_zero_p(rad[j]) == 0 {
                        if mc_number_p(rad[j]) == 0 { emax = Int.max; break }
                        emax = Swift.max(emax, mc_get_exp(rad[j]))
                    }
                }
                let ro = out.lo.base + i * dv, rh = out.hi.base + i * dv
                if emax == Int.max {  // an infinite or NaN weight: nothing is enclosed
                    for col in 0..<dv { mc_set_inf(ro + col, -1); mc_set_inf(rh + col, 1) }
                    continue
                }
                for col in 0..<dv { radius[col] = 0 }
                if emax != Int.min {
                    for j in 0...i {
                        if mc_zero_p(rad[j]) != 0 { rd[j] = 0; continue }
                        mc_mul_2si(r64[0], rad[j], -emax, MPFR_RNDU)  // exact
                        rd[j] = mc_get_d(r64[0], MPFR_RNDU)
                    }
                    c.vAbs.withUnsafeBufferPointer { va in
                        for j in 0...i where rd[j] != 0 {
                            let rj = rd[j], vj = j * dv
                            for col in 0..<dv { radius[col] += rj * va[vj + col] }
                        }
                    }
                }
                for col in 0..<dv {
                    // Double sum of m non-negative products: exact ≤ (fl + 2(m+1)·2^−1074)(1 + 2(m+1)·2^−53)
                    // (Higham Lemma 3.1 with gradual underflow; nextUp covers each rounding here).
                    let slack = Double(2 * (m + 1))
                    let a = (radius[col] + slack * 0x1p-1074).nextUp
                    let bound = (a * (1 + slack * 0x1p-53).nextUp).nextUp
                    mc_set_d(r64[0], bound, MPFR_RNDU)
                    if emax != Int.min { mc_mul_2si(r64[0], r64[0], emax, MPFR_RNDU) } else { mc_set_zero(r64[0], 1) }
                    if let lsb, lsb != Int.min {
                        mpfr_set_ui_2exp(r64[1], UInt(m), lsb, MPFR_RNDU)
                        mc_add(r64[0], r64[0], r64[1], MPFR_RNDU)
                    }
                    mc_sub(numB[0], num[col], r64[0], MPFR_RNDD)
                    mc_add(numB[1], num[col], r64[0], MPFR_RNDU)
                    if sum {
                        if mc_zero_p(den[0]) != 0 && mc_zero_p(den[1]) != 0 {
                            statusPtr.pointer[i] = RowEnclosures.RowStatus.zeroDenominator.rawValue
                        } else if mc_sgn(den[0]) <= 0 && mc_sgn(den[1]) >= 0 {
                            statusPtr.pointer[i] = RowEnclosures.RowStatus.denominatorContainsZero.rawValue
                        } else {
                            Interval.div(ro + col, rh + col, numB[0], numB[1], den[0], den[1], tmp: tmp, tmp2: tmp2)
                            continue
                        }
                        mc_set_inf(ro + col, -1); mc_set_inf(rh + col, 1)
                    } else if let fLo = e.fLo, let fHi = e.fHi {
                        Interval.mul(ro + col, rh + col, numB[0], numB[1], fLo[i], fHi[i], tmp: tmp)
                    } else {
                        mc_set(ro + col, numB[0], MPFR_RNDD); mc_set(rh + col, numB[1], MPFR_RNDU)
                    }
                }
            }
        }
        return out
    }
}
