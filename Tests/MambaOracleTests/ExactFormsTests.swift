import Testing
import MambaOracle
import MambaPrecision
import MambaVariants

/// Proof by computation (Proofs/T1-forms-equivalence.md): over the rationals,
/// with rational decays, quadratic, recurrent and chunked forms are identical.
@Suite struct ExactFormsTests {
    static let cores = CoreSpec.all.filter { $0.score != .exponential }

    @Test(arguments: cores)
    func formsAreIdenticalOverRationals(spec: CoreSpec) {
        for (n, state) in [(1, false), (5, true), (7, false)] {
            let seed = UInt64(500 + n) &+ UInt64(Self.cores.firstIndex(of: spec)!) &* 31
            let p = ExactCoreProblem.random(spec: spec, length: n, keyDim: 3, valueDim: 2, withInitialState: state,
                                            seed: seed)
            let quad = ExactForms.quadratic(p)
            let rec = ExactForms.recurrent(p)
            #expect(quad == rec, "\(spec) n=\(n) seed=\(seed): quadratic ≠ recurrent")
            for c in [1, 2, 3, n + 1] {
                #expect(quad == ExactForms.chunked(p, chunkSize: c), "\(spec) n=\(n) chunk=\(c) seed=\(seed)")
            }
        }
    }

    @Test func aWrongDecayIsDetected() {
        // Negative control: shifting the decay by one token must break equality.
        let spec = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)
        var p = ExactCoreProblem.random(spec: spec, length: 6, keyDim: 2, valueDim: 2, withInitialState: false, seed: 9)
        let reference = ExactForms.quadratic(p)
        p.alpha = Array(p.alpha!.dropFirst()) + [Rational(1, 2)]
        #expect(ExactForms.recurrent(p) != reference)
    }

    @Test func secondOrderIdentityIsExact() {
        var g = SeededGenerator(seed: 3)
        for d in 1...6 {
            let q = (0..<d).map { _ in Rational(Int(g.uniform(-20, 20)), 7) }
            let k = (0..<d).map { _ in Rational(Int(g.uniform(-20, 20)), 3) }
            let spec = CoreSpec(score: .squared, hasDecay: false, normalization: .none)
            let p = ExactCoreProblem(spec: spec, length: 1, keyDim: d, valueDim: 1, q: q, k: k, v: [Rational(1)],
                                     alpha: nil, scale: Rational(1))
            let dot = zip(q, k).reduce(Rational(0)) { $0 + $1.0 * $1.1 }
            // recurrent output = c·⟨φ_q(q), φ_k(k)⟩·v with c = 1, v = 1
            #expect(ExactForms.recurrent(p).o[0] == dot * dot)
        }
    }
}
