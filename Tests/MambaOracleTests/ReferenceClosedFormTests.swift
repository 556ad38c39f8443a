import Testing
import MambaOracle
import MambaPrecision
import MambaVariants

/// Known closed forms and invariances of the oracle (Proofs/T6-invariances.md).
@Suite struct ReferenceClosedFormTests {
    static func close(_ a: [BigFloat], _ b: [BigFloat], bits: Double = 100) -> Bool {
        zip(a, b).allSatisfy { x, y in
            if x.isNaN || y.isNaN { return x.isNaN && y.isNaN }  // 0/0 rows must match too
            let d = (x - y).doubleValue.magnitude
            return d <= pow(2, -bits) * max(x.doubleValue.magnitude, y.doubleValue.magnitude, 1e-300)
        }
    }

    @Test(arguments: CoreSpec.all)
    func singleTokenIsItsValueOrScaledValue(spec: CoreSpec) throws {
        let p = CoreProblem.random(spec: spec, length: 1, keyDim: 4, valueDim: 3, seed: 11)
        let o = try Reference.quadratic(p).o
        let x = zip(p.q, p.k).reduce(0.0) { r, e in
            spec.score == .reluLinear ? r + max(e.0, 0) * max(e.1, 0) : r + e.0 * e.1
        } * p.scale
        let f: Double = switch spec.score {
        case .linear, .reluLinear: x
        case .squared: x * x
        case .exponential: exp(x)
        }
        for c in 0..<3 {
            // y_0 = v_0 (sum: w/w) or f(s q·k)·v_0 (none); a_0 never matters.
            let expected = spec.normalization == .sum ? (f == 0 ? Double.nan : p.v[c]) : f * p.v[c]
            if expected.isNaN { #expect(o[c].isNaN) } else {
                #expect(abs(o[c].doubleValue - expected) <= 1e-14 * max(1, abs(expected)), "\(spec)")
            }
        }
    }

    @Test func allEqualKeysGiveTheMeanOfValuesWithoutDecay() throws {
        // Equal keys ⇒ equal weights in a row ⇒ y_i = mean of v_0…v_i (sum normalisation).
        for score in [Score.squared, .exponential, .reluLinear] {
            let spec = CoreSpec(score: score, hasDecay: false, normalization: .sum)
            var p = CoreProblem.random(spec: spec, length: 6, keyDim: 3, valueDim: 2, seed: 12)
            for t in 0..<6 { for d in 0..<3 { p.k[t * 3 + d] = p.k[d] } }
            for i in 0..<p.q.count { p.q[i] = abs(p.q[i]) + 0.25 }
            for i in 0..<p.k.count { p.k[i] = abs(p.k[i]) + 0.25 }
            let o = try Reference.quadratic(p).o
            for i in 0..<6 {
                for c in 0..<2 {
                    let mean = (0...i).reduce(0.0) { $0 + p.v[$1 * 2 + c] } / Double(i + 1)
                    #expect(abs(o[i * 2 + c].doubleValue - mean) <= 1e-14, "\(score) i=\(i)")
                }
            }
        }
    }

    @Test(arguments: CoreSpec.all.filter(\.hasDecay))
    func zeroDecayEqualsNoDecay(spec: CoreSpec) throws {
        var p = CoreProblem.random(spec: spec, length: 8, keyDim: 3, valueDim: 2, seed: 13)
        p.decay = .perStep(Array(repeating: 0, count: 8))
        var noDecay = p
        noDecay.spec.hasDecay = false
        noDecay.decay = nil
        #expect(Self.close(try Reference.quadratic(p).o, try Reference.quadratic(noDecay).o, bits: 120))
    }

    @Test func twoMambaEWithoutDecayIsSoftmax() throws {
        let e = VariantSpec.twoMambaE.core
        var p = CoreProblem.random(spec: e, length: 9, keyDim: 4, valueDim: 3, seed: 14)
        p.decay = .perStep(Array(repeating: 0, count: 9))
        var s = p
        s.spec = VariantSpec.softmax.core
        s.decay = nil
        #expect(Self.close(try Reference.quadratic(p).o, try Reference.quadratic(s).o, bits: 120))
    }

    @Test(arguments: [Score.reluLinear, .squared])
    func sumNormalisedScoresIgnoreTheScale(score: Score) throws {
        let spec = CoreSpec(score: score, hasDecay: true, normalization: .sum)
        var p = CoreProblem.random(spec: spec, length: 7, keyDim: 4, valueDim: 2, seed: 15)
        let a = try Reference.quadratic(p).o
        p.scale = 3.75
        #expect(Self.close(a, try Reference.quadratic(p).o, bits: 120))
    }

    @Test func aPrefixSumIsUsedAsGiven() throws {
        // Kernels that received A_cumsum in Float32 are judged on those values:
        // the oracle must use L as given, not re-derive it.
        let spec = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)
        var p = CoreProblem.random(spec: spec, length: 6, keyDim: 3, valueDim: 2, seed: 16)
        guard case .perStep(let a) = p.decay! else { Issue.record("expected per-step decays"); return }
        var acc: Float = 0
        let l = a.map { acc += Float($0); return Double(acc) }  // Float32 prefix sums, as a kernel holds them
        let fromSteps = try Reference.quadratic(p).o
        p.decay = .prefixSum(l)
        let fromPrefix = try Reference.quadratic(p).o
        // Same math up to the Float32 rounding of L: |δL| ≤ 6·|L|·2^-24 with |L| < 8
        // here, so Γ moves by < 2^-18 relative and outputs (weighted means) by
        // less than that times their O(1) condition.
        #expect(Self.close(fromSteps, fromPrefix, bits: 14))
        #expect(!Self.close(fromSteps, fromPrefix, bits: 120))  // …but not identical: L was used as given
    }

    @Test(arguments: CoreSpec.all)
    func precisionSelfCheckPasses(spec: CoreSpec) throws {
        for dist in [InputDistribution.paper, .fla, .nearZeroNormaliser, .zeroReluRows] {
            let p = CoreProblem.random(spec: spec, heads: 2, length: 12, keyDim: 4, valueDim: 3, distribution: dist,
                                       withInitialState: true, seed: 17)
            let check = try Reference.precisionSelfCheck(p, precision: 64)
            #expect(check.passed, "\(spec) \(dist): unexplained \(check.unexplained.prefix(3))")
        }
    }

    @Test func zeroDenominatorsAreReportedNotPatched() throws {
        let spec = CoreSpec(score: .reluLinear, hasDecay: false, normalization: .sum)
        var p = CoreProblem.random(spec: spec, length: 4, keyDim: 3, valueDim: 2, seed: 18)
        for d in 0..<3 { p.q[d] = -1 }  // φ(q_0) = 0 ⇒ D_0 = 0
        let r = try Reference.quadratic(p)
        #expect(r.denominators![0].isZero)
        #expect(r.o[0].isNaN && r.o[1].isNaN)
    }
}

#if canImport(Glibc)
import Glibc
#endif
