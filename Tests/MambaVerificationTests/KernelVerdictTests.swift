import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
import MambaVerification
import Testing

/// The verdict on MambaCheck's own kernels against the MPFR oracle: every
/// correct form passes when judged against the others in the same precision
/// mode, and outputs damaged the way buggy kernels damage them fail.
@Suite("Verdict on MambaCheck's kernels")
struct KernelVerdictTests {
    static let cores = [
        CoreSpec(score: .squared, hasDecay: true, normalization: .sum),     // 2Mamba
        CoreSpec(score: .linear, hasDecay: true, normalization: .none),     // Mamba-2S / simple_gla
    ]
    static let modes: [(PrecisionMode, NumberFormat)] = [(.float16Acc32, .binary16), (.float32, .binary32)]

    func problem(_ spec: CoreSpec, seed: UInt64, scale: Double? = nil) -> CoreProblem {
        CoreProblem.random(spec: spec, batch: 1, heads: 2, length: 48, keyDim: 8, valueDim: 8, scale: scale, seed: seed)
    }

    @Test(arguments: cores)
    func correctFormsPass(spec: CoreSpec) throws {
        for seed in UInt64(1)...2 {
            let p = problem(spec, seed: seed)
            let reference = try Reference.quadratic(p)
            let shape = [p.batch, p.heads, p.length, p.valueDim]
            for (mode, format) in Self.modes {
                let options = KernelOptions(chunkSize: 16, tileSize: 16)
                let quadratic = try CoreKernels.run(p, form: .quadratic, mode: mode, options: options).o
                let recurrent = try CoreKernels.run(p, form: .recurrent, mode: mode, options: options).o
                var candidates: [(KernelForm, [Double])] = [(.chunked, try CoreKernels.run(p, form: .chunked, mode: mode, options: options).o)]
                if spec.normalization == .sum {
                    candidates.append((.tiled, try CoreKernels.run(p, form: .tiled, mode: mode, options: options).o))
                }
                for (form, candidate) in candidates {
                    let verdict = try VerdictPolicy.standard.judge(candidate: candidate, reference: reference,
                                                                   baselines: [quadratic, recurrent], shape: shape, format: format)
                    #expect(verdict.passed, "\(spec) \(form) \(mode) seed \(seed): \(verdict.reason)")
                    let metrics = try TensorMetrics(candidate: candidate, reference: reference, shape: shape, format: format)
                    #expect(metrics.nonFiniteCount == 0 && metrics.worst.first?.condition != nil)
                }
            }
        }
    }

    @Test(arguments: cores)
    func damagedOutputsFail(spec: CoreSpec) throws {
        let p = problem(spec, seed: 7)
        let reference = try Reference.quadratic(p)
        let shape = [p.batch, p.heads, p.length, p.valueDim]
        let options = KernelOptions(chunkSize: 16, tileSize: 16)
        let baseline = try CoreKernels.run(p, form: .quadratic, mode: .float16Acc32, options: options).o
        let good = try CoreKernels.run(p, form: .chunked, mode: .float16Acc32, options: options).o
        func judge(_ candidate: [Double]) throws -> Verdict {
            try VerdictPolicy.standard.judge(candidate: candidate, reference: reference, baselines: [baseline],
                                             shape: shape, format: .binary16)
        }
        #expect(try judge(good).passed)

        // Dropped last chunk: the last 16 tokens of every head never written (zero).
        var dropped = good
        for h in 0..<p.heads {
            for t in (p.length - 16)..<p.length {
                for c in 0..<p.valueDim { dropped[(h * p.length + t) * p.valueDim + c] = 0 }
            }
        }
        let droppedVerdict = try judge(dropped)
        #expect(!droppedVerdict.passed && droppedVerdict.failingCount > p.heads * 16 * p.valueDim / 2,
                "\(droppedVerdict.reason)")

        // One row's output shifted to the next token (an off-by-one in the output index).
        var shifted = good
        for c in 0..<p.valueDim { shifted[5 * p.valueDim + c] = good[4 * p.valueDim + c] }
        #expect(try !judge(shifted).passed)

        // A NaN from uninitialised memory.
        var poisoned = good
        poisoned[123] = .nan
        #expect(try judge(poisoned).nonFiniteCount == 1)

        // Scale applied twice: changes un-normalised outputs by the factor s; cancels under sum normalisation.
        let twice = try CoreKernels.run(problem(spec, seed: 7, scale: p.scale * p.scale), form: .chunked,
                                        mode: .float16Acc32, options: options).o
        #expect(try judge(twice).passed == (spec.normalization == .sum))
    }
}
