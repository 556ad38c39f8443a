import Testing
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
import MambaVerification
import _MambaTestSupport

/// Special values and hazards (docs/MATH.md §6) in the backward kernels.
@Suite("Backward kernels: special values and hazards")
struct BackwardHazardTests {
    /// relu-linear rows whose queries are all ≤ 0 have a zero normaliser:
    /// nothing is clamped, the rows are named, and the gradients that depend
    /// on them are not finite — as the oracle's are NaN.
    @Test(arguments: [KernelForm.quadratic, .chunked, .tiled, .recurrent])
    func zeroNormaliserIsReportedNotClamped(form: KernelForm) throws {
        let spec = CoreSpec(score: .reluLinear, hasDecay: true, normalization: .sum)
        let core = CoreProblem.random(spec: spec, length: 12, keyDim: 3, valueDim: 2, distribution: .zeroReluRows,
                                      seed: 35_000)
        let g = GradientProblem.random(core: core, seed: 35_000)
        let oracle = try Reference.gradients(g, precision: 64)
        #expect(!oracle.zeroDenominatorRows.isEmpty)
        let out = try CoreBackward.run(g, form: form, mode: .float32, options: KernelOptions(chunkSize: 4, tileSize: 4))
        print("seed 35000 \(form): \(out.diagnostics)")
        #expect(out.diagnostics.contains { $0.contains("zero normaliser in rows") })
        #expect(out.dv.contains { !$0.isFinite })
    }

    /// The tiled backward under the lagging-maximum inputs of docs/MATH.md §6 (first
    /// key block at s·q·k ≈ −200): with the stable maximum every gradient is
    /// finite and within the derived bound; with the faithful raw-score
    /// maximum the forward sweep loses rows and says so.
    @Test func laggingMaximum() throws {
        let spec = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)
        let core = CoreProblem.random(spec: spec, length: 40, keyDim: 4, valueDim: 3, distribution: .laggingMaximum,
                                      seed: 35_100)
        let g = GradientProblem.random(core: core, seed: 35_100)
        let stable = try CoreBackward.run(g, form: .tiled, mode: .float32, options: KernelOptions(tileSize: 16))
        #expect(stable.diagnostics.isEmpty, "\(stable.diagnostics)")
        let oracle = try Reference.gradients(g, precision: 128)
        let mags = BackwardBound.magnitudes(g, .float32)
        let policy = VerdictPolicy(factor: 2, ulpAllowance: 2, boundFactor: BackwardBound.boundFactor(.float32, g.core))
        let checks = try BackwardChecks.compare(stable, oracle, mags, g, mode: .float32, policy: policy)
        print("seed 35100 lagging maximum, stable tiled: " + checks.map(\.description).joined(separator: "; "))
        for c in checks { #expect(c.passed, "\(c)") }
        let faithful = try CoreBackward.run(g, form: .tiled, mode: .float32,
                                            options: KernelOptions(tileSize: 16, stableTiledMaximum: false))
        print("seed 35100 lagging maximum, faithful tiled: \(faithful.diagnostics)")
        #expect(faithful.diagnostics.contains { $0.contains("lagging maximum") })
    }

    /// relu-linear: no gradient flows to q or k entries ≤ 0 (ReLU'(x) = 0 there), exactly.
    @Test func reluMaskIsExact() throws {
        for spec in CoreSpec.all where spec.score == .reluLinear {
            let g = BackwardProblems.make(spec, storage: .float32, length: 16, initialState: true, seed: 35_200)
            for form in KernelForm.allCases {
                let out = try CoreBackward.run(g, form: form, mode: .float32, options: KernelOptions(chunkSize: 4, tileSize: 4))
                for e in g.core.q.indices where g.core.q[e] <= 0 { #expect(out.dq[e] == 0, "\(spec.name) \(form) dq[\(e)]") }
                for e in g.core.k.indices where g.core.k[e] <= 0 { #expect(out.dk[e] == 0, "\(spec.name) \(form) dk[\(e)]") }
            }
        }
    }

    /// Degenerate lengths: one token (within the derived bound of the
    /// oracle, initial state included: `a_0` decays the state) and an empty sequence.
    @Test func degenerateLengths() throws {
        for spec in CoreSpec.all {
            let g = BackwardProblems.make(spec, storage: .float32, length: 1, initialState: true, seed: 35_300)
            let oracle = try Reference.gradients(g, precision: 128)
            let mags = BackwardBound.magnitudes(g, .float32)
            let policy = VerdictPolicy(factor: 2, ulpAllowance: 2, boundFactor: BackwardBound.boundFactor(.float32, g.core))
            for form in KernelForm.allCases {
                let out = try CoreBackward.run(g, form: form, mode: .float32)
                for c in try BackwardChecks.compare(out, oracle, mags, g, mode: .float32, policy: policy) {
                    #expect(c.passed, "seed 35300 \(spec.name) \(form) N=1: \(c)")
                }
            }
            var empty = g
            empty.core = CoreProblem.random(spec: spec, length: 0, keyDim: 4, valueDim: 3, seed: 1)
            empty.dO = []
            for form in KernelForm.allCases {
                let out = try CoreBackward.run(empty, form: form, mode: .float32)
                #expect(out.dq.isEmpty && out.dv.isEmpty && (out.da ?? []).isEmpty)
            }
        }
    }

    /// Invalid problems and options throw the forward's errors.
    @Test func invalidInputsThrow() throws {
        let g = BackwardProblems.make(CoreSpec(score: .linear, hasDecay: true, normalization: .none), storage: .float32,
                                      length: 4, initialState: false, seed: 1)
        var bad = g
        bad.dO.removeLast()
        #expect(throws: KernelError.self) { try CoreBackward.run(bad, form: .chunked, mode: .float32) }
        #expect(throws: KernelError.invalidOptions("chunkSize must be ≥ 1, got 0")) {
            try CoreBackward.run(g, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: 0))
        }
    }
}
