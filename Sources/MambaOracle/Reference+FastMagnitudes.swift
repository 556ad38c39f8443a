import CMPFR
import MambaPrecision
import MambaVariants

/// Double-double weights for the p-bit pass's magnitudes (`Reference.quadraticMagnitudes`;
/// Proofs/T7, step 7): the Float64 weights `RN(w_ij)` and normaliser `RN(D_i)` that
/// the p-bit MPFR evaluation would produce, decided from a double-double value
/// and a rigorous bound on its distance to the MPFR value, so that the magnitude
/// arrays come out bit for bit as from the MPFR weights. A row with an element it
/// cannot decide (or out of range) is left to the MPFR evaluation.
///
/// The MPFR value of a weight is `y = RN_p(RN_p(f(RN_p(ŝ·RN_p(x)))·Ê_j)·F̂_i)` (`ŝ`,
/// `Ê_j = eNegL[j]`, `F̂_i = eL[i]` the MPFR numbers the p-bit pass uses; `x` the
/// exact dot product): within `θ = 8·2^−p` relative of `T = f(ŝx)Ê_jF̂_i` (at most
/// seven roundings to p bits). The double-double `Ŵ` is within `ε_W|Ŵ|` of `T`
/// (`DD.mul`'s `9u²` per product, `ŝ`, `Ê_j`, `F̂_i` approximated to `ρ ≤ 2^−100`).
/// `RN(y) = Ŵh` when `Ŵl ± (ε_W + θ)(1 + 2^−30)|Ŵh|` stays strictly inside
/// `(−(Ŵh − Ŵh⁻)/2, (Ŵh⁺ − Ŵh)/2)` (Double comparisons against those powers of two
/// are exact in direction: rounding is monotone).
struct FastMagnitudeWeights: @unchecked Sendable {
    let c: ReferenceSequence
    let qRows: [IntegerRow], kRows: [IntegerRow]
    let sh: Double, sl: Double
    /// `Ê_j`, `F̂_i` as normalised pairs (empty without decay).
    let g: [(Double, Double)], f: [(Double, Double)]
    let eL: MPFRBuffer?
    /// Relative bounds: `ε_G` of `f(ŝx)Ê_j` (the normaliser's terms), `ε_W` of the
    /// weight, `θ` of the MPFR weight, `2^−p`.
    let epsG: Double, relW: Double, unitP: Double
    let squared: Bool, sum: Bool, hasDecay: Bool

    init?(_ c: ReferenceSequence, eL: MPFRBuffer?, eNegL: MPFRBuffer?, fault: EnclosureFault = .none) {
        let n = c.n, p = c.precision
        guard c.spec.score != .exponential, c.s0 == nil, n > 0, n <= 1 << 20, p >= 64 else { return nil }
        guard !(c.pairwiseDecay && c.prefix != nil), (c.prefix != nil) == (eNegL != nil), (eL != nil) == (eNegL != nil)
        else { return nil }
        guard c.qRows.allSatisfy({ $0 != nil }), c.kRows.allSatisfy({ $0 != nil }) else { return nil }
        self.c = c
        qRows = c.qRows.map { $0! }; kRows = c.kRows.map { $0! }
        let tb = MPFRBuffer(count: 2, precision: Swift.max(p, c.decayPrecision) + 128)
        guard let (h, l, rhoS) = DD.approximate(c.scale[0], c.scale[0], tmp: tb[0], tmp2: tb[1]), rhoS <= 0x1p-100
        else { return nil }
        sh = h; sl = l
        var rhoG = 0.0, rhoF = 0.0
        var gg: [(Double, Double)] = [], ff: [(Double, Double)] = []
        if let eL, let eNegL {
            gg.reserveCapacity(n); ff.reserveCapacity(n)
            for t in 0..<n {
                guard let (a, b, r) = DD.approximate(eNegL[t], eNegL[t], tmp: tb[0], tmp2: tb[1]),
                      DD.inRange(a, 0x1p-600, 0x1p600), r <= 0x1p-100,
                      let (a2, b2, r2) = DD.approximate(eL[t], eL[t], tmp: tb[0], tmp2: tb[1]),
                      DD.inRange(a2, 0x1p-600, 0x1p600), r2 <= 0x1p-100 else { return nil }
                gg.append((a, b)); ff.append((a2, b2))
                rhoG = Swift.max(rhoG, r); rhoF = Swift.max(rhoF, r2)
            }
        }
        g = gg; f = ff
        self.eL = eL
        let uu = DD.u * DD.u
        // As ε_w of the fast pass (Proofs/T7, step 6 (c)), with one more factor for F̂_i.
        epsG = ((2 * rhoS + rhoG + 40 * uu) * (1 + 0x1p-40)).nextUp
        let epsW = ((2 * rhoS + rhoG + rhoF + 40 * uu) * (1 + 0x1p-40)).nextUp
        // The planted fault `fastMagnitudeMPFRErrorDropped` forgets the MPFR evaluation's own error (θ, and κ below).
        let drop = fault == .fastMagnitudeMPFRErrorDropped
        unitP = drop ? 0 : Double(sign: .plus, exponent: -p, significand: 1)
        relW = ((epsW + 8 * unitP) * (1 + 0x1p-30)).nextUp
        squared = c.spec.score == .squared
        sum = c.spec.normalization == .sum
        hasDecay = eL != nil
    }

    /// `RN(y)` for every `y` with `|y − (h + l)| ≤ rel·|h|`, or nil when that interval
    /// reaches a rounding boundary (or `h` is 0).
    @inline(__always)
    func decided(_ h: Double, _ l: Double) -> Double? {
        let tau = (relW * h.magnitude).nextUp
        let up = (h.nextUp - h) * 0.5, down = (h - h.nextDown) * 0.5
        guard h != 0, l + tau < up, l - tau > -down else { return nil }
        return h
    }

    /// Writes `RN(w_ij)` as the p-bit pass would (`wRow[j]`, `j ≤ i`) and returns
    /// `RN(D_i)` (sum normalisation; 0 otherwise), or nil when an element is not
    /// decided. `t`: three MPFR temporaries of at least `p + 64` bits.
    func row(_ i: Int, into wRow: UnsafeMutablePointer<Double>, t: MPFRBuffer) -> Double? {
        let u = DD.u, uu = u * u
        let qi = qRows[i]
        let fi = hasDecay ? f[i] : (1, 0)
        var dS = 0.0, dC = 0.0, wSum = 0.0
        for j in 0...i {
            let kj = kRows[j]
            let (mh, ml) = DD.dot(qi, kj)
            if mh == 0 && ml == 0 { wRow[j] = 0; continue }  // exactly 0 in both evaluations
            guard let x = DD.exact(mh, ml, qi.exponent + kj.exponent), DD.inRange(x.0) else { return nil }
            var w = DD.mul((sh, sl), x)
            guard DD.inRange(w.0) else { return nil }
            if squared { w = DD.mul(w, w); guard DD.inRange(w.0) else { return nil } }
            if hasDecay { w = DD.mul(w, g[j]) }
            guard DD.inRange(w.0, 0x1p-700, 0x1p700) else { return nil }
            if sum {
                // The normaliser's terms f(ŝx)Ê_j, summed as in the fast pass (Proofs/T7, step 6 (d), V = 1).
                wSum += w.0.magnitude
                let (s0, e0) = DD.twoSum(dS, w.0)
                dS = s0; dC = (dC + e0) + w.1
            }
            let wf = hasDecay ? DD.mul(w, fi) : w
            guard DD.inRange(wf.0), let r = decided(wf.0, wf.1) else { return nil }
            wRow[j] = r
        }
        guard sum else { return 0 }
        if wSum == 0 { return 0 }  // every weight exactly 0: so is the p-bit sum, +0
        // D_i's MPFR value RN_p(den_p·F̂_i), den_p the p-bit sum of the p-bit terms
        // g_j = G_j(1 + θ_j) (|θ_j| ≤ 6 roundings): within (m + 8)·2^−p·F̂_i·Σ|G_j| of
        // F̂_i·ΣG_j (Higham's γ_{m−1} for the sum, one rounding for the product).
        let m = Double(i + 1)
        let wBar = (wSum * (1 + 2 * m * u)).nextUp
        let rel = epsG * (1 + u) + (8 * m * m + 8 * m) * uu
        let b = ((rel * wBar) * (1 + 0x1p-40) + (m + 8) * 0x1p-1074).nextUp
        let k = ((((m + 8) * unitP) * wBar) * (1 + 0x1p-20)).nextUp
        let r = (b + k).nextUp
        let lo = t[0], hi = t[1], tmp = t[2]
        mc_set_d(lo, dS, MPFR_RNDN); mc_set_d(tmp, dC, MPFR_RNDN)
        mc_add(hi, lo, tmp, MPFR_RNDU); mc_add(lo, lo, tmp, MPFR_RNDD)
        mc_set_d(tmp, r, MPFR_RNDN)
        mc_sub(lo, lo, tmp, MPFR_RNDD); mc_add(hi, hi, tmp, MPFR_RNDU)
        if let eL { mc_mul(lo, lo, eL[i], MPFR_RNDD); mc_mul(hi, hi, eL[i], MPFR_RNDU) }  // F̂_i > 0
        let a = mc_get_d(lo, MPFR_RNDN), z = mc_get_d(hi, MPFR_RNDN)
        guard a.bitPattern == z.bitPattern else { return nil }
        return a
    }

    /// The p-bit pass's Float64 weights `RN(y_ij)` and normaliser `RN(D_i)` of row `i`
    /// (polynomial scores, factored or no decay), formed by the MPFR operations of
    /// `Reference.quadraticRows`; the tests compare `row` against it.
    static func mpfrRow(_ c: ReferenceSequence, row i: Int, eL: MPFRBuffer?, eNegL: MPFRBuffer?) -> ([Double], Double) {
        let t = MPFRBuffer(count: 5, precision: c.precision)
        let x = t[0], g = t[1], wgt = t[2], den = t[3], tmp = t[4]
        let scratch = ReferenceScratch(precision: c.precision)
        mc_set_zero(den, 1)
        var w = [Double](repeating: 0, count: i + 1)
        for j in 0...i {
            c.dot(x, i, j, scratch)
            c.score(g, x: x)
            if let eL, let eNegL {
                mc_mul(g, g, eNegL[j], MPFR_RNDN); mc_mul(wgt, g, eL[i], MPFR_RNDN)
                w[j] = mc_get_d(wgt, MPFR_RNDN)
            } else { w[j] = mc_get_d(g, MPFR_RNDN) }
            mc_add(den, den, g, MPFR_RNDN)
        }
        if let eL { mc_mul(tmp, den, eL[i], MPFR_RNDN) } else { mc_set(tmp, den, MPFR_RNDN) }
        return (w, mc_get_d(tmp, MPFR_RNDN))
    }
}
