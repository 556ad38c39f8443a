import CMPFR
import Dispatch
import MambaPrecision
import MambaVariants

/// Certified final states: `final_state` and, for sum normalisation, `final_state_z`.
public struct CertifiedFinalState: Sendable {
    /// `S`, `[B, H, F, dv]`.
    public let s: CertifiedOutput
    /// `z`, `[B, H, F]` (sum normalisation only).
    public let z: CertifiedOutput?
}

extension Reference {
    /// The certified final state (docs/MATH.md §0 "State convention", Proofs/T7):
    ///
    /// `S_{a,c} = Σ_j Γ_{N−1,j}·φ_a(k̃_j)·v_jc + e^{L_{N−1}}·S₀_{a,c}`,
    /// `z_a = Σ_j Γ_{N−1,j}·φ_a(k̃_j) + e^{L_{N−1}}·z₀_a`.
    ///
    /// Each feature `a` of each sequence is one unit of Ziv's loop: the
    /// weights `g_j = Γ_{N−1,j}φ_a(k̃_j)` are enclosed by interval operations
    /// (factored: `e^{−L_j}·φ_a`, the sum plus `S₀` then multiplied by
    /// `e^{L_{N−1}}`; pairwise: `e^{L_{N−1} − L_j}·φ_a`, plus `e^{L_{N−1}}S₀`),
    /// `S_{a,·}` by `encloseWeightedSums` over the rows of `V`, `z_a` by sums
    /// rounded down and up; the rounding is decided as for outputs. nil for
    /// the exponential score (no finite state).
    public static func certifiedFinalState(_ p: CoreProblem, precision: Int = BigFloat.defaultPrecision,
                                           maxPrecision: Int = 4096, decimalDigits: Int? = nil) throws -> CertifiedFinalState? {
        if let m = p.validationError() { throw ReferenceError.invalidProblem(m) }
        precondition(precision >= 64 && maxPrecision >= precision, "precision must be >= 64 and <= maxPrecision")
        guard let f = p.featureDim else { return nil }
        let dv = p.valueDim, sum = p.spec.normalization == .sum
        var bs = CertifiedBuilder(count: p.sequences * f * dv, decimalDigits: decimalDigits)
        var bz = sum ? CertifiedBuilder(count: p.sequences * f, decimalDigits: decimalDigits) : nil
        let pairs = featurePairs(p.spec.score, dim: p.keyDim)
        var finalPrecision = precision, raised = 0
        for seq in 0..<p.sequences {
            let r = ZivLoop.run(units: Array(0..<f), precision: precision, maxPrecision: maxPrecision) { units, prec, last in
                let e = EnclosedSequence(problem: p, sequence: seq, precision: prec)
                let enc = enclosedFinalState(e, features: units, pairs: pairs)
                return units.indices.filter { u in
                    let a = units[u], first = (seq * f + a) * dv
                    var again = bs.recordUnit(first ..< first + dv, lo: { enc.sLo[$0 - first + u * dv] },
                                              hi: { enc.sHi[$0 - first + u * dv] }, precision: prec, last: last)
                    if bz != nil {
                        again = bz!.recordUnit(CollectionOfOne(seq * f + a), lo: { _ in enc.zLo[u] }, hi: { _ in enc.zHi[u] },
                                               precision: prec, last: last) || again
                    }
                    return again
                }.map { units[$0] }
            }
            finalPrecision = Swift.max(finalPrecision, r.finalPrecision); raised += r.raised
        }
        return CertifiedFinalState(s: bs.build(initialPrecision: precision, finalPrecision: finalPrecision, raised: raised),
                                   z: bz?.build(initialPrecision: precision, finalPrecision: finalPrecision, raised: raised))
    }

    /// `(a, b)` of each packed feature: `φ_f = x_a` (first order, `a = b`) or
    /// `c_ab·x_a·x_b` (squared, row-major upper triangle, docs/MATH.md §4).
    static func featurePairs(_ score: Score, dim d: Int) -> [(Int, Int)] {
        if score != .squared { return (0..<d).map { ($0, $0) } }
        return (0..<d).flatMap { a in (a..<d).map { (a, $0) } }
    }

    struct StateEnclosures: @unchecked Sendable {
        /// `S` rows and `z` of the enclosed features, in the order given.
        let sLo: MPFRBuffer, sHi: MPFRBuffer, zLo: MPFRBuffer, zHi: MPFRBuffer
    }

    /// Enclosures of the final-state rows `S_{a,·}` and `z_a` for `features`.
    static func enclosedFinalState(_ e: EnclosedSequence, features: [Int], pairs: [(Int, Int)]) -> StateEnclosures {
        let c = e.base
        let n = c.n, dv = c.dv, dk = c.dk, p = c.precision, dp = c.decayPrecision
        let m = features.count
        let out = StateEnclosures(sLo: MPFRBuffer(count: m * dv, precision: p), sHi: MPFRBuffer(count: m * dv, precision: p),
                                  zLo: MPFRBuffer(count: m, precision: p), zHi: MPFRBuffer(count: m, precision: p))
        let values = e.values
        let squared = c.spec.score == .squared
        // e^{L_{N−1}}, the factor of the initial state (and of the whole sum under the factored decay).
        let hasLast = e.fLo != nil && n > 0
        let workers = Swift.max(1, Swift.min(m, 2 * ProcessInfoLite.activeProcessorCount))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let gLo = MPFRBuffer(count: n, precision: p), gHi = MPFRBuffer(count: n, precision: p)
            let t = MPFRBuffer(count: 10, precision: p)
            let d = MPFRBuffer(count: 4, precision: dp)
            let numLo = MPFRBuffer(count: dv, precision: p), numHi = MPFRBuffer(count: dv, precision: p)
            let ws = WeightedSumWorkspace(terms: n, width: dv, precision: p)
            let last: (MPFRPointer, MPFRPointer)? = hasLast ? (e.fLo![n - 1], e.fHi![n - 1]) : nil
            var u = w
            while u < m {
                let (a, b) = pairs[features[u]]
                let zl = out.zLo[u], zh = out.zHi[u]
                mc_set_zero(zl, 1); mc_set_zero(zh, 1)
                for j in 0..<n {
                    // φ_a(k̃_j) ∈ [t0, t1]
                    let ka = c.kM[j * dk + a], kb = c.kM[j * dk + b]
                    if !squared {
                        mc_set(t[0], ka, MPFR_RNDD); mc_set(t[1], ka, MPFR_RNDU)
                    } else if a == b {
                        mc_sqr(t[0], ka, MPFR_RNDD); mc_sqr(t[1], ka, MPFR_RNDU)
                    } else {
                        mc_mul(t[2], ka, kb, MPFR_RNDD); mc_mul(t[3], ka, kb, MPFR_RNDU)
                        Interval.mul(t[0], t[1], t[2], t[3], e.sqrt2[0], e.sqrt2[1], tmp: t[4])
                    }
                    if let eLo = e.eLo, let eHi = e.eHi {
                        Interval.mul(gLo[j], gHi[j], t[0], t[1], eLo[j], eHi[j], tmp: t[4])
                    } else if let lLo = e.lLo, let lHi = e.lHi {
                        Interval.sub(d[0], d[1], lLo[n - 1], lHi[n - 1], lLo[j], lHi[j])
                        Interval.exp(d[2], d[3], d[0], d[1])
                        Interval.mul(gLo[j], gHi[j], t[0], t[1], d[2], d[3], tmp: t[4])
                    } else {
                        mc_set(gLo[j], t[0], MPFR_RNDD); mc_set(gHi[j], t[1], MPFR_RNDU)
                    }
                    mc_add(zl, zl, gLo[j], MPFR_RNDD); mc_add(zh, zh, gHi[j], MPFR_RNDU)
                }
                encloseWeightedSums(count: n, lo: { gLo[$0] }, hi: { gHi[$0] }, values: values, first: 0,
                                    into: numLo[0], numHi[0], workspace: ws)
                let ro = out.sLo.base + u * dv, rh = out.sHi.base + u * dv
                let fa = features[u]
                // Adds x·S₀ (x = 1 factored or without decay, e^{L_{N−1}} pairwise) to [lo, hi], then
                // multiplies by e^{L_{N−1}} (factored) into [rlo, rhi].
                func finish(_ lo: MPFRPointer, _ hi: MPFRPointer, state: MPFRPointer?, _ rlo: MPFRPointer, _ rhi: MPFRPointer) {
                    if let state {
                        if !e.factored, let last {
                            Interval.addProduct(lo, hi, last.0, last.1, state, state, t: t[5])
                        } else {
                            mc_add(lo, lo, state, MPFR_RNDD); mc_add(hi, hi, state, MPFR_RNDU)
                        }
                    }
                    if e.factored, let last {
                        Interval.mul(rlo, rhi, lo, hi, last.0, last.1, tmp: t[4])
                    } else {
                        mc_set(rlo, lo, MPFR_RNDD); mc_set(rhi, hi, MPFR_RNDU)
                    }
                }
                for col in 0..<dv {
                    finish(numLo[col], numHi[col], state: e.s0.map { $0.mpfr[fa * dv + col] }, ro + col, rh + col)
                }
                mc_set(t[8], zl, MPFR_RNDN); mc_set(t[9], zh, MPFR_RNDN)  // not t[5…7]: finish's scratch
                finish(t[8], t[9], state: e.z0.map { $0[fa] }, zl, zh)
                u += workers
            }
        }
        return out
    }
}
