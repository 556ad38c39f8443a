import Testing
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
import MambaVerification
import _MambaTestSupport

/// `GradientComparison` with its built-in baselines (MambaCheck's chunked
/// and quadratic backward kernels in the candidate's mode) and the standard
/// verdict policy: the paper's C.5-literal decay gradient fails, the tiled
/// backward kernel (a form the baselines do not use) passes, and small
/// deliberate errors are caught.
@Suite("Backward kernels: the gradient verdict")
struct BackwardVerdictTests {
    static let decayedSumCores = CoreSpec.all.filter { $0.hasDecay && $0.normalization == .sum }

    static func rounded(_ x: [BigFloat]) -> [Double] { x.map { Double(Float($0.doubleValue)) } }

    static func describe(_ cases: [ReportCase]) -> String {
        cases.map { "\($0.tensor) \($0.passed ? "pass" : "FAIL") (max rel \(String(format: "%.2e", $0.metrics.maxRelativeError)), β \(String(format: "%.2e", $0.verdict.baselineBackwardError)))" }
            .joined(separator: "; ")
    }

    @Test(arguments: decayedSumCores)
    func paperC5LiteralFailsWhileTheKernelPasses(spec: CoreSpec) throws {
        let seed: UInt64 = 34_000 + UInt64(CoreSpec.all.firstIndex(of: spec)!)
        let g = BackwardProblems.make(spec, storage: .float32, length: 24, initialState: true, seed: seed)
        let oracle = try Reference.gradients(g, precision: 128)
        let settings = ComparisonSettings(format: .binary32, precision: 128)
        let baselines = try GradientComparison.baselineGradients(g, settings: settings)

        let literal = try Reference.gradientsPaperC5Literal(g, precision: 128)
        let bad = try GradientComparison.compare(
            problem: g, candidate: CandidateGradients(da: Self.rounded(literal.da!), daCumsum: Self.rounded(literal.dL!)),
            name: "\(spec.name)/paper-c5-literal/float32", settings: settings, oracle: oracle, baselines: baselines)
        print("seed \(seed) \(spec.name) C.5 literal: \(Self.describe(bad))")
        #expect(bad.count == 2)
        for c in bad { #expect(!c.passed, "seed \(seed) \(spec.name): the C.5-literal \(c.tensor) passed: \(c.verdict.reason)") }

        let mine = try CoreBackward.run(g, form: .tiled, mode: .float32, options: KernelOptions(tileSize: 8))
        let good = try GradientComparison.compare(problem: g, candidate: CandidateGradients(mine),
                                                  name: "\(spec.name)/tiled/float32", settings: settings,
                                                  oracle: oracle, baselines: baselines)
        print("seed \(seed) \(spec.name) tiled kernel: \(Self.describe(good))")
        let expected: Set<String> = spec.score.hasFeatureMap
            ? ["dq", "dk", "dv", "da", "da_cumsum", "dinitial_state", "dinitial_state_z"]
            : ["dq", "dk", "dv", "da", "da_cumsum"]
        #expect(Set(good.map(\.tensor)) == expected)
        for c in good { #expect(c.passed, "seed \(seed) \(spec.name): kernel \(c.tensor) failed: \(c.verdict.reason)") }
    }

    /// Every core, both Float16 modes: the tiled and recurrent kernels pass
    /// the verdict against the chunked and quadratic baselines in the same mode.
    @Test(arguments: CoreSpec.all)
    func halfPrecisionKernelsPassTheVerdict(spec: CoreSpec) throws {
        let seed: UInt64 = 34_100 + UInt64(CoreSpec.all.firstIndex(of: spec)!)
        let g = BackwardProblems.make(spec, storage: .float16, length: 24, initialState: true, seed: seed)
        let oracle = try Reference.gradients(g, precision: 128)
        for mode in [PrecisionMode.float16Acc32, .float16] {
            let settings = ComparisonSettings(format: .binary16, precision: 128, kernelOptions: KernelOptions(chunkSize: 8),
                                              mode: mode)
            let baselines = try GradientComparison.baselineGradients(g, settings: settings)
            for form in [KernelForm.tiled, .recurrent] {
                let mine = try CoreBackward.run(g, form: form, mode: mode, options: KernelOptions(chunkSize: 8, tileSize: 8))
                let cases = try GradientComparison.compare(problem: g, candidate: CandidateGradients(mine),
                                                           name: "\(spec.name)/\(form)/\(mode)", settings: settings,
                                                           oracle: oracle, baselines: baselines)
                print("seed \(seed) \(spec.name) \(form) \(mode.rawValue): \(Self.describe(cases))")
                for c in cases { #expect(c.passed, "seed \(seed) \(spec.name) \(form) \(mode): \(c.tensor): \(c.verdict.reason)") }
            }
        }
    }

    /// Deliberate errors a buggy kernel makes are failed: a 0.1% scale error
    /// of `dk` (Float32), `dv` from the previous token's gradient (a causal
    /// off-by-one), and a decay gradient without its column part.
    @Test func deliberateErrorsFail() throws {
        let spec = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)
        let g = BackwardProblems.make(spec, storage: .float32, length: 24, initialState: false, seed: 34_200)
        let oracle = try Reference.gradients(g, precision: 128)
        let settings = ComparisonSettings(format: .binary32, precision: 128)
        let mine = try CoreBackward.run(g, form: .tiled, mode: .float32)
        var scaled = CandidateGradients(mine)
        scaled.dq = nil; scaled.dv = nil; scaled.da = nil; scaled.daCumsum = nil
        scaled.dk = mine.dk.map { Double(Float($0 * 1.001)) }
        var shifted = CandidateGradients(dv: mine.dv)
        let dv = g.core.valueDim, n = g.core.length
        for s in 0..<g.core.sequences {
            for t in stride(from: n - 1, to: 0, by: -1) {
                for c in 0..<dv { shifted.dv![(s * n + t) * dv + c] = mine.dv[(s * n + t - 1) * dv + c] }
            }
        }
        let rowOnly = CandidateGradients(daCumsum: mine.dL!.map { _ in 0 })
        for (label, cand) in [("dk × 1.001", scaled), ("dv shifted by one token", shifted), ("dL = 0", rowOnly)] {
            let cases = try GradientComparison.compare(problem: g, candidate: cand, name: label, settings: settings,
                                                       oracle: oracle)
            print("seed 34200 \(label): \(Self.describe(cases))")
            #expect(cases.count == 1 && !cases[0].passed, "\(label) passed")
        }
    }

    /// Inputs the problem does not have are named errors, not verdicts.
    @Test func inapplicableCandidatesThrow() throws {
        let g = BackwardProblems.make(CoreSpec(score: .squared, hasDecay: false, normalization: .sum), storage: .float32,
                                      length: 5, initialState: false, seed: 1)
        let settings = ComparisonSettings()
        #expect(throws: GradientComparisonError.self) {
            try GradientComparison.compare(problem: g, candidate: CandidateGradients(da: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                                           name: "x", settings: settings)
        }
        #expect(throws: GradientComparisonError.nothingToCompare) {
            try GradientComparison.compare(problem: g, candidate: CandidateGradients(), name: "x", settings: settings)
        }
        #expect(throws: VerificationError.self) {
            try GradientComparison.compare(problem: g, candidate: CandidateGradients(dv: [1, 2]), name: "x", settings: settings)
        }
    }
}
