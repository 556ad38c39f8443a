import Testing
@testable import MambaOracle
import MambaPrecision
import MambaVariants

/// The certified oracle with states (Proofs/T7): outputs of problems with an
/// initial state, and final states, against the independent 2048-bit
/// evaluation of `CertifiedOracleTests` (which shares no code with the oracle but MPFR).
@Suite struct CertifiedStateTests {
    static let stateSpecs = CoreSpec.all.filter { $0.score.hasFeatureMap }

    /// Outputs with an initial state: every element enclosed, decided and equal
    /// to the independent value rounded to Float64 and to 30 digits. A random
    /// value within 2^−2048·κ of a rounding boundary has probability ~2^−1900.
    @Test(arguments: stateSpecs)
    func initialStateOutputsAreCorrectlyRounded(spec: CoreSpec) throws {
        for (seed, dk) in [(UInt64(41), 5), (42, 3)] {
            var p = CoreProblem.random(spec: spec, batch: 1, heads: 2, length: 7, keyDim: dk, valueDim: 3,
                                       withInitialState: true, seed: seed)
            p.scaleSpec = .inverseSquareRoot(keyDim: dk)
            #expect(p.initialState != nil)
            let c = try Reference.certified(p, decimalDigits: 30)
            let ind = CertifiedOracleTests.independent(p)
            #expect(c.undecided.allSatisfy { $0.reason == .zeroDenominator }, "\(spec.name): \(c.undecided)")
            let zero = Set(c.undecided.map(\.index))
            for e in 0..<ind.count where !zero.contains(e) {
                #expect(CertifiedOracleTests.inside(ind[e], c.lower[e], c.upper[e]), "\(spec.name) element \(e) outside")
                #expect(c.o[e] == ind[e].doubleValue, "\(spec.name) element \(e)")
                #expect(c.decimal?[e] == ind[e].decimalString(significantDigits: 30), "\(spec.name) element \(e)")
            }
        }
    }

    /// Final states (with and without an initial state), the same way.
    @Test(arguments: stateSpecs)
    func finalStatesAreCorrectlyRounded(spec: CoreSpec) throws {
        for withState in [false, true] {
            var p = CoreProblem.random(spec: spec, batch: 2, heads: 1, length: 6, keyDim: 3, valueDim: 2,
                                       withInitialState: withState, seed: 51)
            p.scaleSpec = .inverseSquareRoot(keyDim: 3)
            let c = try #require(try Reference.certifiedFinalState(p, decimalDigits: 25))
            let ind = CertifiedOracleTests.independentFinalState(p)
            #expect(c.s.isComplete && (c.z?.isComplete ?? true), "\(spec.name): \(c.s.undecided)")
            #expect((c.z != nil) == (spec.normalization == .sum))
            #expect(c.s.o.count == ind.s.count)
            for e in 0..<ind.s.count {
                #expect(CertifiedOracleTests.inside(ind.s[e], c.s.lower[e], c.s.upper[e]), "\(spec.name) S[\(e)] outside")
                #expect(c.s.o[e] == ind.s[e].doubleValue, "\(spec.name) S[\(e)] state=\(withState)")
                #expect(c.s.decimal?[e] == ind.s[e].decimalString(significantDigits: 25))
            }
            if let z = c.z {
                for e in 0..<ind.z.count {
                    #expect(CertifiedOracleTests.inside(ind.z[e], z.lower[e], z.upper[e]), "\(spec.name) z[\(e)] outside")
                    #expect(z.o[e] == ind.z[e].doubleValue, "\(spec.name) z[\(e)] state=\(withState)")
                }
            }
        }
    }

    /// Closed form: one token, no decay, no initial state: `S = k_0 v_0ᵀ` and
    /// `z = k_0` (linear features). Products of two binary32 numbers are exact
    /// in binary64, so the certified values are exactly the Double products.
    @Test func oneTokenStateIsTheOuterProduct() throws {
        let spec = CoreSpec(score: .linear, hasDecay: false, normalization: .none)
        let p = CoreProblem.random(spec: spec, length: 1, keyDim: 4, valueDim: 3, seed: 9)
        let c = try #require(try Reference.certifiedFinalState(p))
        #expect(c.s.isComplete && c.z == nil)
        var expected: [Double] = []
        for a in 0..<4 { for col in 0..<3 { expected.append(p.k[a] * p.v[col]) } }
        #expect(c.s.o == expected)
    }

    /// A log-decay of −10⁹ at step 1 (pairwise decay) forgets token 0 and the
    /// initial state up to e^{−10⁹}: the final state is `φ(k_1)v_1ᵀ` plus a
    /// term far below any Float64 rounding boundary of it, so the certified
    /// values are exactly the Double products `k_1a·v_1c` (and `z = k_1`).
    @Test func hugeDecayForgetsTheStateExactly() throws {
        let spec = CoreSpec(score: .reluLinear, hasDecay: true, normalization: .sum)
        var p = CoreProblem.random(spec: spec, length: 2, keyDim: 3, valueDim: 2, withInitialState: true, seed: 4)
        p.k = p.k.map(abs)
        p.decay = .perStep([-0.5, -1e9])
        let c = try #require(try Reference.certifiedFinalState(p))
        #expect(c.s.isComplete && c.z?.isComplete == true)
        var expected: [Double] = []
        for a in 0..<3 { for col in 0..<2 { expected.append(p.k[3 + a] * p.v[2 + col]) } }
        #expect(c.s.o == expected)
        #expect(c.z?.o == Array(p.k[3..<6]))
    }

    /// An initial state with `z₀ = 0` leaves a relu-linear query with no
    /// positive entry a zero normaliser: its elements are reported by index,
    /// never guessed, and not raised.
    @Test func zeroDenominatorWithInitialStateIsReported() throws {
        let spec = CoreSpec(score: .reluLinear, hasDecay: true, normalization: .sum)
        let p = CoreProblem(spec: spec, batch: 1, heads: 1, length: 2, keyDim: 1, valueDim: 2,
                            q: [1, -1], k: [1, 1], v: [1, 2, 3, 4], decay: .perStep([-0.25, -0.5]),
                            scaleSpec: nil, initialState: CoreState(s: [5, 6], z: [0]))
        let c = try Reference.certified(p)
        #expect(c.undecided == [.init(index: 2, reason: .zeroDenominator), .init(index: 3, reason: .zeroDenominator)])
        #expect(c.rowsRaised == 0)
        // Row 0: (1·1·v_0 + e^{−0.25}·1·S₀)/(1 + e^{−0.25}·0) = v_0 + e^{−0.25}·S₀.
        let ind = CertifiedOracleTests.independent(p)
        #expect(c.o[0] == ind[0].doubleValue && c.o[1] == ind[1].doubleValue)
    }
}
