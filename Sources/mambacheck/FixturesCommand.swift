import ArgumentParser
import Foundation
import MambaVerification

struct FixturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fixtures",
        abstract: "Golden vectors: oracle outputs for every core and base preset, for kernels in any language.",
        discussion: """
            generate writes, per case, Float32 inputs (.inputs.npz), Float64 \
            oracle outputs (.reference.npz), the same outputs as 50-digit \
            decimal strings (.reference.txt), and manifest.json (shapes, seeds, \
            precision, layout, variant, SHA-256 of every file): every core at \
            kernel level and every base preset at block level, oracle at 256 bits. \
            check verifies every hash and recomputes every oracle output from the \
            stored inputs; exit 1 on any mismatch. Fixtures/README.md shows how \
            to use the set from Python with NumPy only.

            Examples:
              mambacheck fixtures generate --dir Fixtures
              mambacheck fixtures check --dir Fixtures
            """,
        subcommands: [Generate.self, Check.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate", abstract: "Write the golden-vector set into --dir (atomically, file by file).")

        @Option(help: "Directory of the set.") var dir: String = "Fixtures"
        @Option(help: "Base seed of the cases.") var seed: UInt64 = FixtureOptions().seed

        func run() throws {
            var options = FixtureOptions()
            options.seed = seed
            let progress = ProgressBar(label: "fixtures")
            let manifest = try FixtureSet.generate(into: dir, options: options,
                                                   generator: "mambacheck \(MambaCheckVersion.string)") {
                progress.update($0, of: $1, item: $2)
            }
            progress.finish()
            let bytes = manifest.files.reduce(0) { $0 + $1.bytes }
            print("wrote \(manifest.cases.count) cases, \(manifest.files.count) files (\(bytes / 1024) KiB) and "
                  + "\(FixtureManifest.fileName) to \(dir), oracle at \(manifest.precision) bits")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Verify hashes and recompute every oracle output of the set in --dir; exit 1 on a mismatch.")

        @Option(help: "Directory of the set.") var dir: String = "Fixtures"

        func run() throws {
            try Self.requireFixtureSet(dir)
            let progress = ProgressBar(label: "fixtures check")
            let report: FixtureCheckReport
            do {
                report = try FixtureSet.check(directory: dir) { progress.update($0, of: $1, item: $2) }
            } catch let e as FixtureError {
                progress.finish()
                throw InputProblem(description: e.description)
            }
            progress.finish()
            for c in report.cases {
                print("\(c.passed ? "ok  " : "FAIL") \(c.name) (\(c.elementCount) values)")
            }
            if !report.passed {
                let problems = report.problems
                var lines = ["FAIL: \(problems.count) problem(s) in \(dir):"]
                lines += problems.prefix(40).map { "  " + $0 }
                throw VerificationFailed(description: lines.joined(separator: "\n"))
            }
            print("PASS: \(report.cases.count) cases reproduce bit for bit; every SHA-256 matches")
        }

        /// A clear input error (exit 2) when `dir` is not a fixture set — the
        /// default `Fixtures` is relative, so running outside the repository
        /// used to surface Foundation's raw "NSCocoaErrorDomain Code=260".
        static func requireFixtureSet(_ dir: String) throws {
            let absolute = URL(fileURLWithPath: dir).standardizedFileURL.path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw InputProblem(description: "no fixture directory at \(absolute) (--dir \(dir)); run from the "
                                   + "repository root, whose Fixtures/ holds the set, or pass --dir PATH")
            }
            guard FileManager.default.fileExists(atPath: dir + "/" + FixtureManifest.fileName) else {
                throw InputProblem(description: "\(absolute) holds no \(FixtureManifest.fileName), so it is not a fixture "
                                   + "set; pass --dir with the directory `mambacheck fixtures generate` wrote")
            }
        }
    }
}
