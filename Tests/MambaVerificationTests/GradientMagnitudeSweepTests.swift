import Testing
@testable import MambaVerification
import MambaVariants
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `GradientComparison.magnitudes` as it was before the banded parallel sweep
/// (one sweep over the rows, issue #12): kept to check that the sweep is bit-identical.
enum LegacyGradientMagnitudes {
    static func magnitudes(_ problem: GradientProblem,
                                  decay conditioning: DecayConditioning = .segment) -> GradientMagnitudes {
        let p = problem.core, n = p.length, dk = p.keyDim, dv = p.valueDim, s = p.scale
        let spec = p.spec, isSum = spec.normalization == .sum
        let f = p.featureDim ?? 0
        let c = spec.score.traits.featureConstant(s)
        /// Storage and accumulation accumulators of one tensor.
        struct Acc {
            var s: [Double], a: [Double]
            init(_ n: Int) { s = [Double](repeating: 0, count: n); a = s }
            mutating func add(_ i: Int, _ storage: Double, _ accumulation: Double) { s[i] += storage; a[i] += accumulation }
            func parts() -> GradientMagnitudes.Parts {
                GradientMagnitudes.Parts(storage: s.map { $0.isNaN ? .infinity : $0 },
                                         accumulation: a.map { $0.isNaN ? .infinity : $0 })
            }
        }
        var mq = Acc(p.sequences * n * dk), mk = mq
        var mv = Acc(p.sequences * n * dv)
        var mL: Acc? = spec.hasDecay ? Acc(p.sequences * n) : nil
        var mA = mL
        let hasState = p.initialState != nil && f > 0
        var mS: Acc? = hasState ? Acc(p.sequences * f * dv) : nil
        var mZ: Acc? = hasState && isSum ? Acc(p.sequences * f) : nil
        let sqrt2 = 2.0.squareRoot()
        let phiScore = spec.score   // applied to q after ReLU: ReLU again changes nothing
        for seq in 0..<p.sequences {
            let L = p.prefixSums(sequence: seq)
            let relu = spec.score.traits.reluOnInputs
            let q = (0..<(n * dk)).map { e in relu ? Swift.max(p.q[seq * n * dk + e], 0) : p.q[seq * n * dk + e] }
            let k = (0..<(n * dk)).map { e in relu ? Swift.max(p.k[seq * n * dk + e], 0) : p.k[seq * n * dk + e] }
            let v = Array(p.v[(seq * n * dv)..<((seq + 1) * n * dv)])
            let dO = Array(problem.dO[(seq * n * dv)..<((seq + 1) * n * dv)])
            let s0 = hasState ? Array(p.initialState!.s[(seq * f * dv)..<((seq + 1) * f * dv)]) : []
            let z0 = hasState && isSum ? Array(p.initialState!.z![(seq * f)..<((seq + 1) * f)]) : []
            var colS = [Double](repeating: 0, count: n), colA = colS, rowS = colS, rowA = colS
            // Per pair j of the current row.
            var w = [Double](repeating: 0, count: n), dw = w, fp = w, df = w, gs = w, gb = w
            // Per feature a of the current row's state term.
            var sig = [Double](repeating: 0, count: f), g0 = sig, g0b = sig, hS = sig, hA = sig
            for i in 0..<n {
                let li = L?[i] ?? 0
                for j in 0...i {
                    var x = 0.0, aa = 0.0
                    for d in 0..<dk { let t = q[i * dk + d] * k[j * dk + d]; x += t; aa += Swift.abs(t) }
                    x *= s; aa *= s
                    let lam = L.map { l in
                        conditioning == .segment ? Swift.abs(l[i] - l[j]) : Swift.abs(l[i]) + Swift.abs(l[j])
                    } ?? 0
                    let gam = L.map { exp($0[i] - $0[j]) } ?? 1
                    var wij: Double, fpij: Double, wt: Double, ft: Double
                    switch spec.score {
                    case .linear, .reluLinear:
                        wij = x * gam; fpij = gam; wt = aa * gam; ft = gam
                    case .squared:
                        wij = x * x * gam; fpij = 2 * Swift.abs(x) * gam; wt = aa * aa * gam; ft = 2 * aa * gam
                    case .exponential:
                        wij = L.map { exp(x + $0[i] - $0[j]) } ?? exp(x)
                        fpij = wij; wt = wij * (1 + aa); ft = wt
                    }
                    let aw = Swift.abs(wij)
                    w[j] = wij
                    dw[j] = Swift.max(0, wt - aw) + aw * lam
                    fp[j] = fpij
                    df[j] = Swift.max(0, ft - fpij) + fpij * lam
                    var g = 0.0, gbar = 0.0
                    for col in 0..<dv { let t = dO[i * dv + col] * v[j * dv + col]; g += t; gbar += Swift.abs(t) }
                    gs[j] = g; gb[j] = gbar
                }
                let stateScale = c * (L.map { exp($0[i]) } ?? 1)
                if hasState {
                    let phi = FeatureMap.apply(phiScore, (0..<dk).map { q[i * dk + $0] })
                    for a in 0..<f {
                        sig[a] = stateScale * phi[a]
                        var t = 0.0, tb = 0.0
                        for col in 0..<dv { let x = s0[a * dv + col] * dO[i * dv + col]; t += x; tb += Swift.abs(x) }
                        g0[a] = t; g0b[a] = tb
                    }
                }
                // Normaliser, δ and their conditions (un-normalised: D = 1, δ = 0).
                var inv = 1.0, cond = 0.0, condA = 0.0, delta = 0.0, deltaBar = 0.0, deltaA = 0.0
                if isSum {
                    var den = 0.0, denBar = 0.0, denA = 0.0
                    var num = [Double](repeating: 0, count: dv)
                    for j in 0...i {
                        den += w[j]; denBar += Swift.abs(w[j]); denA += dw[j]
                        for col in 0..<dv { num[col] += w[j] * v[j * dv + col] }
                    }
                    for a in 0..<(hasState ? f : 0) {
                        den += sig[a] * z0[a]
                        denBar += Swift.abs(sig[a] * z0[a])
                        denA += Swift.abs(sig[a] * z0[a]) * Swift.abs(li)
                        for col in 0..<dv { num[col] += sig[a] * s0[a * dv + col] }
                    }
                    if den == 0 { continue }  // undefined row: contributes nothing
                    inv = 1 / Swift.abs(den)
                    cond = denBar * inv
                    condA = denA * inv
                    var od = 0.0
                    for col in 0..<dv { let t = num[col] / den * dO[i * dv + col]; delta += t; od += Swift.abs(t) }
                    var tb = 0.0, ta = 0.0
                    for j in 0...i {
                        let e = Swift.abs(gs[j] - delta)
                        tb += Swift.abs(w[j]) * (gb[j] + e); ta += dw[j] * e
                    }
                    for a in 0..<(hasState ? f : 0) {
                        let e = Swift.abs(g0[a] - delta * z0[a])
                        tb += Swift.abs(sig[a]) * (g0b[a] + e); ta += Swift.abs(sig[a]) * Swift.abs(li) * e
                    }
                    deltaBar = tb * inv + od
                    deltaA = ta * inv
                }
                // Row i's pairs.
                var rS = 0.0, rA = 0.0
                for j in 0...i {
                    let e = Swift.abs(gs[j] - delta), aw = Swift.abs(w[j])
                    let dW = e * inv
                    let m = (gb[j] + deltaBar + e * cond) * inv
                    let mAcc = (deltaA + e * condA) * inv
                    let ts = s * fp[j] * m, ta = s * (df[j] * dW + fp[j] * mAcc)
                    for d in 0..<dk {
                        let kd = Swift.abs(k[j * dk + d]), qd = Swift.abs(q[i * dk + d])
                        mq.add((seq * n + i) * dk + d, ts * kd, ta * kd)
                        mk.add((seq * n + j) * dk + d, ts * qd, ta * qd)
                    }
                    let ys = aw * (1 + cond) * inv, ya = (dw[j] + aw * condA) * inv
                    for col in 0..<dv {
                        let o = Swift.abs(dO[i * dv + col])
                        mv.add((seq * n + j) * dv + col, ys * o, ya * o)
                    }
                    colS[j] += aw * m
                    colA[j] += dw[j] * dW + aw * mAcc
                    rS += aw * gb[j]; rA += dw[j] * Swift.abs(gs[j])
                }
                if hasState {
                    // The state's share of dq (through |J_φ|ᵀ), dS₀, dz₀ and the row part of dL.
                    let ss = Swift.abs(stateScale)
                    for a in 0..<f {
                        let e = Swift.abs(g0[a] - delta * (isSum ? z0[a] : 0))
                        let za = isSum ? Swift.abs(z0[a]) : 0
                        hS[a] = ss * (g0b[a] + deltaBar * za + e * cond) * inv
                        hA[a] = ss * (Swift.abs(li) * e + deltaA * za + e * condA) * inv
                        let sa = Swift.abs(sig[a]), saA = sa * Swift.abs(li)
                        rS += sa * g0b[a]; rA += saA * Swift.abs(g0[a])
                        let ys = sa * (1 + cond) * inv, ya = (saA + sa * condA) * inv
                        for col in 0..<dv {
                            let o = Swift.abs(dO[i * dv + col])
                            mS!.add((seq * f + a) * dv + col, ys * o, ya * o)
                        }
                        if isSum {
                            let ad = Swift.abs(delta)
                            mZ!.add(seq * f + a, sa * (deltaBar + ad * cond) * inv,
                                    (saA * ad + sa * (deltaA + ad * condA)) * inv)
                        }
                    }
                    let qi = (0..<dk).map { Swift.abs(q[i * dk + $0]) }
                    let base = (seq * n + i) * dk
                    switch spec.score.traits.featureMap {
                    case .packedSecondOrder:
                        var idx = 0
                        for a in 0..<dk {
                            mq.add(base + a, 2 * qi[a] * hS[idx], 2 * qi[a] * hA[idx])
                            idx += 1
                            for b in (a + 1)..<Swift.max(dk, a + 1) {
                                mq.add(base + a, sqrt2 * qi[b] * hS[idx], sqrt2 * qi[b] * hA[idx])
                                mq.add(base + b, sqrt2 * qi[a] * hS[idx], sqrt2 * qi[a] * hA[idx])
                                idx += 1
                            }
                        }
                    case .identity, .relu, nil:
                        for a in 0..<dk { mq.add(base + a, hS[a], hA[a]) }
                    }
                }
                if !isSum { rowS[i] = rS; rowA[i] = rA }
            }
            if relu {
                for e in 0..<(n * dk) {
                    if !(p.q[seq * n * dk + e] > 0) { mq.s[seq * n * dk + e] = 0; mq.a[seq * n * dk + e] = 0 }
                    if !(p.k[seq * n * dk + e] > 0) { mk.s[seq * n * dk + e] = 0; mk.a[seq * n * dk + e] = 0 }
                }
            }
            if spec.hasDecay {
                // FLA's identity dL_t = q_t·dq_t − k_t·dk_t carries dq's and dk's errors (as the sweep).
                let identity = spec.normalization == .none && spec.score.traits.power == 1
                var sufS = 0.0, sufA = 0.0
                for t in stride(from: n - 1, through: 0, by: -1) {
                    var ms = colS[t] + rowS[t], ma = colA[t] + rowA[t]
                    if identity {
                        for d in 0..<dk {
                            let e = (seq * n + t) * dk + d
                            let qd = Swift.abs(p.q[e]), kd = Swift.abs(p.k[e])
                            ms += qd * mq.s[e] + kd * mk.s[e]
                            ma += qd * mq.a[e] + kd * mk.a[e]
                        }
                    }
                    sufS += ms; sufA += ma
                    mL!.add(seq * n + t, ms, ma)
                    mA!.add(seq * n + t, sufS, sufA)
                }
            }
        }
        return GradientMagnitudes(dq: mq.parts(), dk: mk.parts(), dv: mv.parts(), dL: mL?.parts(), da: mA?.parts(),
                                  dInitialState: mS?.parts(), dInitialStateZ: mZ?.parts())
    }
}

/// The banded sweep of `GradientComparison.magnitudes` (rows, then columns and
/// state features, in parallel) gives bit for bit the single sweep's arrays:
/// every core, with and without an initial state, lengths across the band
/// boundary (64 rows), several sequences, both decay conditionings, and rows
/// with a zero normaliser (zero queries, which contribute nothing).
@Suite struct GradientMagnitudeSweepTests {
    static func sameBits(_ a: GradientMagnitudes.Parts?, _ b: GradientMagnitudes.Parts?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        func same(_ x: [Double], _ y: [Double]) -> Bool {
            x.count == y.count && zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern }
        }
        return same(a.storage, b.storage) && same(a.accumulation, b.accumulation)
    }

    @Test(arguments: CoreSpec.all)
    func bandedSweepIsBitIdentical(spec: CoreSpec) throws {
        var seed: UInt64 = 40
        for withState in spec.score.hasFeatureMap ? [false, true] : [false] {
            for (n, heads) in [(1, 1), (5, 2), (64, 1), (130, 2)] {
                seed += 1
                var core = CoreProblem.random(spec: spec, heads: heads, length: n, keyDim: 3, valueDim: 2,
                                              withInitialState: withState, seed: seed)
                if n > 5 { for d in 0..<3 { core.q[4 * 3 + d] = 0; core.q[70 % n * 3 + d] = 0 } }  // zero rows
                let g = GradientProblem.random(core: core, seed: seed)
                for conditioning in [DecayConditioning.segment, .globalPrefix] {
                    let new = GradientComparison.magnitudes(g, decay: conditioning)
                    let old = LegacyGradientMagnitudes.magnitudes(g, decay: conditioning)
                    let label = "\(spec.name) state=\(withState) n=\(n) \(conditioning)"
                    #expect(Self.sameBits(new.dq, old.dq), "\(label) dq")
                    #expect(Self.sameBits(new.dk, old.dk), "\(label) dk")
                    #expect(Self.sameBits(new.dv, old.dv), "\(label) dv")
                    #expect(Self.sameBits(new.dL, old.dL), "\(label) dL")
                    #expect(Self.sameBits(new.da, old.da), "\(label) da")
                    #expect(Self.sameBits(new.dInitialState, old.dInitialState), "\(label) dS0")
                    #expect(Self.sameBits(new.dInitialStateZ, old.dInitialStateZ), "\(label) dz0")
                }
            }
        }
    }
}
