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
}
