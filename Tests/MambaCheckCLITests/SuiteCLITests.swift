import Foundation
import Testing
import MambaTensors
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

    /// bfloat16 campaigns use .safetensors (NumPy has no bfloat16): the files
    /// are written so, the NumPy-only runner template reads them and writes its
    /// outputs in BF16, the judge passes the correct runner and fails the
    /// planted scale bug; `fuzz` (same files) passes the correct runner too.
    @Test func bfloat16CampaignRunsThroughSafetensors() throws {
        let dir = try CLI.temporaryDirectory("suite-bf16")
        defer { try? FileManager.default.removeItem(at: dir) }
        let arith = "bfloat16-acc32+state=bfloat16"
        func campaign(_ name: String, bug: String?) throws -> CLI.Result {
            let c = dir.appendingPathComponent(name)
            let g = try CLI.run(["suite", "generate", "--variant", "mamba2", "--arith", arith, "--level", "quick",
                                 "--seed", "2", "--out", c.path])
            try #require(g.status == 0, "\(g)")
            let inputs = try FileManager.default.contentsOfDirectory(atPath: c.appendingPathComponent("inputs").path)
            #expect(!inputs.isEmpty && inputs.allSatisfy { $0.hasSuffix(".safetensors") }, "\(inputs)")
            try Self.runCampaign(c, bug: bug)
            let o = try TensorFile.read(c.appendingPathComponent("outputs/c000.safetensors").path)
            #expect(o["o"]?.dtype == .bfloat16, "the runner must store o in bfloat16")
            return try CLI.run(["suite", "judge", c.path])
        }
        let good = try campaign("correct", bug: nil)
        #expect(good.status == 0, "\(good)")
        let bad = try campaign("scale", bug: "scale")
        #expect(bad.status == 1 && bad.stdout.contains("SMALLEST FAILING CASE: accuracy"), "\(bad)")
        let fuzz = try CLI.run(["fuzz", "--variant", "mamba2", "--arith", arith,
                                "--exec", Self.exec(core: "linear-decay-none", bug: nil), "--property", "accuracy",
                                "--seed", "5", "--max-cases", "2", "--budget", "60", "--max-length", "100",
                                "--max-width", "32", "--out", dir.appendingPathComponent("repro").path])
        #expect(fuzz.status == 0, "\(fuzz)")
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

    /// `suite generate --grads`: the inputs carry `do`, the runner returns
    /// dq, dk, dv, da, and the judge checks them against the gradient oracle —
    /// the correct backward passes, one that forgets da's reverse cumulative
    /// sum fails on da alone.
    @Test func gradientCampaignIsJudgedEndToEnd() throws {
        let dir = try CLI.temporaryDirectory("suite-grads")
        defer { try? FileManager.default.removeItem(at: dir) }
        let campaign = dir.appendingPathComponent("campaign")
        let g = try CLI.run(["suite", "generate", "--variant", "2mamba", "--arith", "float32", "--level", "quick",
                             "--seed", "1", "--grads", "--out", campaign.path])
        #expect(g.status == 0, "\(g)")
        let manifest = try SuiteManifest.read(directory: campaign.path)
        #expect(manifest.grads)
        // The runner returns gradients where it starts from zero state: judge those cases' accuracy probes.
        let probes = manifest.probes.filter {
            $0.property == .accuracy && !manifest.entry($0.cases[0]).config.initialState
        }
        #expect(probes.count >= 4)
        func judge(_ bug: String?) throws -> (CLI.Result, [[String: Any]]) {
            try Self.runCampaign(campaign, bug: bug)
            let json = dir.appendingPathComponent("\(bug ?? "correct").json")
            let r = try CLI.run(["suite", "judge", campaign.path, "--json", json.path] + probes.flatMap { ["--probe", $0.id] })
            let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [String: Any]
            return (r, doc["results"] as! [[String: Any]])
        }
        let (ok, rows) = try judge(nil)
        #expect(ok.status == 0, "\(ok)")
        #expect(rows.count == probes.count)
        for row in rows {
            let summary = row["summary"] as! String
            #expect(row["status"] as? String == "pass" && summary.contains("dq, dk, dv, da within the verdict"), "\(row)")
        }
        let (bad, badRows) = try judge("grad-decay")
        #expect(bad.status == 1, "\(bad)")
        let failed = badRows.filter { $0["status"] as? String == "fail" }
        #expect(!failed.isEmpty, "\(badRows)")
        for row in failed {
            let summary = row["summary"] as! String
            #expect(summary.hasPrefix("da: ") && !summary.contains("dq: ") && !summary.contains("o: "), "\(row)")
        }
    }

    /// A kernel that does not reset its state at a `cu_seqlens` boundary:
    /// every sequence run alone passes, the packed run fails packed-vs-separate,
    /// and the failure says the packing changed the answer. The empty sequence
    /// (which must hand its own initial state through) fails too.
    @Test func packedBatchLeakIsFoundByPackedVsSeparate() throws {
        let dir = try CLI.temporaryDirectory("suite-varlen")
        defer { try? FileManager.default.removeItem(at: dir) }
        let campaign = dir.appendingPathComponent("campaign")
        #expect(try CLI.run(["suite", "generate", "--variant", "2mamba", "--arith", "float32", "--level", "quick",
                             "--seed", "1", "--out", campaign.path]).status == 0)
        let manifest = try SuiteManifest.read(directory: campaign.path)
        let packed = try #require(manifest.probes.first { $0.property == .packedVsSeparate })
        let lengths = try #require(manifest.entry(packed.cases[0]).config.sequenceLengths)
        #expect(lengths.contains(0) && packed.cases.count == 1 + lengths.filter { $0 > 0 }.count)
        // The packed inputs hold exactly the numbers of the sequences run alone.
        let inputs = try TensorFile.read(campaign.appendingPathComponent(manifest.entry(packed.cases[0]).inputs).path)
        let offsets = try #require(try PackedBatch.offsets(inputs, file: "packed"))
        #expect(offsets == lengths.reduce(into: [0]) { $0.append($0.last! + $1) })
        let parts = try PackedBatch.split(inputs, offsets: offsets, file: "packed").filter { $0["q"]!.shape[2] > 0 }
        for (part, id) in zip(parts, packed.cases.dropFirst()) {
            let alone = try TensorFile.read(campaign.appendingPathComponent(manifest.entry(id).inputs).path)
            #expect(part == alone, "\(id)")
        }
        try Self.runCampaign(campaign, bug: "varlen-leak")
        let alone = manifest.probes.filter { $0.property == .accuracy && packed.cases.dropFirst().contains($0.cases[0]) }
        let json = dir.appendingPathComponent("r.json")
        let r = try CLI.run(["suite", "judge", campaign.path, "--json", json.path, "--probe", packed.id]
                            + alone.flatMap { ["--probe", $0.id] })
        #expect(r.status == 1, "\(r)")
        let rows = try Self.results(json)
        #expect(rows.filter { $0.property == "accuracy" }.count == alone.count)
        #expect(rows.filter { $0.property == "accuracy" }.allSatisfy { $0.status == "pass" }, "\(rows)")
        #expect(rows.contains { $0.property == "packed-vs-separate" && $0.status == "fail" }, "\(rows)")
        #expect(r.stdout.contains("the packing changes the answer"), "\(r)")
        #expect(r.stdout.contains("empty sequence: final_state"), "\(r)")
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

    /// The correct runner with both entry points (`{entry}`): every property
    /// passes, chunked-vs-recurrent included, and the JSON report says so.
    @Test func fuzzPassesTheCorrectRunner() throws {
        let dir = try CLI.temporaryDirectory("fuzz-correct")
        defer { try? FileManager.default.removeItem(at: dir) }
        let exec = "\(Self.python) \(Self.runner) --core squared-decay-sum --entry {entry} {inputs} {outputs}"
        let json = dir.appendingPathComponent("r.json")
        let r = try CLI.run(["fuzz", "--variant", "2mamba", "--arith", "float32", "--exec", exec, "--seed", "5",
                             "--max-cases", "2", "--budget", "120", "--max-length", "150", "--max-width", "32",
                             "--out", dir.appendingPathComponent("repro").path, "--json", json.path])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("case 0 [") && r.stdout.contains("chunked-vs-recurrent pass") && r.stdout.contains("PASS"))
        let rows = try Self.results(json)
        for p in ["accuracy", "causality", "determinism", "state-handoff", "chunked-vs-recurrent"] {
            #expect(rows.filter { $0.property == p }.count == 2, "\(p): \(rows)")
        }
        #expect(rows.filter { $0.status == "fail" }.isEmpty, "\(rows)")
        #expect(rows.contains { $0.property == "packed-vs-separate" && $0.status == "not-applicable" })
    }

    /// `fuzz --json/--junit/--markdown` write the report `suite judge` writes,
    /// the shrunk case first, and the same bytes on a rerun.
    @Test func fuzzWritesReportsLikeSuiteJudge() throws {
        let dir = try CLI.temporaryDirectory("fuzz-reports")
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes: [[Data]] = []
        for run in 0..<2 {
            let files = ["r.json", "r.xml", "r.md"].map { dir.appendingPathComponent("\(run)-\($0)") }
            let r = try CLI.run(["fuzz", "--variant", "2mamba", "--arith", "float32",
                                 "--exec", Self.exec(core: "squared-decay-sum", bug: "noncausal"), "--property", "causality",
                                 "--seed", "5", "--max-cases", "1", "--budget", "120", "--max-length", "150",
                                 "--max-width", "32", "--out", dir.appendingPathComponent("repro\(run)").path,
                                 "--json", files[0].path, "--junit", files[1].path, "--markdown", files[2].path])
            #expect(r.status == 1, "\(r)")
            bytes.append(try files.map { try Data(contentsOf: $0) })
        }
        #expect(bytes[0] == bytes[1])
        let rows = try Self.results(dir.appendingPathComponent("0-r.json"))
        #expect(rows.first.map { $0.probe == "causality-minimal" && $0.status == "fail" } == true, "\(rows)")
        let junit = String(decoding: bytes[0][1], as: UTF8.self), md = String(decoding: bytes[0][2], as: UTF8.self)
        #expect(junit.contains("<failure") && junit.contains("causality-minimal"))
        #expect(md.contains("**Smallest failing case:** causality causality-minimal"))
        // An unwritable report path is refused before any kernel runs (exit 2).
        let bad = try CLI.run(["fuzz", "--variant", "2mamba", "--arith", "float32", "--exec", Self.exec(core: "squared-decay-sum", bug: nil),
                               "--json", dir.appendingPathComponent("missing/r.json").path])
        #expect(bad.status == 2 && bad.stderr.contains("does not exist"), "\(bad)")
    }

    @Test func fuzzRejectsBadArguments() throws {
        let r = try CLI.run(["fuzz", "--variant", "2mamba", "--arith", "float32", "--exec", "true"])
        #expect(r.status == 2 && r.stderr.contains("{inputs}"), "\(r)")
        let s = try CLI.run(["fuzz", "--variant", "2mamba", "--arith", "float32", "--exec", "x {inputs} {outputs}",
                             "--replay", "n=3"])
        #expect(s.status == 2 && s.stderr.contains("--replay"), "\(s)")
        // A packed spec parses (suite judges it) but fuzz does not run packed cases.
        let packed = "b=1,h=1,n=3,dk=16,dv=16,dist=paper,init=0,mag=1.0,seed=1,seqs=1+0+2"
        #expect(CaseConfig(spec: packed)?.sequenceLengths == [1, 0, 2] && CaseConfig(spec: packed)?.spec == packed)
        #expect(CaseConfig(spec: packed.replacingOccurrences(of: "seqs=1+0+2", with: "seqs=1+1")) == nil, "lengths must sum to n")
        let p = try CLI.run(["fuzz", "--variant", "2mamba", "--arith", "float32", "--exec", "x {inputs} {outputs}",
                             "--replay", packed])
        #expect(p.status == 2 && p.stderr.contains("packed cases"), "\(p)")
    }
}
