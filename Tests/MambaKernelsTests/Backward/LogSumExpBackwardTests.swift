import Testing
import MambaKernels
import MambaOracle
import MambaVariants
import MambaVerification
import _MambaTestSupport

/// The tiled backward with one log-sum-exp per row (`KernelOptions.logSumExpBackward`,
/// FlashAttention-2/3's habit) for softmax cores: within the derived bound of
/// `BackwardBound` against the MPFR gradient oracle in Float32 and TF32, really
/// different from the default tiled backward (the option is in effect), and a
/// baseline of the Float32 gradient verdict (Proofs/T9, "One log-sum-exp per row").
@Suite("Backward kernels: one log-sum-exp per row")
struct LogSumExpBackwardTests {
    static let softmax = CoreSpec.all.filter { $0.score == .exponential && $0.normalization == .sum }

    @Test(arguments: softmax)
    func withinTheDerivedBoundAndInEffect(spec: CoreSpec) throws {
        let g = BackwardProblems.make(spec, storage: .float32, length: 37, initialState: true, seed: 41_000)
        let oracle = try Reference.gradients(g, precision: 128)
        let mags = BackwardBound.magnitudes(g, .float32)
        for mode in [PrecisionMode.float32, .tf32] {
            let policy = VerdictPolicy(factor: 2, ulpAllowance: 2, boundFactor: BackwardBound.boundFactor(mode, g.core))
            let plain = try CoreBackward.run(g, form: .tiled, mode: mode, options: KernelOptions(tileSize: 8))
            let lse = try CoreBackward.run(g, form: .tiled, mode: mode,
                                           options: KernelOptions(tileSize: 8, logSumExpBackward: true))
            #expect(lse.diagnostics.isEmpty)
            #expect(lse.dq != plain.dq && lse.dv != plain.dv, "\(spec.name) \(mode): the option changed nothing")
            for c in try BackwardChecks.compare(lse, oracle, mags, g, mode: mode, policy: policy) {
                #expect(c.passed, "\(spec.name) \(mode.rawValue): \(c)")
            }
        }
    }

    /// The Float32 and TF32 gradient verdicts run it as a baseline; 16-bit ones do not.
    @Test func isAFloat32Baseline() throws {
        let spec = Self.softmax[0]
        let g = BackwardProblems.make(spec, storage: .float32, length: 20, initialState: false, seed: 41_100)
        var lse = KernelOptions()
        lse.logSumExpBackward = true
        let expected = try CoreBackward.run(g, form: .tiled, mode: .float32, options: lse)
        let settings = ComparisonSettings(format: .binary32, arithmetic: DeclaredArithmetic.named("float32")!)
        let bases = try GradientComparison.baselineGradients(g, settings: settings)
        #expect(bases.contains { $0.dq == expected.dq && $0.dv == expected.dv })
        let half = ComparisonSettings(format: .binary16, arithmetic: DeclaredArithmetic.named("float16-acc32")!)
        let lseHalf = try CoreBackward.run(g, form: .tiled, mode: .float16Acc32, options: lse)
        #expect(!(try GradientComparison.baselineGradients(g, settings: half)).contains { $0.dq == lseHalf.dq })
    }
}
