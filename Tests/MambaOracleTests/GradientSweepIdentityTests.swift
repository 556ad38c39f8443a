import CMPFR
import Testing
@testable import MambaOracle
import MambaPrecision
import MambaVariants
import _MambaTestSupport

/// The two-sweep gradient oracles (issue #12: pair terms recomputed per row
/// and per column instead of stored as lower-triangular matrices) must give
/// bit-identical MPFR results to the stored-triangle algorithm they replace
/// (kept in `LegacyGradientOracles.swift`): the p-bit analytic oracle
/// (`analyticSequence`, both decay formulas) and the certified enclosures
/// (`enclosedGradients`, every lower and upper end, with and without planted
/// faults), hence the same certified Float64 values.
///
/// Cases: every core; random shapes (N ≤ 12, dk ≤ 4, dv ≤ 3, two heads) plus
/// dk = 70 (no exact integer rows: the `fma`-chain and MPFR-sum fallbacks);
/// hazards: strong decays (steps ×40), resets (a = −1e9), given prefix sums,
/// initial states (feature-map scores), zero normalisers (all-zero query
/// rows, sum-normalised), precisions 128 and 256 bits.
@Suite struct GradientSweepIdentityTests {
    enum Hazard: CaseIterable { case plain, strongDecay, resets, prefixSums, zeroRows, wide }

    static func problem(_ spec: CoreSpec, hazard: Hazard, seed: UInt64, withState: Bool) -> GradientProblem {
        var g = SeededGenerator(seed: seed)
        let n = 1 + Int(g.next() % 12), dk = hazard == .wide ? 70 : 1 + Int(g.next() % 4), dv = 1 + Int(g.next() % 3)
        var core = CoreProblem.random(spec: spec, batch: 1, heads: 2, length: n, keyDim: dk, valueDim: dv,
                                      withInitialState: withState, seed: seed)
        if case .perStep(let a)? = core.decay {
            switch hazard {
            case .strongDecay: core.decay = .perStep(a.map { $0 * 40 })
            case .resets:
                var b = a
                for t in b.indices where g.next() % 3 == 0 { b[t] = -1e9 }
                core.decay = .perStep(b)
            case .prefixSums:
                var l = a
                for h in 0..<core.sequences {
                    for t in 1..<n { l[h * n + t] = Double(Float(l[h * n + t - 1] + a[h * n + t])) }
                }
                core.decay = .prefixSum(l)
            default: break
            }
        }
        if hazard == .zeroRows {
            for row in 0..<(core.sequences * n) where g.next() % 3 == 0 {
                for d in 0..<dk { core.q[row * dk + d] = 0 }
            }
        }
        return GradientProblem.random(core: core, seed: seed)
    }

    /// Same MPFR value, sign of zero and NaN-ness.
    static func same(_ a: MPFRPointer, _ b: MPFRPointer) -> Bool {
        if mc_nan_p(a) != 0 || mc_nan_p(b) != 0 { return mc_nan_p(a) != 0 && mc_nan_p(b) != 0 }
        return mc_equal_p(a, b) != 0 && mc_signbit(a) == mc_signbit(b) && mc_get_prec(a) == mc_get_prec(b)
    }

    static func differences(_ a: MPFRBuffer?, _ b: MPFRBuffer?) -> Int {
        guard let a, let b else { return a == nil && b == nil ? 0 : 1 }
        guard a.count == b.count else { return 1 }
        return (0..<a.count).filter { !same(a[$0], b[$0]) }.count
    }

    static func differences(_ a: Reference.EnclosedTensor?, _ b: Reference.EnclosedTensor?) -> Int {
        differences(a?.lo, b?.lo) + differences(a?.hi, b?.hi)
    }

    static func cases(_ spec: CoreSpec) -> [(Hazard, Bool, UInt64)] {
        var r: [(Hazard, Bool, UInt64)] = []
        let specIndex = UInt64(CoreSpec.all.firstIndex(of: spec)!)
        for (h, hazard) in Hazard.allCases.enumerated() {
            if [.strongDecay, .resets, .prefixSums].contains(hazard) && !spec.hasDecay { continue }
            if hazard == .zeroRows && spec.normalization != .sum { continue }
            for withState in spec.score.hasFeatureMap && hazard != .wide ? [false, true] : [false] {
                for k in 0..<2 { r.append((hazard, withState, 9000 + 100 * specIndex + 10 * UInt64(h) + UInt64(k))) }
            }
        }
        return r
    }

    @Test(arguments: CoreSpec.all)
    func certifiedSweepsMatchStoredTriangles(spec: CoreSpec) throws {
        for (hazard, withState, seed) in Self.cases(spec) {
            let g = Self.problem(spec, hazard: hazard, seed: seed, withState: withState)
            let p = g.core, n = p.length, dv = p.valueDim
            let label = "\(spec.name) \(hazard) state=\(withState) seed \(seed) N=\(n) dk=\(p.keyDim)"
            for seq in 0..<p.sequences {
                let dO = ValueRows(g.dO[seq * n * dv ..< (seq + 1) * n * dv], width: dv)
                for precision in [128, 256] {
                    for fault in [EnclosureFault.none, .upperEndRoundedDown] where fault == .none || precision == 128 {
                        let e = EnclosedSequence(problem: p, sequence: seq, precision: precision)
                        let new = Reference.enclosedGradients(e, dO: dO, fault: fault)
                        let old = Reference.legacyEnclosedGradients(e, dO: dO, fault: fault)
                        let diffs = [("dq", Self.differences(new.dq, old.dq)), ("dk", Self.differences(new.dk, old.dk)),
                                     ("dv", Self.differences(new.dv, old.dv)), ("dL", Self.differences(new.dL, old.dL)),
                                     ("da", Self.differences(new.da, old.da)), ("dS0", Self.differences(new.dS0, old.dS0)),
                                     ("dz0", Self.differences(new.dz0, old.dz0))].filter { $0.1 != 0 }
                        #expect(diffs.isEmpty, "\(label) seq \(seq) p=\(precision) \(fault): \(diffs)")
                        #expect(new.zeroRows == old.zeroRows, "\(label)")
                    }
                }
            }
            // Through the public entry point as well: the certified Float64 values.
            let (c, zero) = try Reference.certifiedGradients(g)
            #expect(zero.allSatisfy { $0 < p.sequences * n }, "\(label)")
            #expect(c.named.allSatisfy { $0.values.o.count > 0 || n == 0 }, "\(label)")
        }
    }

    @Test(arguments: CoreSpec.all)
    func analyticSweepsMatchStoredTriangles(spec: CoreSpec) throws {
        for (hazard, withState, seed) in Self.cases(spec) {
            let g = Self.problem(spec, hazard: hazard, seed: seed, withState: withState)
            let p = g.core, n = p.length, dv = p.valueDim
            let label = "\(spec.name) \(hazard) state=\(withState) seed \(seed) N=\(n) dk=\(p.keyDim)"
            for seq in 0..<p.sequences {
                let dO = g.dO[seq * n * dv ..< (seq + 1) * n * dv]
                for precision in [128, 256] {
                    for formula in [DecayGradientFormula.corrected, .paperC5Literal] {
                        let c = ReferenceSequence(problem: p, sequence: seq, precision: precision)
                        let new = Reference.analyticSequence(c, dO: dO, decayFormula: formula)
                        let old = Reference.legacyAnalyticSequence(c, dO: dO, decayFormula: formula)
                        let diffs = [("dq", Self.differences(new.dq, old.dq)), ("dk", Self.differences(new.dk, old.dk)),
                                     ("dv", Self.differences(new.dv, old.dv)), ("dL", Self.differences(new.dL, old.dL)),
                                     ("dS0", Self.differences(new.dS0, old.dS0)),
                                     ("dz0", Self.differences(new.dz0, old.dz0))].filter { $0.1 != 0 }
                        #expect(diffs.isEmpty, "\(label) seq \(seq) p=\(precision) \(formula): \(diffs)")
                        #expect(new.zeroRows == old.zeroRows, "\(label)")
                    }
                }
            }
        }
    }
}
