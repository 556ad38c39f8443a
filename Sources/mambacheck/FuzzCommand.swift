import ArgumentParser
import Foundation
import MambaKernels
import MambaTensors
import MambaVariants
import MambaVerification

struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Generate → run your kernel → judge, in a loop, shrinking every failure to a minimal reproducer.",
        discussion: """
            --exec is a shell command with {inputs} and {outputs}, e.g. \
            'python3 python/mambacheck_runner.py {inputs} {outputs}' (the runner contract of `mambacheck suite`). \
            With {entry} in it (e.g. '… --entry {entry} {inputs} {outputs}'), it is run with `chunked` and \
            `recurrent` and the chunked-vs-recurrent property is checked too. \
            Each random case prints its spec; `--replay SPEC` reruns exactly that case. Properties: accuracy \
            (the verdict against the MPFR oracle), causality, determinism, state-handoff (Proofs/T12). A failing \
            property is shrunk (length, batch, heads, widths, magnitude, hazard, initial state) while it keeps \
            failing; the minimal case is written to OUT/<property>/ with its inputs, the candidate's outputs, the \
            verdict and a README line that reruns it. Each property is reported once (its first failure, shrunk). \
            --json, --junit and --markdown write the report of `suite judge` (a row per case and property, the \
            minimal case of each failure first); they hold no timings, so a run bounded by --max-cases gives the \
            same bytes every time.

            Exit codes: 0 nothing failed within the budget, 1 a property failed, 2 usage or input error \
            (including a runner that exits non-zero).
            """)

    @Option(help: "Preset or core name.") var variant: String
    @Option(help: "Declared arithmetic of your kernel (as in `compare --arith`).") var arith: String
    @Option(help: "Command running your kernel: {inputs} and {outputs} are replaced by file paths.") var exec: String
    @Option(help: "Time budget in seconds (shrinking included).") var budget: Double = 60
    @Option(help: "Seed of the case stream (case i uses a seed derived from it; printed).") var seed: UInt64 = 0
    @Option(help: "Folder for the reproducers (must not exist, or be empty).") var out: String = "mambacheck-fuzz"
    @Option(help: "Stop after this many random cases.") var maxCases: Int?
    @Option(help: "Longest sequence drawn.") var maxLength: Int = 512
    @Option(help: "Widest dk/dv drawn (16…128).") var maxWidth: Int = 64
    @Option(help: "Properties to check (repeatable): accuracy, causality, determinism, state-handoff (default: all).")
    var property: [String] = []
    @Option(help: "Rerun one case by its printed spec (no shrinking, no reproducer written).") var replay: String?
    @Option(help: "Write the JSON report here.") var json: String?
    @Option(help: "Write a JUnit XML report here.") var junit: String?
    @Option(help: "Write a Markdown summary here.") var markdown: String?
    @OptionGroup var policy: PolicyOptions

    func validate() throws {
        guard budget > 0, budget.isFinite else { throw ValidationError("--budget must be a positive number of seconds") }
        guard exec.contains("{inputs}") && exec.contains("{outputs}") else {
            throw ValidationError("--exec must contain {inputs} and {outputs}, found: \(exec)")
        }
        if let maxCases, maxCases < 1 { throw ValidationError("--max-cases must be at least 1") }
        guard maxLength >= 1 else { throw ValidationError("--max-length must be at least 1") }
        if let replay, CaseConfig(spec: replay) == nil {
            throw ValidationError("--replay \(replay): expected b=…,h=…,n=…,dk=…,dv=…,dist=…,init=0|1,mag=…,seed=… as printed by fuzz")
        }
        if let replay, CaseConfig(spec: replay)?.isPacked == true {
            throw ValidationError("--replay \(replay): packed cases (seqs=…) are judged by `mambacheck suite judge`, not fuzz")
        }
        let entries = exec.contains("{entry}")
        for p in property where SuiteProperty(rawValue: p) == nil || p == SuiteProperty.packedVsSeparate.rawValue
            || (p == SuiteProperty.chunkedVsRecurrent.rawValue && !entries) {
            throw ValidationError("--property \(p): expected accuracy, causality, determinism, state-handoff"
                                  + (entries ? " or chunked-vs-recurrent" : " (or chunked-vs-recurrent, with {entry} in --exec)"))
        }
    }

    func run() throws {
        let (core, _) = try resolveDumpCore(variant)
        guard let a = DeclaredArithmetic.named(arith), (try? a.mode()) != nil else {
            throw ValidationError("--arith \(arith): expected one of " + DeclaredArithmetic.profiles.map(\.name).joined(separator: ", "))
        }
        try OutputPaths.check(reportOutputs(json: json, junit: junit, markdown: markdown))
        let properties: [SuiteProperty] = property.isEmpty
            ? [.accuracy, .causality, .determinism, .stateHandoff] + (exec.contains("{entry}") ? [.chunkedVsRecurrent] : [])
            : property.compactMap(SuiteProperty.init(rawValue:))
        var rows: [ProbeResult] = []
        func row(_ p: SuiteProperty, _ label: String, _ c: CaseConfig, _ o: FuzzRunner.Outcome) -> ProbeResult {
            ProbeResult(probe: "\(p.rawValue)-\(label)", property: p, cases: [], status: o.status, summary: o.summary,
                        config: c.spec, size: c.size, reproduce: rerun(p, c))
        }
        func writeReport() throws {
            var na: [SuiteProperty: String] = [:]
            if !exec.contains("{entry}") { na[.chunkedVsRecurrent] = "--exec has no {entry}: one entry point" }
            na[.packedVsSeparate] = "fuzz draws unpacked cases (suite generate writes cu_seqlens cases)"
            let report = SuiteReport(tool: MambaCheckVersion.string, variant: variant, core: core.name, arith: a.name,
                                     level: "fuzz", seed: seed, results: rows, notApplicable: na)
            try report.write(json: json, junit: junit, markdown: markdown)
        }
        let storage = SuitePlan.storage(for: a)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("mambacheck-fuzz-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var runner = FuzzRunner(core: core, variant: variant, arith: a, storage: storage, exec: exec, work: scratch,
                                policy: try policy.verdictPolicy())
        if let replay {
            let c = CaseConfig(spec: replay)!
            var failed = false
            for p in properties {
                let o = try runner.check(p, c, explain: true)
                print("\(p.rawValue): \(o.status.rawValue) — \(o.summary)")
                rows.append(row(p, "replay", c, o))
                failed = failed || o.status == .fail
            }
            try writeReport()
            if failed { throw VerificationFailed(description: "case \(replay) fails") }
            print("PASS")
            return
        }
        try prepareOut()
        let start = Date()
        func left() -> Double { budget - Date().timeIntervalSince(start) }
        let distributions: [InputDistribution] = [.paper, .fla] + SuitePlan.hazards(core, storage: storage)
        var found: [(SuiteProperty, CaseConfig, FuzzRunner.Outcome, [String])] = []
        var i = 0
        var master = SeededGenerator(seed: seed)
        print("fuzz: \(variant) (core \(core.name)), --arith \(a.name), seed \(seed), budget \(budget) s")
        while left() > 0, maxCases.map({ i < $0 }) ?? true, found.count < properties.count {
            let c = Shrink.draw(seed: master.next(), distributions: distributions, stateful: core.hasFeatureMapState,
                                maximumLength: maxLength, maximumWidth: maxWidth)
            var line = "case \(i) [\(c.spec)]:"
            for p in properties where !found.contains(where: { $0.0 == p }) {
                let o = try runner.check(p, c)
                line += " \(p.rawValue) \(o.status == .fail ? "FAIL" : o.status.rawValue)"
                rows.append(row(p, "case\(i)", c, o))
                if o.status == .fail {
                    print(line)
                    line = "  "
                    let (small, outcome, path) = try shrink(p, c, o, &runner, deadline: left)
                    found.append((p, small, outcome, path))
                    rows.append(row(p, "minimal", small, outcome))
                    try writeReproducer(p, small, outcome, path, runner: &runner)
                }
            }
            print(line)
            i += 1
        }
        print("\n\(i) case\(i == 1 ? "" : "s") in \(String(format: "%.1f", Date().timeIntervalSince(start))) s; "
              + (found.isEmpty ? "no failure" : "\(found.count) failing propert\(found.count == 1 ? "y" : "ies")"))
        for (p, c, o, path) in found {
            print("\n\(p.rawValue): minimal case [\(c.spec)] (shrunk from \(path.first ?? c.spec), \(path.count - 1) steps)")
            print("  \(o.summary.prefix(400))")
            print("  reproducer: \(out)/\(p.rawValue)/   rerun: \(rerun(p, c))")
        }
        try writeReport()
        if !found.isEmpty {
            throw VerificationFailed(description: "fuzz found \(found.count) failing propert\(found.count == 1 ? "y" : "ies"): "
                                     + found.map { "\($0.0.rawValue) [\($0.1.spec)]" }.joined(separator: ", "))
        }
        print("PASS")
    }

    func rerun(_ p: SuiteProperty, _ c: CaseConfig) -> String {
        "mambacheck fuzz --variant \(variant) --arith \(arith) --exec \(shellQuote(exec)) --property \(p.rawValue) --replay '\(c.spec)'"
    }

    /// Greedy shrinking: take the first smaller config that still fails the same property; repeat.
    func shrink(_ p: SuiteProperty, _ c: CaseConfig, _ o: FuzzRunner.Outcome, _ runner: inout FuzzRunner,
                deadline: () -> Double) throws -> (CaseConfig, FuzzRunner.Outcome, [String]) {
        var best = c, outcome = o, path = [c.spec]
        let minimum = (p == .causality || p == .stateHandoff) ? 2 : 1
        var improved = true
        while improved && deadline() > 0 {
            improved = false
            for candidate in Shrink.candidates(best, minimumLength: minimum) {
                guard deadline() > 0 else { break }
                let r = try runner.check(p, candidate)
                if r.status == .fail {
                    best = candidate
                    outcome = r
                    path.append(candidate.spec)
                    print("  shrunk \(p.rawValue) to [\(candidate.spec)]")
                    improved = true
                    break
                }
            }
        }
        return (best, outcome, path)
    }

    func prepareOut() throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDir) {
            guard isDir.boolValue else { throw InputProblem(description: "--out \(out) is a file, not a folder") }
            guard ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).isEmpty else {
                throw InputProblem(description: "--out \(out) is not empty; refusing to overwrite (choose a new folder)")
            }
        } else {
            let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
            guard FileManager.default.fileExists(atPath: parent) else {
                throw InputProblem(description: "--out \(out): directory \(parent) does not exist")
            }
        }
    }

    /// OUT/<property>/: the minimal case's files, its verdict (with a looser-arithmetic explanation) and a README.
    func writeReproducer(_ p: SuiteProperty, _ c: CaseConfig, _ o: FuzzRunner.Outcome, _ path: [String],
                         runner: inout FuzzRunner) throws {
        let dir = out + "/" + p.rawValue
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // The files keep their own format's extension (safetensors in bfloat16 campaigns).
        let ext = runner.storage.campaignFileExtension
        func named(_ name: String) -> String { name.hasSuffix(".npz") ? String(name.dropLast(4)) + "." + ext : name }
        for (name, source) in o.files { try FileManager.default.copyItem(atPath: source, toPath: dir + "/" + named(name)) }
        let verdict = "property: \(p.rawValue)\ncase: \(c.spec)\nvariant: \(variant) (core \(runner.core.name)), arith \(arith)\n"
            + "verdict: FAIL\n\(o.summary)\n\nshrinking path:\n" + path.map { "  \($0)\n" }.joined()
        try AtomicFile.write(Data(verdict.utf8), to: dir + "/verdict.txt")
        var readme = "# MambaCheck fuzz reproducer: \(p.rawValue)\n\nMinimal failing case `\(c.spec)` "
            + "(shrunk in \(path.count - 1) steps from `\(path[0])`).\n\n\(o.summary)\n\nRerun:\n\n    \(rerun(p, c))\n"
        if p == .accuracy {
            readme += "\nor judge the stored candidate:\n\n    mambacheck compare --variant \(runner.core.name) --arith \(arith) "
                + "--inputs \(dir)/\(named("inputs.npz")) --candidate \(dir)/\(named("candidate.npz"))\n"
        }
        try AtomicFile.write(Data(readme.utf8), to: dir + "/README.md")
    }
}
