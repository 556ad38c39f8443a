import Foundation
import Testing
import MambaVerification

/// `mambacheck suite` and `mambacheck fuzz` end to end, with the numpy
/// reference runner (python/mambacheck_reference_runner.py) as the user's
/// kernel: correct, and with each planted bug. Needs Debian's
/// /usr/bin/python3 with numpy (scripts/ensure-deps installs python3-numpy).
/// Proofs/T12-suite-properties.md names these tests.
@Suite(.serialized)
struct SuiteCLITests {
    static let python = "/usr/bin/python3"
    static let runner = CLI.packageRoot.appendingPathComponent("python/mambacheck_reference_runner.py").path

    /// Runs the reference runner over a campaign folder.
    static func runCampaign(_ dir: URL, bug: String? = nil) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [runner] + (bug.map { ["--bug", $0] } ?? []) + ["--campaign", dir.path]
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "the reference runner failed (is numpy installed for \(python)? run scripts/ensure-deps)")
    }

    static func results(_ json: URL) throws -> [(property: String, status: String, probe: String)] {
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [String: Any]
        return (doc["results"] as! [[String: Any]]).map {
            ($0["property"] as! String, $0["status"] as! String, $0["probe"] as! String)
        }
    }

    static func exec(core: String, bug: String?) -> String {
        "\(python) \(runner) --core \(core)" + (bug.map { " --bug \($0)" } ?? "") + " {inputs} {outputs}"
    }

    @Test func correctRunnerPassesEveryProperty() throws {
        let dir = try CLI.temporaryDirectory("suite-correct")
        defer { try? FileManager.default.removeItem(at: dir) }
        let campaign = dir.appendingPathComponent("campaign")
        let g = try CLI.run(["suite", "generate", "--variant", "2mamba", "--arith", "float32", "--level", "quick",
                             "--seed", "1", "--out", campaign.path])
        #expect(g.status == 0, "\(g)")
        try Self.runCampaign(campaign)
        let json = dir.appendingPathComponent("r.json"), junit = dir.appendingPathComponent("r.xml")
        let r = try CLI.run(["suite", "judge", campaign.path, "--json", json.path, "--junit", junit.path])
        #expect(r.status == 0, "\(r)")
        let rows = try Self.results(json)
        for p in SuiteProperty.allCases {
            let mine = rows.filter { $0.property == p.rawValue }
            #expect(!mine.isEmpty && mine.allSatisfy { $0.status == "pass" }, "\(p.rawValue): \(mine)")
        }
        // Same campaign and outputs: byte-identical reports, whatever the number of workers.
        let again = dir.appendingPathComponent("again.json")
        let r2 = try CLI.run(["suite", "judge", campaign.path, "--json", again.path, "--jobs", "1",
                              "--probe", "causality-c008", "--probe", "determinism-c008"])
        #expect(r2.status == 0, "\(r2)")
        let r3 = try CLI.run(["suite", "judge", campaign.path, "--json", json.path, "--jobs", "2",
                              "--probe", "causality-c008", "--probe", "determinism-c008"])
        #expect(r3.status == 0)
        #expect(try Data(contentsOf: json) == Data(contentsOf: again))
    }

    @Test func nondeterministicRunnerIsFlaggedByTheDeterminismProbe() throws {
        let dir = try CLI.temporaryDirectory("suite-nondet")
        defer { try? FileManager.default.removeItem(at: dir) }
        let campaign = dir.appendingPathComponent("campaign")
        #expect(try CLI.run(["suite", "generate", "--variant", "2mamba", "--arith", "float32", "--level", "quick",
                             "--seed", "1", "--out", campaign.path]).status == 0)
        try Self.runCampaign(campaign, bug: "nondeterministic")
        let json = dir.appendingPathComponent("r.json")
        // Determinism probes only: the noise (up to 2^16 ulps) may break causality and accuracy too.
        let r = try CLI.run(["suite", "judge", campaign.path, "--json", json.path, "--probe", "determinism-c008",
                             "--probe", "determinism-c014"])
        #expect(r.status == 1, "\(r)")
        let rows = try Self.results(json)
        #expect(rows.filter { $0.property == "determinism" }.allSatisfy { $0.status == "fail" })
        #expect(r.stdout.contains("SMALLEST FAILING CASE: determinism"))
        #expect(r.stdout.contains("reproduce: mambacheck suite judge"))
    }

    @Test func missingOutputsAreAnInputErrorAndAbsentEntriesAreNotApplicable() throws {
        let dir = try CLI.temporaryDirectory("suite-missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let campaign = dir.appendingPathComponent("campaign")
        #expect(try CLI.run(["suite", "generate", "--variant", "mamba2", "--arith", "float32", "--level", "quick",
                             "--out", campaign.path]).status == 0)
        // Never over an existing campaign.
        let again = try CLI.run(["suite", "generate", "--variant", "mamba2", "--arith", "float32", "--out", campaign.path])
        #expect(again.status == 2 && again.stderr.contains("not empty"), "\(again)")
        let none = try CLI.run(["suite", "judge", campaign.path])
        #expect(none.status == 2 && none.stderr.contains("outputs/c000.npz: missing"), "\(none)")
        try Self.runCampaign(campaign)
        // A runner without a recurrent entry: the forms property is not applicable, never a pass.
        let manifest = try SuiteManifest.read(directory: campaign.path)
        let forms = manifest.probes.filter { $0.property == .chunkedVsRecurrent }
        for p in forms { try FileManager.default.removeItem(at: campaign.appendingPathComponent(manifest.entry(p.cases[1]).outputs)) }
        let json = dir.appendingPathComponent("r.json")
        let r = try CLI.run(["suite", "judge", campaign.path, "--json", json.path] + forms.flatMap { ["--probe", $0.id] })
        #expect(r.status == 0, "\(r)")
        let rows = try Self.results(json)
        #expect(!rows.isEmpty && rows.allSatisfy { $0.status == "not-applicable" }, "\(rows)")
    }

    /// Each planted bug: fuzz finds it, shrinks it and writes a reproducer
    /// under the property it breaks.
    @Test(arguments: [
        ("scale", "mamba2", "accuracy"),
        ("decay-off-by-one", "2mamba", "accuracy"),
        ("drop-last-chunk", "2mamba", "accuracy"),
        ("noncausal", "2mamba", "causality"),
        ("handoff", "2mamba", "state-handoff"),
        ("nondeterministic", "2mamba", "determinism"),
    ])
    func fuzzFindsShrinksAndReportsPlantedBug(_ bug: String, _ variant: String, _ property: String) throws {
        let dir = try CLI.temporaryDirectory("fuzz-\(bug)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("repro")
        let core = variant == "mamba2" ? "linear-decay-none" : "squared-decay-sum"
        let r = try CLI.run(["fuzz", "--variant", variant, "--arith", "float32", "--exec", Self.exec(core: core, bug: bug),
                             "--property", property, "--seed", "5", "--max-cases", "3", "--budget", "120",
                             "--max-length", "150", "--max-width", "32", "--out", out.path])
        #expect(r.status == 1, "\(r)")
        let folder = out.appendingPathComponent(property)
        let verdict = try String(contentsOf: folder.appendingPathComponent("verdict.txt"), encoding: .utf8)
        #expect(verdict.contains("property: \(property)") && verdict.contains("verdict: FAIL"))
        let readme = try String(contentsOf: folder.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains("--replay '") && readme.contains("--property \(property)"))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("inputs.npz").path))
        // Shrunk: the minimal case is no larger than the first failure, and small.
        let path = verdict.components(separatedBy: "shrinking path:\n")[1].split(separator: "\n")
            .compactMap { CaseConfig(spec: $0.trimmingCharacters(in: .whitespaces)) }
        let first = try #require(path.first), last = try #require(path.last)
        #expect(last.size <= first.size)
        #expect(last.length <= 64, "minimal case \(last.spec)")
        // The printed rerun line fails again on the minimal case.
        let replay = try CLI.run(["fuzz", "--variant", variant, "--arith", "float32", "--exec", Self.exec(core: core, bug: bug),
                                  "--property", property, "--replay", last.spec])
        #expect(replay.status == 1, "\(replay)")
    }

    @Test func fuzzPassesTheCorrectRunner() throws {
        let dir = try CLI.temporaryDirectory("fuzz-correct")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["fuzz", "--variant", "2mamba", "--arith", "float32",
                             "--exec", Self.exec(core: "squared-decay-sum", bug: nil), "--seed", "5", "--max-cases", "2",
                             "--budget", "120", "--max-length", "150", "--max-width", "32",
                             "--out", dir.appendingPathComponent("repro").path])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("case 0 [") && r.stdout.contains("PASS"))
    }

    @Test func fuzzRejectsBadArguments() throws {
        let r = try CLI.run(["fuzz", "--variant", "2mamba", "--arith", "float32", "--exec", "true"])
        #expect(r.status == 2 && r.stderr.contains("{inputs}"), "\(r)")
        let s = try CLI.run(["fuzz", "--variant", "2mamba", "--arith", "float32", "--exec", "x {inputs} {outputs}",
                             "--replay", "n=3"])
        #expect(s.status == 2 && s.stderr.contains("--replay"), "\(s)")
    }
}
