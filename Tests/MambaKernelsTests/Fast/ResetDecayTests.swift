import Testing
import MambaKernels
import MambaOracle
import MambaVariants
import MambaVerification

/// A reset step (`a_t = −1e9`, the "forget everything" value real models use)
/// inside a chunk: the chunked form must not sum it into the chunk-local
/// prefix sums of the tokens after it (which would lose their small decays,
/// errors O(1) measured before the fix), so it stays as accurate as the
/// quadratic form — and the verdict's chunked baseline is not inflated by a
/// hazard of its own making.
@Suite("Fast kernels: reset decays")
struct ResetDecayTests {
    @Test(arguments: [-1e9, -60.0, -1e30])
    func chunkedFormSurvivesAResetStep(step: Double) throws {
        for spec in CoreSpec.all where spec.hasDecay && spec.score != .exponential {
            var p = CoreProblem.random(spec: spec, heads: 2, length: 96, keyDim: 8, valueDim: 4,
                                       withInitialState: true, seed: 77)
            guard case .perStep(var a) = p.decay else { Issue.record("expected per-step decays"); return }
            a[21] = step            // inside the first chunk of 32
            a[96 + 40] = step       // inside the second chunk of the second head
            p.decay = .perStep(a)
            let oracle = try Reference.quadratic(p, precision: 128, finalState: true)
            let y = oracle.oDouble
            func error(_ o: [Double]) -> Double {
                zip(o, y).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
            }
            let quadratic = try CoreKernels.run(p, form: .quadratic, mode: .float32)
            let chunked = try CoreKernels.run(p, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: 32))
            let eq = error(quadratic.o), ec = error(chunked.o)
            // Both are ordinary Float32 evaluations: within a few hundred u of the oracle,
            // and within 8x of each other (measured ratio ≈ 1 after the fix, ~1e6 before).
            #expect(ec < 1e-4 && ec <= 8 * max(eq, 1e-7), "\(spec.name) step \(step): chunked \(ec) vs quadratic \(eq)")
            let fs = oracle.finalStateS!.map(\.doubleValue)
            let fe = zip(chunked.finalState!.s, fs).map { abs($0 - $1) / max(1, abs($1)) }.max()!
            #expect(fe < 1e-4, "\(spec.name) step \(step): final state error \(fe)")
        }
    }

    /// The exponential score's blocked KV-cache form (`ChunkPairs`, shared
    /// with the chunked and recurrent backward) uses the same chunks
    /// (`ChunkPlan`): a reset step starts a chunk there too, so no chunk's
    /// local sums contain it. Measured before: errors 0.5–6.8 at −1e9 and
    /// −1e30 (chunks of 32 and of 1), 1.1e-6–3.4e-6 at −60 (24× the
    /// quadratic form's); after, within 8× of the quadratic form.
    @Test(arguments: [-1e9, -60.0, -1e30])
    func exponentialChunkedFormSurvivesAResetStep(step: Double) throws {
        for spec in CoreSpec.all where spec.hasDecay && spec.score == .exponential {
            var p = CoreProblem.random(spec: spec, heads: 2, length: 96, keyDim: 8, valueDim: 4, seed: 78)
            guard case .perStep(var a) = p.decay else { Issue.record("expected per-step decays"); return }
            a[21] = step            // inside the first chunk of 32
            a[64] = step            // at a chunk start
            a[96 + 40] = step       // inside the second chunk of the second head
            p.decay = .perStep(a)
            let y = try Reference.quadratic(p, precision: 128).oDouble
            func error(_ o: [Double]) -> Double {
                zip(o, y).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
            }
            let eq = error(try CoreKernels.run(p, form: .quadratic, mode: .float32).o)
            for chunk in [32, 1] {
                let ec = error(try CoreKernels.run(p, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: chunk)).o)
                #expect(ec < 1e-4 && ec <= 8 * max(eq, 1e-7), "\(spec.name) step \(step) chunk \(chunk): chunked \(ec) vs quadratic \(eq)")
            }
        }
    }
}
