import ArgumentParser
import COpenBLAS
import Foundation
import MambaBenchmarks
import MambaKernels
import MambaOracle
import MambaVariants

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a kernel (or the MPFR oracle) in-process: median of several runs after a warm-up.",
        discussion: """
            Reports seconds, GFLOP/s and, in the same run, cblas_sgemm GFLOP/s on a matching size (the roof). \
            --form reference times the MPFR oracle's quadratic form at --precision bits and, in the same run \
            (runs alternating), the certified oracle starting at --precision bits (Proofs/T7), and prints the ratio; \
            --form reference-grad does the same for the gradient oracle and the certified gradients.

            Examples:
              mambacheck bench --variant 2mamba --form chunked --mode float32 --length 16384 --head-dim 64
              mambacheck bench --variant 2mamba --form reference --length 1024 --head-dim 64 --precision 128
            """)

    @Option(help: "Preset or core name.") var variant: String = "2mamba"
    @Option(help: "quadratic, chunked, recurrent, tiled, reference (MPFR oracle) or reference-grad (its gradients).") var form: String = "chunked"
    @Option(help: "float32, float16-acc32, float16, bfloat16-acc32, tf32.") var mode: String = "float32"
    @Option(help: "Sequence length N.") var length: Int = 16_384
    @Option(help: "Head width dk = dv.") var headDim: Int = 64
    @Option(help: "Heads (kernels: timed with the same harness, one batch).") var heads: Int = 1
    @Option(help: "Chunk size of the chunked form.") var chunkSize: Int = 64
    @Option(help: "Timed runs (median reported).") var runs: Int = 5
    @Option(help: "OpenBLAS threads during the measurement.") var threads: Int = 1
    @Option(help: "MPFR precision for --form reference.") var precision: Int = 128
    @Option(help: "Write the result as JSON here.") var json: String?
    @Flag(help: "With --form reference, also compute the final state (both oracles: p-bit and certified).")
    var finalState = false

    /// The oracle's precision range applies to `--form reference` too (GMP aborts on absurd sizes).
    func validate() throws { try OracleArguments.validate(precision: precision, scale: nil) }

    func run() throws {
        try OutputPaths.check([("--json", json)])
        let (core, _) = try resolveCore(variant)
        print(BLASCore.summary(threads: form == "reference" ? nil : threads))
        // Numbers are JSON numbers; strings only for names.
        var result: [String: Any] = [
            "variant": variant, "core": core.name, "form": form, "length": length, "headDim": headDim,
            "heads": heads, "threads": threads,
            "blasCore": BLASCore.inUse, "blasCoreDetected": BLASCore.detected,
            "blasCoreChoice": BLASCore.action.rawValue,
            "OPENBLAS_CORETYPE": ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? NSNull(),
        ]
        if form == "reference" {
            let p = CoreProblem.random(spec: core, heads: heads, length: length, keyDim: headDim, valueDim: headDim,
                                       seed: 42)
            _ = try Reference.quadratic(CoreProblem.random(spec: core, length: min(length, 64), keyDim: headDim,
                                                           valueDim: headDim, seed: 1), precision: precision)
            var samples: [Double] = [], certifiedSamples: [Double] = []
            var summary = ""
            for _ in 0..<max(1, min(runs, 3)) {
                let t0 = Date()
                _ = try Reference.quadratic(p, precision: precision, finalState: finalState)
                samples.append(Date().timeIntervalSince(t0))
                let t1 = Date()
                let c = try Reference.certified(p, precision: precision, maxPrecision: max(4096, precision))
                let st = finalState ? try Reference.certifiedFinalState(p, precision: precision, maxPrecision: max(4096, precision)) : nil
                certifiedSamples.append(Date().timeIntervalSince(t1))
                var parts = [(name: "o", values: c)]
                if let st { parts.append(("final_state", st.s)); if let z = st.z { parts.append(("final_state_z", z)) } }
                summary = CertifiedOutput.summary(parts)
            }
            let median = samples.sorted()[samples.count / 2]
            let certifiedMedian = certifiedSamples.sorted()[certifiedSamples.count / 2]
            print("MPFR oracle \(core.name) quadratic N=\(length) dk=dv=\(headDim) heads=\(heads) precision=\(precision)"
                  + (finalState ? " with final state" : "") + ": median \(String(format: "%.3f", median)) s")
            print("certified oracle, same problem: median \(String(format: "%.3f", certifiedMedian)) s "
                  + "(\(String(format: "%.2f", certifiedMedian / median))× the \(precision)-bit oracle); \(summary)")
            result["precision"] = precision
            result["seconds"] = median
            result["certifiedSeconds"] = certifiedMedian
        } else if form == "reference-grad" {
            // The analytic gradient oracle at --precision bits vs the certified gradients, runs alternating.
            let p = CoreProblem.random(spec: core, heads: heads, length: length, keyDim: headDim, valueDim: headDim,
                                       seed: 42)
            let g = GradientProblem.random(core: p, seed: 42)
            var samples: [Double] = [], certifiedSamples: [Double] = []
            var summary = ""
            for _ in 0..<max(1, min(runs, 3)) {
                let t0 = Date()
                _ = try Reference.gradients(g, precision: precision)
                samples.append(Date().timeIntervalSince(t0))
                let t1 = Date()
                let c = try Reference.certifiedGradients(g, precision: precision, maxPrecision: max(4096, precision))
                certifiedSamples.append(Date().timeIntervalSince(t1))
                summary = c.gradients.summary
            }
            let median = samples.sorted()[samples.count / 2]
            let certifiedMedian = certifiedSamples.sorted()[certifiedSamples.count / 2]
            print("MPFR gradient oracle \(core.name) N=\(length) dk=dv=\(headDim) heads=\(heads) precision=\(precision): median \(String(format: "%.3f", median)) s")
            print("certified gradients, same problem: median \(String(format: "%.3f", certifiedMedian)) s "
                  + "(\(String(format: "%.2f", certifiedMedian / median))× the \(precision)-bit gradient oracle); \(summary)")
            result["precision"] = precision
            result["seconds"] = median
            result["certifiedSeconds"] = certifiedMedian
        } else {
            guard let f = KernelForm(rawValue: form) else { throw ValidationError("unknown --form \(form)") }
            guard let m = PrecisionMode(rawValue: mode) else { throw ValidationError("unknown --mode \(mode)") }
            let options = KernelOptions(chunkSize: chunkSize)
            if heads == 1 {
                let r = try KernelBenchmark.run(spec: core, form: f, mode: m, length: length, keyDim: headDim,
                                                valueDim: headDim, options: options, runs: runs, threads: threads)
                print(r.description)
                result["seconds"] = r.seconds
                result["cpuSeconds"] = r.cpuSeconds
                result["gflops"] = r.gflops
                result["sgemmGflops"] = r.sgemmGflops
                result["fractionOfSgemm"] = r.fractionOfSgemm
                result["tokensPerSecond"] = r.tokensPerSecond
                result["kernelThreads"] = r.kernelThreads
                result["stateElements"] = r.stateElements.map { $0 as Any } ?? NSNull() // null: a KV cache, no fixed state
            } else {
                openblas_set_num_threads(Int32(threads))
                let p = CoreProblem.random(spec: core, heads: heads, length: length, keyDim: headDim,
                                           valueDim: headDim, seed: 42)
                _ = try CoreKernels.run(p, form: f, mode: m, options: options)
                var samples: [Double] = []
                for _ in 0..<max(1, runs) {
                    let t0 = Date()
                    _ = try CoreKernels.run(p, form: f, mode: m, options: options)
                    samples.append(Date().timeIntervalSince(t0))
                }
                let median = samples.sorted()[samples.count / 2]
                let flops = KernelBenchmark.flopCount(spec: core, form: f, length: length, keyDim: headDim,
                                                      valueDim: headDim, options: options) * Double(heads)
                print("\(core.name) \(f.rawValue) \(m.rawValue) N=\(length) heads=\(heads): median \(String(format: "%.4f", median)) s, \(String(format: "%.2f", flops / median / 1e9)) GFLOP/s")
                result["seconds"] = median
                result["gflops"] = flops / median / 1e9
            }
            result["mode"] = mode
        }
        if let json {
            var data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
            data.append(0x0A)
            try AtomicFileWriter.write(data, to: json)
        }
    }
}
