import ArgumentParser
import Foundation
import MambaVerification

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the JSON reports of a sharded run into one; exit 1 if the merged report has failures.",
        discussion: """
            Verification reports (verify/compare --json) merge with \
            VerificationReport.merge: the cases of all shards, sorted by name \
            and tensor; tool version and seed must agree; a case present twice \
            is an error (exit 2). Exits 1 if the merged report has a failure. \
            Sweep reports (sweep --json) merge the same way (their settings \
            must agree); --plots DIR writes the combined plots.

            Examples:
              mambacheck verify --shard 1/2 --json s1.json
              mambacheck verify --shard 2/2 --json s2.json
              mambacheck merge all.json s1.json s2.json --junit all.xml --markdown all.md
              mambacheck merge sweep.json part1.json part2.json --plots sweep-2mamba
            """)

    @Argument(help: "Where to write the merged JSON report.") var output: String
    @Argument(help: "The shard reports (JSON).") var inputs: [String]
    @Option(help: "Also write a JUnit XML report here (verification reports).") var junit: String?
    @Option(help: "Also write a Markdown summary here (verification reports).") var markdown: String?
    @Option(help: "Sweep reports: write the merged plots and tables into this directory.") var plots: String?

    func validate() throws {
        if inputs.isEmpty { throw ValidationError("give the output file and at least one input report") }
        if inputs.contains(output) { throw ValidationError("the output \(output) is also an input") }
    }

    func run() throws {
        // The string test in validate() misses ./a.json vs a.json and links: compare files.
        try OutputPaths.check([("OUTPUT", output), ("--junit", junit), ("--markdown", markdown)],
                              inputs: inputs.map { ("INPUT", $0) })
        var data: [Data] = []
        for path in inputs {
            guard let d = FileManager.default.contents(atPath: path) else {
                throw InputProblem(description: "\(path): cannot read")
            }
            data.append(d)
        }
        let sweeps = data.map(SweepReport.isSweep)
        if sweeps.contains(true) {
            guard !sweeps.contains(false) else {
                throw InputProblem(description: "cannot merge sweep reports with verification reports")
            }
            try mergeSweeps(data)
            return
        }
        if plots != nil { throw InputProblem(description: "--plots applies to sweep reports only") }
        var reports: [VerificationReport] = []
        for (path, d) in zip(inputs, data) {
            do { reports.append(try VerificationReport(jsonData: d)) } catch {
                throw InputProblem(description: "\(path): \(error)")
            }
        }
        let merged: VerificationReport
        do { merged = try VerificationReport.merge(reports) } catch let e as VerificationError {
            throw InputProblem(description: "cannot merge: \(e)")
        }
        print(TablePrinter.render(merged), terminator: "")
        try writeReports(merged, json: output, junit: junit, markdown: markdown)
        print("merged \(reports.count) report(s), \(merged.cases.count) cases → \(output)")
        if !merged.passed {
            let failed = merged.failedCases
            var lines = ["\(failed.count) case(s) failed:"]
            for c in failed.prefix(20) { lines.append("  \(c.name) [\(c.tensor)]: \(c.verdict.reason)") }
            throw VerificationFailed(description: lines.joined(separator: "\n"))
        }
    }

    func mergeSweeps(_ data: [Data]) throws {
        if junit != nil || markdown != nil {
            throw InputProblem(description: "--junit and --markdown apply to verification reports, not sweeps")
        }
        var reports: [SweepReport] = []
        for (path, d) in zip(inputs, data) {
            do { reports.append(try SweepReport(jsonData: d)) } catch {
                throw InputProblem(description: "\(path): \(error)")
            }
        }
        let merged: SweepReport
        do { merged = try SweepReport.merge(reports) } catch let e as VerificationError {
            throw InputProblem(description: "cannot merge: \(e)")
        }
        print(merged.tables(), terminator: "")
        try AtomicFileWriter.write(merged.jsonData(), to: output)
        if let plots {
            print("wrote " + (try merged.writePlots(to: plots)).joined(separator: ", "))
        }
        print("merged \(reports.count) sweep report(s), \(merged.points.count) points → \(output)")
    }
}
