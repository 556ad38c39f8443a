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
    /// `encloseWeightedSums` forgets the radius: the enclosure is its centre
    /// `Σ_t lo_t x_t` alone, as if the weights' widths had been dropped.
    case radiusDropped
    /// The fast double-double pass (`fastEnclosedRows`) drops its error
    /// bounds: each sum's enclosure is its computed value alone.
    case fastBoundDropped
    /// The double-double magnitude weights (`FastMagnitudeWeights`) forget the
    /// p-bit MPFR evaluation's own rounding errors (`θ` and `κ`, Proofs/T7, step 7).
    case fastMagnitudeMPFRErrorDropped
    /// The fixed-point sum is taken as exact although bits below its grid
    /// were lost (the `m·2^lsb` truncation bound dropped).
    case truncationAssumedExact
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
    /// `Σ_j w_ij v_jc` by `encloseWeightedSums` (midpoint–radius); the
    /// normaliser is summed rounding down and up. An initial state adds
    /// `c·e^{L_i}·φ(q_i)ᵀS₀` to the numerator (a second weighted sum, over the
    /// `F` rows of `S₀`, with enclosed weights `c·φ_a(q_i)`) and
    /// `c·e^{L_i}·φ(q_i)ᵀz₀` to the normaliser; under the factored decay both
    /// sums carry `e^{−L_j}` and the state term carries 1, the common `e^{L_i}`
    /// cancelling (`sum`) or multiplying the enclosure (`none`).
    static func enclosedRows(_ e: EnclosedSequence, rows: [Int], fault: EnclosureFault = .none) -> RowEnclosures {
        let c = e.base
        let n = c.n, dv = c.dv, p = c.precision, dp = c.decayPrecision
        let out = RowEnclosures(rows: n, dv: dv, precision: p)
        let sum = c.spec.normalization == .sum
        let f = c.featureDim ?? 0
        let values = e.values
        let workers = Swift.max(1, Swift.min(rows.count, 2 * ProcessInfoLite.activeProcessorCount))
        let statusPtr = UnsafeMutableSendable(out.status.baseAddress!)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let scratch = ReferenceScratch(precision: p)
            let xb = MPFRBuffer(count: 2, precision: Swift.max(p, 128))  // holds any exact Int128 dot product
            let t = MPFRBuffer(count: 8, precision: p)
            let d = MPFRBuffer(count: 6, precision: dp)
            let wLo = MPFRBuffer(count: n, precision: p), wHi = MPFRBuffer(count: n, precision: p)
            let den = MPFRBuffer(count: 2, precision: p)
            let numLo = MPFRBuffer(count: dv, precision: p), numHi = MPFRBuffer(count: dv, precision: p)
            let ws = WeightedSumWorkspace(terms: Swift.max(n, f), width: dv, precision: p)
            // Initial state: weights c·φ_a(q_i) [·e^{L_i} pairwise], the state term, φ's scratch.
            let sLo = MPFRBuffer(count: e.s0 == nil ? 0 : f, precision: p), sHi = MPFRBuffer(count: e.s0 == nil ? 0 : f, precision: p)
            let stLo = MPFRBuffer(count: dv, precision: p), stHi = MPFRBuffer(count: dv, precision: p)
            let xLo = xb[0], xHi = xb[1], yLo = t[0], yHi = t[1], fLo = t[2], fHi = t[3], tmp = t[4], tmp2 = t[5]
            var r = w
            while r < rows.count {
                let i = rows[r]
                r += workers
                mc_set_zero(den[0], 1); mc_set_zero(den[1], 1)
                for j in 0...i {
                    e.dot(xLo, xHi, i, j, scratch)
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
                encloseWeightedSums(count: i + 1, lo: { wLo[$0] }, hi: { wHi[$0] }, values: values, first: 0,
                                    into: numLo[0], numHi[0], workspace: ws, fault: fault)
                if let s0 = e.s0 {
                    // Weights c·φ_a(q_i), times e^{L_i} under the pairwise decay (the factored one divides it out).
                    Interval.features(c.spec.score, dim: c.dk, x: c.qM[i * c.dk], lo: sLo[0], hi: sHi[0],
                                      sqrt2: e.sqrt2[0], e.sqrt2[1], t: t[5])
                    for a in 0..<f {
                        mc_set(t[0], sLo[a], MPFR_RNDN); mc_set(t[1], sHi[a], MPFR_RNDN)
                        Interval.mul(sLo[a], sHi[a], t[0], t[1], e.queryConstant[0], e.queryConstant[1], tmp: tmp)
                        if !e.factored, let gLo = e.fLo, let gHi = e.fHi {
                            mc_set(t[0], sLo[a], MPFR_RNDN); mc_set(t[1], sHi[a], MPFR_RNDN)
                            Interval.mul(sLo[a], sHi[a], t[0], t[1], gLo[i], gHi[i], tmp: tmp)
                        }
                        if sum, let z0 = e.z0 { Interval.addProduct(den[0], den[1], sLo[a], sHi[a], z0[a], z0[a], t: t[5]) }
                    }
                    encloseWeightedSums(count: f, lo: { sLo[$0] }, hi: { sHi[$0] }, values: s0, first: 0,
                                        into: stLo[0], stHi[0], workspace: ws, fault: fault)
                    for col in 0..<dv {
                        mc_add(numLo[col], numLo[col], stLo[col], MPFR_RNDD); mc_add(numHi[col], numHi[col], stHi[col], MPFR_RNDU)
                    }
                }
                let ro = out.lo.base + i * dv, rh = out.hi.base + i * dv
                for col in 0..<dv {
                    if sum {
                        if mc_zero_p(den[0]) != 0 && mc_zero_p(den[1]) != 0 {
                            statusPtr.pointer[i] = RowEnclosures.RowStatus.zeroDenominator.rawValue
                        } else if !Interval.excludesZero(den[0], den[1]) {
                            statusPtr.pointer[i] = RowEnclosures.RowStatus.denominatorContainsZero.rawValue
                        } else {
                            Interval.div(ro + col, rh + col, numLo[col], numHi[col], den[0], den[1], tmp: tmp, tmp2: tmp2)
                            continue
                        }
                        mc_set_inf(ro + col, -1); mc_set_inf(rh + col, 1)
                    } else if e.factored, let gLo = e.fLo, let gHi = e.fHi {
                        Interval.mul(ro + col, rh + col, numLo[col], numHi[col], gLo[i], gHi[i], tmp: tmp)
                    } else {
                        mc_set(ro + col, numLo[col], MPFR_RNDD); mc_set(rh + col, numHi[col], MPFR_RNDU)
                    }
                }
            }
        }
        return out
    }
}
