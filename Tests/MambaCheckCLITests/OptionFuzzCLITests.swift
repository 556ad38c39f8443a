import Foundation
import MambaVariants
import Testing

/// The command-line parser and option validation under random argument
/// vectors (issue 15): no vector crashes the tool (a trap or signal would
/// show as an exit status other than 0, 1, 2), every refusal is a usage or
/// input error with exit 2 and a message on stderr, never exit 1 (that is a
/// verification failure) and never a Swift runtime error.
///
/// Vectors are seeded mutations of cheap valid command lines of every
/// subcommand (so that a vector still valid after mutation finishes in
/// seconds): values replaced by hazards (empty, negative, zero, NaN, ±Inf,
/// 10³⁰⁹, 2⁶⁴, a 5,000-character string, a missing path, `/`, non-ASCII),
/// elements dropped, duplicated, swapped, options inserted from every
/// command's vocabulary, unknown options, truncation. Vector `i` depends on
/// `(seed, i)` alone; a failure prints the vector to rerun it.
/// `MAMBACHECK_CLI_FUZZ_EXECUTIONS` (default 120) and `MAMBACHECK_CLI_FUZZ_SEED` set the run.
@Suite(.serialized)
struct OptionFuzzCLITests {
    static let hazards = ["", "-1", "0", "1", "nan", "inf", "-inf", "1e309", "18446744073709551616", "0x10", "1.5",
                          "-", "--", "=", "{inputs}", "/", "/nonexistent/dir/file.npz", "é∂", "a,b", "1/0",
                          String(repeating: "9", count: 5000), "2mamba", "float32", "quick", "bhnd"]
    static let options = ["--variant", "--arith", "--inputs", "--candidate", "--output", "--layout", "--format",
                          "--precision", "--scale", "--scale-as", "--json", "--junit", "--markdown", "--out", "--level",
                          "--seed", "--lengths", "--precisions", "--head-dim", "--chunk-size", "--shard", "--jobs",
                          "--probe", "--budget", "--max-cases", "--max-length", "--max-width", "--property", "--replay",
                          "--exec", "--factor", "--row-factor", "--norm-factor", "--ulp-allowance", "--bound-factor",
                          "--curve", "--grads", "--quick", "--full", "--bogus", "-x", "--help"]

    /// Cheap valid command lines, one per subcommand family (paths under `dir`).
    static func bases(_ dir: URL, _ i: Int) -> [[String]] {
        let fixtures = CLI.packageRoot.appendingPathComponent("Fixtures").path
        let inputs = fixtures + "/core-linear-decay-none.inputs.npz"
        let candidate = fixtures + "/core-linear-decay-none.reference.npz"
        let fresh = dir.appendingPathComponent("v\(i)").path
        return [
            ["variants"],
            ["compare", "--variant", "linear-decay-none", "--inputs", inputs, "--candidate", candidate, "--layout", "bhnd"],
            ["reference", "--variant", "linear-decay-none", "--inputs", inputs, "--output", fresh + ".npz",
             "--precision", "64"],
            ["suite", "generate", "--variant", "mamba2", "--arith", "float32", "--level", "quick", "--out", fresh],
            ["suite", "judge", fresh, "--jobs", "1"],
            ["sweep", "--variant", "mamba2", "--lengths", "8", "--precisions", "8", "--head-dim", "4", "--out", fresh],
            ["fuzz", "--variant", "mamba2", "--arith", "float32", "--exec", "false {inputs} {outputs}",
             "--max-cases", "1", "--max-length", "8", "--max-width", "16", "--out", fresh],
        ]
    }

    static func vector(_ i: Int, seed: UInt64, dir: URL) -> [String] {
        var g = SeededGenerator(seed: seed ^ (UInt64(i) &* 0x9E37_79B9_7F4A_7C15) ^ 0xC11)
        func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(g.next() % UInt64(n)) }
        let bases = bases(dir, i)
        var v = bases[below(bases.count)]
        for _ in 0..<(1 + below(3)) {
            switch below(7) {
            case 0, 1:   // a value (or any element but the subcommand) replaced by a hazard
                if v.count > 1 { v[1 + below(v.count - 1)] = hazards[below(hazards.count)] }
            case 2:      // an element dropped
                if v.count > 1 { v.remove(at: 1 + below(v.count - 1)) }
            case 3:      // an option inserted, with a hazard value
                let at = 1 + below(v.count)
                v.insert(contentsOf: [options[below(options.count)], hazards[below(hazards.count)]], at: Swift.min(at, v.count))
            case 4:      // an element duplicated
                let j = below(v.count)
                v.insert(v[j], at: j)
            case 5:      // two elements swapped
                if v.count > 2 { v.swapAt(1 + below(v.count - 1), 1 + below(v.count - 1)) }
            default:     // truncated
                if v.count > 1 { v = Array(v.prefix(1 + below(v.count - 1))) }
            }
        }
        // --help prints and exits 0 whatever else the vector holds; keep vectors that exercise validation.
        return v.filter { $0 != "--help" }
    }

    @Test func randomArgumentVectorsNeverCrashAndAreRefusedWithExit2() throws {
        let env = ProcessInfo.processInfo.environment
        let executions = env["MAMBACHECK_CLI_FUZZ_EXECUTIONS"].flatMap(Int.init) ?? 120
        let seed = env["MAMBACHECK_CLI_FUZZ_SEED"].flatMap(UInt64.init) ?? 11
        let dir = try CLI.temporaryDirectory("option-fuzz")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A campaign for `suite judge` to find (its outputs missing: an input error when unmutated).
        #expect(try CLI.run(["suite", "generate", "--variant", "mamba2", "--arith", "float32", "--level", "quick",
                             "--out", dir.appendingPathComponent("v-judge").path]).status == 0)
        var statuses: [Int32: Int] = [:]
        for i in 0..<executions {
            var v = Self.vector(i, seed: seed, dir: dir)
            if v.first == "suite", v.dropFirst().first == "judge" {
                v = v.map { $0 == dir.appendingPathComponent("v\(i)").path ? dir.appendingPathComponent("v-judge").path : $0 }
            }
            let r = try CLI.run(v, in: dir)
            statuses[r.status, default: 0] += 1
            let replay = "MAMBACHECK_CLI_FUZZ_SEED=\(seed), execution \(i): mambacheck \(v.map { "'\($0.prefix(80))'" }.joined(separator: " "))"
            #expect([0, 1, 2].contains(r.status), "crash or unknown exit status — \(replay)\n\(r)")
            for bad in ["Fatal error", "Swift runtime failure", "Stack dump", "Illegal instruction"] {
                #expect(!r.stderr.contains(bad), "\(bad) — \(replay)\n\(r)")
            }
            if r.status == 2 {
                // (notes may come first, e.g. that a preset is judged by its core)
                let said = r.stderr.split(separator: "\n").contains { $0.lowercased().hasPrefix("error") && $0.count > 8 }
                #expect(said, "exit 2 without an error message — \(replay)\n\(r)")
            }
            // Exit 1 is a verification failure: only a command that judged something may say so.
            if r.status == 1 {
                #expect(["compare", "suite", "fuzz"].contains(v[0]), "exit 1 from \(v[0]) — \(replay)\n\(r)")
            }
        }
        // The vectors reach validation: most are refused.
        #expect((statuses[2] ?? 0) > executions / 2, "\(statuses)")
    }
}
