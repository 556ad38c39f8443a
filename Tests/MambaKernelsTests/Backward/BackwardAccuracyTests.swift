import Testing
import MambaKernels
import MambaPrecision
import MambaVariants
import MambaVerification
import _MambaTestSupport

/// Every backward form × every core × float32, float16-acc32 and float16
/// against the MPFR gradient oracle (`Reference.gradients`, 128 bits),
/// within the derived bound of `BackwardBound` (the verdict with no
/// baselines: `|ŷ − y| ≤ 2 ulp + boundFactor·u_F·m_e`, elementwise and
/// normwise). Shapes: B = 1, H = 2, N = 37, dk = 4, dv = 3, chunks and
/// tiles of 8 (ragged last block), an initial state for every core that has
/// one; the recurrent form is the chunked backward with chunks of one token.
@Suite("Backward kernels: accuracy against the MPFR gradient oracle")
struct BackwardAccuracyTests {
    static let modes: [PrecisionMode] = [.float32, .float16Acc32, .float16]
    static let options = KernelOptions(chunkSize: 8, tileSize: 8)

    @Test(arguments: CoreSpec.all)
    func everyFormAndModeWithinDerivedBound(spec: CoreSpec) throws {
        let base = 31_000 + 10 * UInt64(CoreSpec.all.firstIndex(of: spec)!)
        for seed in TestSupport.seeds(1, base: base) {
            var oracles: [String: (GradientProblem, ReferenceGradients)] = [:]
            for mode in Self.modes {
                let storage: InputStorage = mode == .float32 ? .float32 : .float16
                let key = mode == .float16 ? "float16-scaled-decay" : storage.rawValue  // pure half: own problem
                if oracles[key] == nil {
                    let g = BackwardProblems.make(spec, storage: storage, length: 37, initialState: true,
                                                  decayScale: mode == .float16 ? 1.0 / 16 : 1, seed: seed)
                    oracles[key] = (g, try Reference.gradients(g, precision: 128))
                }
                let (g, oracle) = oracles[key]!
                #expect(oracle.zeroDenominatorRows.isEmpty, "seed \(seed) \(spec.name): zero normaliser in the test problem")
                let mags = BackwardBound.magnitudes(g, mode)
                let policy = VerdictPolicy(factor: 2, ulpAllowance: 2, boundFactor: BackwardBound.boundFactor(mode, g.core))
                for form in KernelForm.allCases {
                    let out = try CoreBackward.run(g, form: form, mode: mode, options: Self.options)
                    #expect(out.diagnostics.isEmpty, "seed \(seed) \(spec.name) \(form) \(mode): \(out.diagnostics)")
                    #expect((out.dL != nil) == spec.hasDecay && (out.da != nil) == spec.hasDecay)
                    #expect((out.dInitialState != nil) == spec.score.hasFeatureMap)
                    let checks = try BackwardChecks.compare(out, oracle, mags, g, mode: mode, policy: policy)
                    let label = "seed \(seed) \(spec.name) \(form.rawValue) \(mode.rawValue) (boundFactor \(Int(policy.boundFactor)))"
                    print("\(label): " + checks.map(\.description).joined(separator: "; "))
                    for c in checks { #expect(c.passed, "\(label): \(c)") }
                }
            }
        }
    }

    /// The magnitudes bound the oracle's gradients (`|y| ≤ m`, as a sum of
    /// absolute terms bounds the sum), so `m/|y|` is a condition number ≥ 1.
    @Test(arguments: CoreSpec.all)
    func magnitudesBoundTheGradients(spec: CoreSpec) throws {
        let seed: UInt64 = 32_000 + UInt64(CoreSpec.all.firstIndex(of: spec)!)
        let g = BackwardProblems.make(spec, storage: .float32, length: 23, initialState: true, seed: seed)
        let oracle = try Reference.gradients(g, precision: 128)
        let m = BackwardBound.magnitudes(g, .float32)
        var pairs: [(String, [BigFloat], [Double])] = [("dq", oracle.dq, m.dq), ("dk", oracle.dk, m.dk), ("dv", oracle.dv, m.dv)]
        if let d = oracle.dL { pairs.append(("dL", d, m.dL!)) }
        if let d = oracle.da { pairs.append(("da", d, m.da!)) }
        if let d = oracle.dInitialState { pairs.append(("dS0", d, m.dInitialState!)) }
        if let d = oracle.dInitialStateZ { pairs.append(("dz0", d, m.dInitialStateZ!)) }
        for (name, y, mag) in pairs {
            #expect(y.count == mag.count)
            var worst = 0.0
            for (a, b) in zip(y, mag) {
                let v = abs(a.doubleValue)
                #expect(v <= b * (1 + 1e-12) + 1e-300, "seed \(seed) \(spec.name) \(name): |y| = \(v) > m = \(b)")
                if b > 0 { worst = max(worst, v / b) }
            }
            print("seed \(seed) \(spec.name) \(name): max |y|/m = \(worst)")
        }
    }
}
