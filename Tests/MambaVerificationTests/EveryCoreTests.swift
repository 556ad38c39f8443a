import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
@testable import MambaVerification
import Testing

/// Every core the catalogue lists is handled by every layer: the catalogue
/// itself (traits, feature maps), the oracle (its forms agree), the fast
/// kernels (every form, forward and backward) and the verdict (correct
/// kernels pass). Adding a `Score` case or a core makes these tests cover it
/// without edits (README, "Add a variant").
@Suite("Every core through every layer")
struct EveryCoreTests {
    /// A seeded problem; for scores with ReLU on the inputs the first
    /// component of every q and k is made positive, so that no row's weights
    /// all vanish (a sum-normalised row would be 0/0, which the oracle
    /// reports as undefined).
    static func problem(_ spec: CoreSpec, heads: Int = 2, length: Int, keyDim: Int, valueDim: Int,
                        seed: UInt64) -> CoreProblem {
        var p = CoreProblem.random(spec: spec, heads: heads, length: length, keyDim: keyDim, valueDim: valueDim,
                                   withInitialState: spec.score.hasFeatureMap, seed: seed)
        if spec.score.traits.reluOnInputs {
            for row in 0..<(p.sequences * length) {
                p.q[row * keyDim] = Double(Float(abs(p.q[row * keyDim]) + 0.125))
                p.k[row * keyDim] = Double(Float(abs(p.k[row * keyDim]) + 0.125))
            }
        }
        return p
    }

    static func seed(_ base: UInt64, _ spec: CoreSpec) -> UInt64 { base + UInt64(CoreSpec.all.firstIndex(of: spec)!) }

    /// The catalogue is the full product of scores, decay and normalisation,
    /// minus exactly the sum-normalised cores of a signed score.
    @Test func catalogueListsEveryValidCore() {
        var expected: [CoreSpec] = []
        for s in Score.allCases {
            for d in [false, true] {
                for n in Normalization.allCases where !(n == .sum && !s.traits.nonNegative) {
                    expected.append(CoreSpec(score: s, hasDecay: d, normalization: n))
                }
            }
        }
        #expect(Set(CoreSpec.all) == Set(expected) && CoreSpec.all.count == expected.count)
        for s in Score.allCases { #expect(CoreSpec.all.contains { $0.score == s }, "\(s) has no core") }
        for c in CoreSpec.all { #expect(CoreSpec(name: c.name) == c, "\(c.name) does not parse back") }
    }

    /// The trait table agrees with the feature maps: `F` is the length of
    /// `φ(x)`, and `c·⟨φ(q), φ(k)⟩ = f(s·q·k)` with `c = sᵖ`; the exact
    /// split's cross weights multiply to 2 for the second-order map.
    @Test(arguments: Score.allCases)
    func traitsMatchTheFeatureMap(score: Score) {
        let t = score.traits
        #expect(score.hasFeatureMap == (t.featureMap != nil))
        #expect((t.power == nil) == (t.featureMap == nil), "a polynomial score has a feature map, and only it")
        guard let map = t.featureMap, let p = t.power, let w = t.exactSplitCrossWeights else {
            #expect(t.exactSplitCrossWeights == nil)
            return
        }
        let q: [Double] = [0.5, -1.25, 2, 0.75], k: [Double] = [-0.5, 1.5, 0.25, 1], s = 0.5
        let phiQ = FeatureMap.apply(score, q), phiK = FeatureMap.apply(score, k)
        #expect(phiQ.count == map.dimension(keyDim: q.count) && phiQ.count == CoreSpec(score: score, hasDecay: false,
                normalization: .none).featureDimension(keyDim: q.count))
        let relu = { (x: Double) in t.reluOnInputs ? Swift.max(x, 0) : x }
        let x = s * zip(q.map(relu), k.map(relu)).map(*).reduce(0, +)
        let f = (1..<p).reduce(x) { r, _ in r * x }
        let c = (1..<p).reduce(s) { r, _ in r * s }
        let viaFeatures = c * zip(phiQ, phiK).map(*).reduce(0, +)
        #expect(Swift.abs(viaFeatures - f) <= 1e-12 * Swift.max(1, Swift.abs(f)), "\(score): \(viaFeatures) vs \(f)")
        switch map {
        case .identity, .relu: #expect(w.query == 1 && w.key == 1)
        case .packedSecondOrder: #expect(w.query * w.key == 2)
        }
        if t.nonNegative { #expect(f >= 0) }
    }

    /// The oracle's quadratic, recurrent and chunked forms agree on every core
    /// (to far below Float32's precision), and rational problems agree exactly.
    @Test(arguments: CoreSpec.all)
    func oracleFormsAgree(spec: CoreSpec) throws {
        let p = Self.problem(spec, length: 20, keyDim: 4, valueDim: 3, seed: Self.seed(4_100, spec))
        let quadratic = try Reference.quadratic(p).oDouble
        for other in [try Reference.recurrent(p).oDouble, try Reference.chunked(p, chunkSize: 8).oDouble] {
            #expect(other.count == quadratic.count)
            for (a, b) in zip(other, quadratic) {
                #expect(Swift.abs(a - b) <= 1e-12 * Swift.max(1, Swift.abs(b)), "\(spec.name): \(a) vs \(b)")
            }
        }
        if spec.score.traits.power != nil {
            let e = ExactCoreProblem.random(spec: spec, length: 9, keyDim: 3, valueDim: 2, withInitialState: true, seed: 41)
            let r = ExactForms.quadratic(e)
            #expect(ExactForms.recurrent(e) == r && ExactForms.chunked(e, chunkSize: 4) == r, "\(spec.name)")
        }
    }

    /// Every fast form runs on every core in every precision mode and passes
    /// the verdict, exactly as `mambacheck verify --quick` judges it (its
    /// jobs and default seeds; the oracle at 128 bits, the other forms in the
    /// same mode as baselines).
    @Test(arguments: CoreSpec.all)
    func kernelsPassTheVerdict(spec: CoreSpec) throws {
        let job = try #require(BuiltinVerification.jobs(size: .quick, seed: 20_260_217).first { $0.core == spec })
        let cases = try BuiltinVerification.coreCases(spec, name: job.name, size: .quick, seed: job.seed,
                                                      policy: .standard)
        let expected = PrecisionMode.allCases.count * BuiltinVerification.forms(for: spec).count
        #expect(Set(cases.map { $0.name }).count == expected, "\(spec.name): \(cases.count) cases")
        for c in cases { #expect(c.passed, "\(c.name) \(c.tensor): \(c.verdict.reason)") }
    }

    /// Every backward form runs on every core and its gradients pass the
    /// gradient verdict against the oracle's.
    @Test(arguments: CoreSpec.all)
    func backwardKernelsPassTheVerdict(spec: CoreSpec) throws {
        let core = Self.problem(spec, heads: 1, length: 16, keyDim: 4, valueDim: 4, seed: Self.seed(4_300, spec))
        let g = GradientProblem.random(core: core, seed: 43)
        let oracle = try Reference.gradients(g, precision: 128)
        let settings = ComparisonSettings(format: .binary32, precision: 128, kernelOptions: KernelOptions(chunkSize: 8),
                                          mode: .float32)
        let baselines = try GradientComparison.baselineGradients(g, settings: settings)
        for form in KernelForm.allCases {
            let mine = try CoreBackward.run(g, form: form, mode: .float32, options: KernelOptions(chunkSize: 8, tileSize: 8))
            let cases = try GradientComparison.compare(problem: g, candidate: CandidateGradients(mine),
                                                       name: "\(spec.name)/\(form)", settings: settings,
                                                       oracle: oracle, baselines: baselines)
            #expect(!cases.isEmpty)
            for c in cases { #expect(c.passed, "\(spec.name) \(form): \(c.tensor): \(c.verdict.reason)") }
        }
    }
}
