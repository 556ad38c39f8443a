import ArgumentParser
import Foundation
import MambaKernels
import MambaVariants
import MambaVerification

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Measure the verdict: correct kernels must pass, planted bugs must fail (Proofs/T9).",
        discussion: """
            For each core and declared arithmetic, judges MambaCheck's kernels in forms and settings the default \
            baselines do not use (chunk sizes 16/32/128/256, tiled, recurrent, full second-order state, base-2 \
            exponents from prefix sums) — each must pass — and planted bugs sized at a multiple of the baselines' \
            own error — each must fail. Prints the share of the allowance each candidate used and the detection \
            floor relative to the baselines' relative error. Exit 1 if any candidate is judged unexpectedly.

            Examples:
              mambacheck calibrate --core squared-decay-sum --arith tf32 --length 1024 --dim 64
              mambacheck calibrate --length 256 --dim 32 --seeds 3
              mambacheck calibrate --gradients --core squared-decay-sum --arith bf16 --length 256
            """)

    @Option(help: "Core name (default: every core).") var core: [String] = []
    @Option(help: "Declared arithmetic profile (default: every profile).") var arith: [String] = []
    @Option(help: "Sequence length N.") var length: Int = 256
    @Option(help: "dk = dv.") var dim: Int = 32
    @Option(help: "Seeds per problem (first, first+1, …).") var seeds: Int = 1
    @Option(help: "First seed.") var seed: UInt64 = 1
    @Flag(help: "Also hand the decay as prefix sums (A_cumsum).") var prefixSums = false
    @Flag(help: "Print every candidate, not only the unexpected ones.") var verbose = false
    @Flag(help: "Calibrate the gradient verdict instead: correct backward kernels pass, planted gradient bugs fail.")
    var gradients = false
    @Option(help: "Write inputs and every candidate as tensor files under DIR/<core>-<arith>-<a|L>-<seed>/ (bhnd).")
    var dump: String?

    func run() throws {
        let cores = try core.isEmpty ? CoreSpec.all : core.map { try resolveCore($0).0 }
        let profiles = try arith.isEmpty ? DeclaredArithmetic.profiles.map(\.arithmetic) : arith.map {
            guard let a = DeclaredArithmetic.named($0) else { throw ValidationError("unknown --arith \($0)") }
            return a
        }
        var unexpected = 0, total = 0
        var maxCorrectShare: [String: Double] = [:], minBugShare: [String: Double] = [:]
        print("core | arith | L | seed | baseline rel err | uniform floor/err | row floor/err | row floor/E_b | min row floor/E_b | worst correct share | weakest bug share")
        for spec in cores {
            for a in profiles {
                for s in 0..<Swift.max(1, seeds) {
                    let seed = self.seed + UInt64(s)
                    for ps in prefixSums && spec.hasDecay && !gradients ? [false, true] : [false] {
                        var dir: String? = nil
                        if let dump {
                            dir = "\(dump)/\(spec.name)-\(a.name)-\(ps ? "L" : "a")-\(seed)"
                            try FileManager.default.createDirectory(atPath: dir!, withIntermediateDirectories: true)
                        }
                        let o = gradients
                            ? try Calibration.runGradients(spec: spec, arithmetic: a, length: length, dim: dim, seed: seed)
                            : try Calibration.run(spec: spec, arithmetic: a, length: length, dim: dim,
                                                  seed: seed, prefixSums: ps, dumpDirectory: dir)
                        let correct = o.rows.filter(\.correct), bugs = o.rows.filter { !$0.correct }
                        let wc = correct.map(\.share).max() ?? 0, wb = bugs.map(\.share).min() ?? .infinity
                        maxCorrectShare[a.name] = Swift.max(maxCorrectShare[a.name] ?? 0, wc)
                        minBugShare[a.name] = Swift.min(minBugShare[a.name] ?? .infinity, wb)
                        print("\(spec.name) | \(a.name) | \(ps ? "L" : "a") | \(seed) | \(g(o.baselineRelativeError)) | \(g(o.uniformFloorRatio)) | \(g(o.rowFloorRatio)) | \(g(o.rowFloorOverNormwise)) | \(g(o.rowFloorMinOverNormwise)) | \(g(wc)) | \(g(wb))")
                        for r in o.rows where verbose || !r.asExpected {
                            print("    \(r.asExpected ? "  " : "!!") \(r.candidate): \(r.passed ? "pass" : "FAIL") share \(g(r.share))\(r.worstTensor.isEmpty ? "" : " on \(r.worstTensor)") (element \(g(r.elementShare)), row \(g(r.rowShare)), norm \(g(r.normShare)))")
                        }
                        unexpected += o.rows.filter { !$0.asExpected }.count
                        total += o.rows.count
                    }
                }
            }
        }
        print("\nper profile: worst share used by a correct kernel / smallest share reached by a planted bug")
        for a in profiles { print("  \(a.name): \(g(maxCorrectShare[a.name] ?? 0)) / \(g(minBugShare[a.name] ?? .infinity))") }
        print("\(total - unexpected) passed, \(unexpected) failed")
        if unexpected > 0 { throw ExitCode(1) }
    }

    func g(_ x: Double) -> String { String(format: "%.3g", x) }
}
