import MambaKernels
import MambaOracle
import MambaVariants
@testable import MambaVerification
import Testing

/// Kernel runs shared between the inferences and the verdict (`BaselineRuns`): the
/// same outputs as fresh runs, so sharing changes no report, only the time.
@Suite("Shared baseline runs")
struct BaselineRunsTests {
    /// Per-step decays in Float32, no form declared: the inferences of a chunk length and
    /// of a recurrent form run the chunked (three prefix-sum orders), quadratic and
    /// biased recurrent kernels the verdict's baselines run again.
    @Test func sharedRunsGiveTheBaselinesAndReportsOfFreshRuns() throws {
        let problem = CoreProblem.random(spec: CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                                         length: 200, keyDim: 16, valueDim: 16, seed: 5)
        let settings = ComparisonSettings(format: .binary32, arithmetic: DeclaredArithmetic.named("float32")!)
        let ref = try Reference.quadratic(problem, precision: 128, finalState: false)
        let o = try CoreKernels.run(problem, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: 32))
            .o.map { Double(Float($0)) }
        let runs = BaselineRuns()
        _ = ChunkLengthInference.infer(problem, candidate: o, oracle: ref.oDouble,
                                       arithmetic: settings.effectiveArithmetic, runs: runs)
        _ = RecurrentFormInference.infer(problem, candidate: o, oracle: ref.oDouble, settings: settings, runs: runs)
        let shared = try KernelComparison.baselineOutputs(problem, settings: settings, runs: runs)
        let fresh = try KernelComparison.baselineOutputs(problem, settings: settings)
        #expect(shared.count == fresh.count && shared.count >= 4)
        for (a, b) in zip(shared, fresh) { #expect(a.o == b.o) }
        let withRuns = try KernelComparison.compare(problem: problem, candidate: CandidateTensors(o: o), name: "c",
                                                    settings: settings, oracle: ref, runs: runs)
        let without = try KernelComparison.compare(problem: problem, candidate: CandidateTensors(o: o), name: "c",
                                                   settings: settings, oracle: ref)
        #expect(withRuns.map(\.verdict.reason) == without.map(\.verdict.reason))
        #expect(withRuns.map(\.passed) == without.map(\.passed))
    }
}
