import Testing
import MambaKernels
import MambaVariants

/// The chunked form with its state carried on a second thread
/// (`KernelOptions.concurrentStateCarry`) performs the single-thread loop's
/// operations in the same order, so outputs, final states and diagnostics are
/// bit-identical — in every precision mode and core with a finite state, with
/// initial states, resets, given prefix sums, 16-bit stored states, 3xTF32,
/// tensor-core sums and a last partial chunk.
@Suite("Fast kernels: concurrent state carry")
struct ChunkedPipelineTests {
    struct Case: CustomStringConvertible, Sendable {
        var spec: CoreSpec
        var mode: PrecisionMode
        var options: KernelOptions
        var description: String { "\(spec.name) \(mode.rawValue) C=\(options.chunkSize)" }
    }

    static let cases: [Case] = CoreSpec.all.filter { $0.score != .exponential }.flatMap { spec in
        PrecisionMode.allCases.map { Case(spec: spec, mode: $0, options: KernelOptions(chunkSize: 16)) }
    } + [
        Case(spec: CoreSpec(score: .squared, hasDecay: true, normalization: .sum), mode: .bfloat16Acc32,
             options: KernelOptions(chunkSize: 24, stateStorage: .bfloat16)),
        Case(spec: CoreSpec(score: .squared, hasDecay: true, normalization: .sum), mode: .float32,
             options: KernelOptions(chunkSize: 32, splitTF32Products: true)),
        Case(spec: CoreSpec(score: .linear, hasDecay: true, normalization: .none), mode: .float16Acc32,
             options: KernelOptions(chunkSize: 16, prefixScan: .brentKungBase2, tensorCoreAccumulation: true)),
        Case(spec: CoreSpec(score: .squared, hasDecay: true, normalization: .sum), mode: .float16,
             options: KernelOptions(chunkSize: 16, fullSecondOrderState: true)),
        Case(spec: CoreSpec(score: .linear, hasDecay: true, normalization: .sum), mode: .tf32,
             options: KernelOptions(chunkSize: 16, tf32Truncation: true)),
    ]

    @Test(arguments: 0..<cases.count)
    func concurrentCarryIsBitIdentical(_ index: Int) throws {
        let c = Self.cases[index]
        for (withState, prefixSums) in [(true, false), (false, true)] {
            var p = CoreProblem.random(spec: c.spec, heads: 2, length: 150, keyDim: 8, valueDim: 8,
                                       withInitialState: withState && c.spec.score.hasFeatureMap,
                                       seed: UInt64(index + 1))
            if case .perStep(var a)? = p.decay {
                a[70] = -1e9   // a reset step inside a chunk of the first sequence
                a[150 + 33] = -1e9
                p.decay = .perStep(a)
                if prefixSums {
                    let l = (0..<p.sequences).flatMap { p.prefixSums(sequence: $0)! }
                    p.decay = .prefixSum(l.map { Double(Float($0)) })
                }
            }
            var serial = c.options, concurrent = c.options
            serial.concurrentStateCarry = false
            concurrent.concurrentStateCarry = true
            let a = try CoreKernels.run(p, form: .chunked, mode: c.mode, options: serial)
            let b = try CoreKernels.run(p, form: .chunked, mode: c.mode, options: concurrent)
            let same = zip(a.o, b.o).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
            #expect(same && a.o.count == b.o.count, "\(c) state \(withState) prefix sums \(prefixSums): outputs differ")
            #expect(a.finalState?.s.map(\.bitPattern) == b.finalState?.s.map(\.bitPattern), "\(c): final S differs")
            #expect(a.finalState?.z?.map(\.bitPattern) == b.finalState?.z?.map(\.bitPattern), "\(c): final z differs")
            #expect(a.diagnostics == b.diagnostics)
        }
    }
}
