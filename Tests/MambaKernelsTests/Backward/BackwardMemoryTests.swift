@testable import MambaKernels
import MambaVariants
import Testing

/// The chunked backward's chunk-state buffer (`⌈N/C⌉·F·(dv+1)` floats) is
/// freed after the call unless a benchmark scope (`LargeBufferPool.retaining`)
/// is open, and freed when that scope ends: a process does not keep it.
@Suite("backward: chunk-state buffer released")
struct BackwardMemoryTests {
    @Test func bufferIsReleasedOutsideAndAfterRetentionScopes() throws {
        let core = CoreProblem.random(spec: CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                                      length: 96, keyDim: 8, valueDim: 8, seed: 5)
        let g = GradientProblem.random(core: core, seed: 6)
        let options = KernelOptions(chunkSize: 32)
        _ = try CoreBackward.run(g, form: .chunked, mode: .float32, options: options)
        #expect(!LargeBufferPool.shared.isHoldingBuffer)
        let first = try LargeBufferPool.shared.retaining {
            try CoreBackward.run(g, form: .chunked, mode: .float32, options: options)
        }
        #expect(!LargeBufferPool.shared.isHoldingBuffer)
        // Reuse inside a scope does not change results.
        let again = try CoreBackward.run(g, form: .chunked, mode: .float32, options: options)
        #expect(first.dq == again.dq && first.dk == again.dk && first.dv == again.dv)
    }

    /// Above the state budget the forward sweep keeps checkpoints only and the
    /// reverse sweep recomputes each segment's states (`StateCheckpoints`):
    /// bit-identical gradients to storing every state, for the chunked and the
    /// recurrent form (chunks of one token: 2.2 GB of states at N = 4096 for
    /// 2Mamba otherwise), with and without an initial state, in each precision mode.
    @Test(arguments: [CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                      CoreSpec(score: .squared, hasDecay: false, normalization: .none)])
    func checkpointedStatesGiveIdenticalGradients(spec: CoreSpec) throws {
        for (length, withState) in [(37, false), (50, true), (9, false)] {
            let core = CoreProblem.random(spec: spec, length: length, keyDim: 4, valueDim: 3,
                                          withInitialState: withState, seed: UInt64(length))
            let g = GradientProblem.random(core: core, seed: 7)
            for form in [KernelForm.chunked, .recurrent] {
                for mode in [PrecisionMode.float32, .bfloat16Acc32, .float16] {
                    let options = KernelOptions(chunkSize: 4)
                    let full = try CoreBackward.run(g, form: form, mode: mode, options: options)
                    let cp = try CoreBackward.run(g, form: form, mode: mode, options: options, stateBudgetBytes: 0)
                    let label = "\(spec.name) N=\(length) state=\(withState) \(form) \(mode)"
                    #expect(full.dq.map(\.bitPattern) == cp.dq.map(\.bitPattern), "\(label)")
                    #expect(full.dk.map(\.bitPattern) == cp.dk.map(\.bitPattern), "\(label)")
                    #expect(full.dv.map(\.bitPattern) == cp.dv.map(\.bitPattern), "\(label)")
                    #expect(full.da?.map(\.bitPattern) == cp.da?.map(\.bitPattern), "\(label)")
                    #expect(full.dInitialState?.map(\.bitPattern) == cp.dInitialState?.map(\.bitPattern), "\(label)")
                    #expect(full.dInitialStateZ?.map(\.bitPattern) == cp.dInitialStateZ?.map(\.bitPattern), "\(label)")
                }
            }
        }
        // The plan itself: 4096 one-token chunks of 2Mamba's F·ldv = 2080·65 floats.
        let plan = StateCheckpoints(chunks: 4096, stateSize: 2080 * 65, budgetBytes: ChunkedBackward.stateBudgetBytes)
        #expect(plan.isCheckpointed && plan.every == 64 && plan.bufferCount == 128 * 2080 * 65)
        let offsets = Set((0..<4096).map { plan.offset($0) / (2080 * 65) })
        #expect(offsets.count == 64 + 63 && offsets.allSatisfy { $0 < 128 })
    }
}
