import Benchmark
import MambaKernels
import MambaVariants

/// Wall-clock benchmarks of the optimized cores (one head, dk = dv = 64,
/// Float32 inputs, paper distribution): the chunked 2Mamba core over N
/// (linear scaling), its precision modes at N = 16,384, the recurrent form's
/// token rate, and a 2Mamba block. `KernelBenchmark.run` (used by
/// `mambacheck bench`) adds GFLOP/s and the sgemm roof.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        maxDuration: .seconds(10),
        maxIterations: 10
    )
    let twoMamba = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)

    for n in [1024, 4096, 16_384, 65_536] {
        let p = CoreProblem.random(spec: twoMamba, length: n, keyDim: 64, valueDim: 64, seed: 42)
        Benchmark("2mamba chunked float32 N=\(n)", configuration: .init(maxIterations: n >= 65_536 ? 3 : 10)) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try CoreKernels.run(p, form: .chunked, mode: .float32))
            }
        }
    }

    let p16k = CoreProblem.random(spec: twoMamba, length: 16_384, keyDim: 64, valueDim: 64, seed: 42)
    for mode in [PrecisionMode.float16Acc32, .bfloat16Acc32, .tf32, .float16] {
        Benchmark("2mamba chunked \(mode.rawValue) N=16384", configuration: .init(maxIterations: 3)) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try CoreKernels.run(p16k, form: .chunked, mode: mode))
            }
        }
    }

    let p2k = CoreProblem.random(spec: twoMamba, length: 2048, keyDim: 64, valueDim: 64, seed: 42)
    Benchmark("2mamba recurrent float32 N=2048", configuration: .init(maxIterations: 5)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try CoreKernels.run(p2k, form: .recurrent, mode: .float32))
        }
    }
    for form in [KernelForm.quadratic, .tiled] {
        Benchmark("2mamba \(form.rawValue) float32 N=2048", configuration: .init(maxIterations: 5)) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try CoreKernels.run(p2k, form: form, mode: .float32))
            }
        }
    }

    let block = BlockProblem.random(variant: .twoMamba, length: 2048, modelDim: 256, heads: 4, headDim: 64, seed: 1)
    Benchmark("2mamba block chunked float32 N=2048 d=256 H=4", configuration: .init(maxIterations: 5)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try BlockKernels.run(block, form: .chunked, mode: .float32))
        }
    }
}
