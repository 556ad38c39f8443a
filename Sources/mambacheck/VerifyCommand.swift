import ArgumentParser
import Foundation
import MambaKernels
import MambaVerification

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "The main job: every core and preset, every form and precision mode, against the MPFR oracle.",
        discussion: """
            Each row is one variant × form × mode (× tensor). A row passes when its error against the \
            oracle stays within the conditioning-aware allowance of Proofs/T9-verdict.md, the baselines \
            being MambaCheck's other forms in the same precision mode. Exits 1 if any row fails.

            Examples:
              mambacheck verify
              mambacheck verify --full --json verify.json --junit verify.xml
              mambacheck verify --shard 1/4 --json shard1.json   # then: mambacheck merge shard*.json
            """)

    @Flag(help: "Small built-in cases (default).") var quick = false
    @Flag(help: "Larger, more varied cases.") var full = false
    @Option(help: "Base seed of the built-in cases.") var seed: UInt64 = 20_260_217
    @Option(help: "Run only shard k of n (k/n, 1-based), e.g. 2/4.") var shard: Shard?
    @OptionGroup var reports: ReportOptions
    @OptionGroup var policy: PolicyOptions

    func validate() throws {
        if quick && full { throw ValidationError("--quick and --full are exclusive") }
    }

    func run() throws {
        try OutputPaths.check(reports.outputs)
        let size: BuiltinVerification.Size = full ? .full : .quick
        var jobs = BuiltinVerification.jobs(size: size, seed: seed)
        if let shard { jobs = shard.select(jobs) }
        // On stderr: stdout (the table) stays identical across machines.
        writeStderr(BLASCore.summary() + "\n")
        let progress = ProgressBar(label: "verify")
        let selfChecks = (shard == nil || shard!.index == 1) ? try SelfChecks.run() : []
        let cases = try selfChecks + BuiltinVerification.run(jobs, size: size, policy: try policy.verdictPolicy()) {
            progress.update($0, of: $1, item: $2)
        }
        progress.finish()
        let command = "mambacheck verify --\(size.rawValue)" + (shard.map { " --shard \($0.description)" } ?? "")
        let report = VerificationReport(toolVersion: MambaCheckVersion.string, command: command, seed: seed,
                                        cases: cases)
        print(TablePrinter.render(report), terminator: "")
        try reports.write(report)
        if !report.passed {
            let failed = report.failedCases
            var lines = ["\(failed.count) case(s) failed:"]
            for c in failed.prefix(20) { lines.append("  \(c.name) [\(c.tensor)]: \(c.verdict.reason)") }
            throw VerificationFailed(description: lines.joined(separator: "\n"))
        }
    }
}

/// `k/n` with 1 ≤ k ≤ n: round-robin selection of jobs.
struct Shard: ExpressibleByArgument, CustomStringConvertible {
    var index: Int
    var count: Int
    init?(argument: String) {
        let parts = argument.split(separator: "/")
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, (1...n).contains(k) else {
            return nil
        }
        index = k; count = n
    }
    var description: String { "\(index)/\(count)" }
    func select<T>(_ items: [T]) -> [T] {
        items.enumerated().filter { $0.offset % count == index - 1 }.map(\.element)
    }
}

/// Verdict policy overrides shared by `verify` and `compare`.
struct PolicyOptions: ParsableArguments {
    @Option(help: "Element test: a candidate may be this many times less accurate than the baselines (default 2.5).")
    var factor: Double?
    @Option(help: "Allowance in ULPs of the candidate's format per element (default 1: its own output rounding).")
    var ulpAllowance: Double?
    @Option(help: "A-priori allowance in units of u·magnitude added per element (default 0 with baselines, 8 without).")
    var boundFactor: Double?
    @Option(help: "Row test factor on the row yardstick (default 3.5).") var rowFactor: Double?
    @Option(help: "Norm test factor on the baselines' ‖error‖₂ (default 2).") var normFactor: Double?
    @Option(help: "Opt-in replica row test: the smallest row factor for a row's departure from a baseline that reproduces the kernel (default 0: off; Proofs/T9).")
    var replicaRowFactor: Double?

    func verdictPolicy() throws -> VerdictPolicy {
        var p = VerdictPolicy.standard
        if let factor { p.factor = factor }
        if let ulpAllowance { p.ulpAllowance = ulpAllowance }
        if let boundFactor { p.boundFactor = boundFactor }
        if let rowFactor { p.rowFactor = rowFactor }
        if let normFactor { p.normFactor = normFactor }
        if let replicaRowFactor { p.replicaRowFactor = replicaRowFactor }
        do { try p.validate() } catch { throw ValidationError("\(error)") }
        return p
    }
}

enum MambaCheckVersion {
    static let string = "0.1.0"
}

/// Writes the requested reports as one all-or-nothing set (`VerificationReport.write(_:)`).
func writeReports(_ report: VerificationReport, json: String?, junit: String?, markdown: String?) throws {
    var files: [(format: ReportFormat, path: String)] = []
    if let json { files.append((.json, json)) }
    if let junit { files.append((.junit, junit)) }
    if let markdown { files.append((.markdown, markdown)) }
    try report.write(files)
}

/// The report options of `compare` and `verify` (one definition, so the two
/// commands cannot drift apart).
struct ReportOptions: ParsableArguments {
    @Option(help: "Write the JSON report here.") var json: String?
    @Option(help: "Write a JUnit XML report here.") var junit: String?
    @Option(help: "Write a Markdown summary here.") var markdown: String?
    @Flag(help: "Keep wall-clock durations in the reports (by default they are 0, so that reports are reproducible byte for byte).")
    var timings = false

    /// The options as `OutputPaths.check` pairs.
    var outputs: [(option: String, path: String?)] { reportOutputs(json: json, junit: junit, markdown: markdown) }

    /// Writes the requested reports (durations zeroed unless `--timings`).
    func write(_ report: VerificationReport) throws {
        try writeReports(timings ? report : report.withoutTimings, json: json, junit: junit, markdown: markdown)
    }
}

/// The report options as `OutputPaths.check` pairs.
func reportOutputs(json: String?, junit: String?, markdown: String?) -> [(option: String, path: String?)] {
    [("--json", json), ("--junit", junit), ("--markdown", markdown)]
}

/// A one-line progress bar on a terminal (stderr), silent otherwise.
final class ProgressBar: Sendable {
    let label: String
    let enabled = isatty(2) != 0
    let start = Date()
    init(label: String) { self.label = label }
    func update(_ done: Int, of total: Int, item: String) {
        guard enabled, Date().timeIntervalSince(start) > 1 else { return }
        let width = 30
        let filled = total == 0 ? width : width * done / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        writeStderr("\r\(label) [\(bar)] \(done)/\(total) \(item.prefix(40))\u{1B}[K")
    }
    func finish() { if enabled && Date().timeIntervalSince(start) > 1 { writeStderr("\r\u{1B}[K") } }
}
