import ArgumentParser
import Foundation
import MambaKernels
import MambaTensors
import MambaVariants
import MambaVerification

struct SuiteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suite",
        abstract: "Property-test your own kernel: generate a campaign, run it with your runner, judge it.",
        discussion: """
            Workflow:
              1. mambacheck suite generate --variant 2mamba --arith float32 --out campaign
              2. python3 python/mambacheck_runner.py --campaign campaign      (edit run_kernel() first; any machine)
              3. mambacheck suite judge campaign --junit suite.xml

            Properties (docs/MATH.md §3.5, §8; Proofs/T12): accuracy (verdict against the MPFR oracle), causality \
            (bit-identical prefix), state-handoff (N tokens vs N₁ then N₂ from the kernel's own final state), \
            determinism (same inputs, same bits), chunked-vs-recurrent (a second entry point, when the runner has one), \
            packed-vs-separate (a variable-length batch, cu_seqlens: each packed sequence within the verdict for that \
            sequence alone, compared with the kernel's run of it alone).

            Exit codes: 0 pass, 1 a probe failed, 2 usage or input error.
            """,
        subcommands: [SuiteGenerateCommand.self, SuiteJudgeCommand.self])
}

struct SuiteGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a campaign folder: manifest.json and inputs/*.npz (*.safetensors for bfloat16; bhnd layout).",
        discussion: """
            Shape ladder: N from 1 up (quick ≤ 100, standard ≤ 1000, deep ≤ 4097), mostly not multiples of \
            16/32/64; dk, dv from 16 to 128; 1–2 heads and batch elements on short sequences; the paper's and FLA's \
            distributions and every hazard generator that applies to the core; with and without initial states; \
            variable-length batches (cu_seqlens, with an empty sequence) next to their sequences run one by one. \
            Probes relate cases: causality, state hand-off, determinism, chunked vs recurrent, packed vs separate. The folder is \
            self-contained: generate here, run on a GPU machine, judge here.
            """)

    @Option(help: "Preset or core name (see `mambacheck variants`).") var variant: String
    @Option(help: "Declared arithmetic of your kernel (as in `mambacheck compare --arith`).") var arith: String
    @Option(help: "Campaign folder to create (must not exist, or be empty).") var out: String
    @Option(help: "quick, standard or deep.") var level: SuiteLevel = .standard
    @Flag(help: "Add the upstream gradient `do` to every input; gradients your runner returns are judged.") var grads = false
    @Option(help: "Seed of every generator (printed; the same seed gives the same files).") var seed: UInt64 = 0
    @Option(help: "Score scale s your kernel uses (default 1/sqrt(dk)).") var scale: Double?

    func validate() throws { try OracleArguments.validate(precision: 128, scale: scale) }

    func run() throws {
        let (core, _) = try resolveDumpCore(variant)
        guard let a = DeclaredArithmetic.named(arith), (try? a.mode()) != nil else {
            throw ValidationError("--arith \(arith): expected one of "
                + DeclaredArithmetic.profiles.map(\.name).joined(separator: ", ") + ", optionally with +state=… and +chunk=C")
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDir) {
            guard isDir.boolValue else { throw InputProblem(description: "--out \(out) is a file, not a folder") }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
            guard entries.isEmpty else {
                throw InputProblem(description: "--out \(out) is not empty; refusing to overwrite (choose a new folder)")
            }
        } else {
            let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
            guard FileManager.default.fileExists(atPath: parent) else {
                throw InputProblem(description: "--out \(out): directory \(parent) does not exist")
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        }
        let m = SuitePlan.make(variant: variant, core: core, arith: a, level: level, seed: seed, grads: grads,
                               scale: scale, tool: MambaCheckVersion.string)
        try SuitePlan.write(m, to: out)
        let counts = Dictionary(grouping: m.probes, by: \.property).mapValues(\.count)
        print("campaign \(out): \(m.cases.count) cases, \(m.probes.count) probes ("
              + SuiteProperty.allCases.compactMap { p in counts[p].map { "\(p.rawValue) \($0)" } }.joined(separator: ", ")
              + "), core \(core.name), arith \(a.name), inputs \(m.storage.rawValue), seed \(seed)")
        print("next: python3 python/mambacheck_runner.py --campaign \(out)   (after editing run_kernel)")
        print("then: mambacheck suite judge \(out)")
    }
}

extension SuiteLevel: ExpressibleByArgument {}

struct SuiteJudgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judge",
        abstract: "Judge a campaign folder after the runner has written its outputs.",
        discussion: """
            Runs the MPFR oracle and the verdict (as `mambacheck compare --arith`) on every case, and the bit-for-bit \
            checks of causality and determinism, in parallel over probes. Prints one table per property and the \
            smallest failing case first, with a command that reproduces it. A property the campaign or the runner \
            cannot exercise is reported not applicable (JUnit <skipped/>), never as a pass.

            Exit codes: 0 pass, 1 a probe failed, 2 usage or input error (missing outputs, wrong shapes, …).
            """)

    @Argument(help: "Campaign folder (from `suite generate`).") var directory: String
    @Option(help: "Write the JSON report here.") var json: String?
    @Option(help: "Write a JUnit XML report here.") var junit: String?
    @Option(help: "Write a Markdown summary here.") var markdown: String?
    @Option(help: "Judge only this probe (repeatable), e.g. causality-c012.") var probe: [String] = []
    @Option(help: "Parallel workers (default: the number of cores).") var jobs: Int?
    @Option(help: "MPFR precision of the oracle (bits).") var precision: Int = 128
    @OptionGroup var policy: PolicyOptions

    func validate() throws {
        try OracleArguments.validate(precision: precision, scale: nil)
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1, found \(jobs)") }
    }

    func run() throws {
        let dir = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        let manifestPath = dir + "/manifest.json"
        let m: SuiteManifest
        do { m = try SuiteManifest.read(directory: dir) } catch let e as SuiteError { throw InputProblem(description: e.description) }
        // Never write a report over the manifest or any campaign file.
        var protected: [(option: String, path: String?)] = [(option: "manifest", path: manifestPath)]
        for c in m.cases {
            protected.append((option: "case \(c.id) inputs", path: dir + "/" + c.inputs))
            protected.append((option: "case \(c.id) outputs", path: dir + "/" + c.outputs))
        }
        try OutputPaths.check(reportOutputs(json: json, junit: junit, markdown: markdown), inputs: protected)
        let options = SuiteJudge.Options(policy: try policy.verdictPolicy(), precision: precision,
                                         jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount, only: Set(probe))
        let bar = ProgressBar(label: "judging")
        let results: [ProbeResult]
        do {
            results = try SuiteJudge.judge(m, directory: dir, options: options) { done, total, id in
                bar.update(done, of: total, item: id)
            }
        } catch let e as SuiteError {
            throw InputProblem(description: e.description)
        }
        bar.finish()
        var na: [SuiteProperty: String] = [:]
        if probe.isEmpty {
            na[.stateHandoff] = m.coreSpec.hasFeatureMapState ? "the campaign has no state hand-off probe"
                : "the \(m.core) core keeps no finite state (docs/MATH.md §0)"
            na[.chunkedVsRecurrent] = "the campaign has no chunked-vs-recurrent probe"
            na[.causality] = "the campaign has no causality probe"
            na[.determinism] = "the campaign has no determinism probe"
            na[.packedVsSeparate] = "the campaign has no packed (cu_seqlens) case"
        }
        let report = SuiteReport(tool: MambaCheckVersion.string, variant: m.variant, core: m.core, arith: m.arith,
                                 level: m.level, seed: m.seed, results: results, notApplicable: na)
        print(report.text(), terminator: "")
        try report.write(json: json, junit: junit, markdown: markdown)
        if !report.passed {
            throw VerificationFailed(description: "\(report.failures.count) probe(s) failed; smallest: "
                                     + "\(report.smallestFailure!.probe) — reproduce: \(report.smallestFailure!.reproduce)")
        }
    }
}
