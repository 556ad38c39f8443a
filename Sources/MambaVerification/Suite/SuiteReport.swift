import Foundation
import MambaTensors

/// The report of `mambacheck suite judge` and `mambacheck fuzz`: one table
/// per property, failures smallest first, in text, JSON, JUnit and Markdown.
/// Holds no clock readings, so the same campaign and outputs give the same bytes.
public struct SuiteReport: Codable, Sendable, Equatable {
    public var schema = 1
    public var tool: String
    public var variant: String
    public var core: String
    public var arith: String
    public var level: String
    public var seed: UInt64
    /// Every probe's result, grouped by property; inside a property, failures
    /// first (smallest config first), then passes, then not-applicable rows.
    public var results: [ProbeResult]

    public init(tool: String, variant: String, core: String, arith: String, level: String, seed: UInt64,
                results: [ProbeResult], notApplicable: [SuiteProperty: String] = [:]) {
        self.tool = tool
        self.variant = variant
        self.core = core
        self.arith = arith
        self.level = level
        self.seed = seed
        var all = results
        for p in SuiteProperty.allCases where !results.contains(where: { $0.property == p }) {
            if let why = notApplicable[p] {
                all.append(ProbeResult(probe: p.rawValue, property: p, cases: [], status: .notApplicable, summary: why,
                                       config: "-", size: 0, reproduce: "-"))
            }
        }
        func rank(_ s: ProbeStatus) -> Int { s == .fail ? 0 : (s == .pass ? 1 : 2) }
        self.results = all.sorted {
            ($0.property, rank($0.status), $0.size, $0.probe) < ($1.property, rank($1.status), $1.size, $1.probe)
        }
    }

    /// No failure (not-applicable rows are not failures, and never passes).
    public var passed: Bool { !results.contains { $0.status == .fail } }
    public var failures: [ProbeResult] { results.filter { $0.status == .fail } }
    /// The smallest failing probe over every property (ties: property order, then id).
    public var smallestFailure: ProbeResult? {
        failures.min { ($0.size, $0.property, $0.probe) < ($1.size, $1.property, $1.probe) }
    }
    public var properties: [SuiteProperty] {
        SuiteProperty.allCases.filter { p in results.contains { $0.property == p } }
    }
    func count(_ p: SuiteProperty, _ s: ProbeStatus) -> Int { results.filter { $0.property == p && $0.status == s }.count }

    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try e.encode(ReportDocument(report: self, passed: passed)) + Data("\n".utf8)
    }

    /// Terminal rendering: the smallest failure first with its command, then one table per property.
    public func text() -> String {
        var s = "MambaCheck suite: \(variant) (core \(core)), --arith \(arith), level \(level), seed \(seed)\n"
        if let f = smallestFailure {
            s += "\nSMALLEST FAILING CASE: \(f.property.rawValue) \(f.probe) [\(f.config)]\n  \(f.summary)\n"
                + "  reproduce: \(f.reproduce)\n"
        }
        for p in properties {
            s += "\n\(p.rawValue): \(count(p, .pass)) pass, \(count(p, .fail)) fail, \(count(p, .notApplicable)) not applicable\n"
            for r in results where r.property == p {
                let status = r.status == .fail ? "FAIL" : (r.status == .pass ? "pass" : "n/a ")
                let summary = r.summary.count > 160 ? String(r.summary.prefix(157)) + "..." : r.summary
                s += "  \(status)  \(r.probe.padding(toLength: 28, withPad: " ", startingAt: 0)) \(r.config)\n        \(summary)\n"
            }
        }
        let f = failures.count
        s += "\n" + (f == 0 ? "PASS" : "FAIL: \(f) probe\(f == 1 ? "" : "s") failed") + "\n"
        return s
    }

    /// JUnit XML: one testsuite per property, one testcase per probe;
    /// not-applicable probes are `<skipped/>`, never passes.
    public func junitXML() -> String {
        let f = failures.count
        let skipped = results.filter { $0.status == .notApplicable }.count
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites name=\"MambaCheck suite\" tests=\"\(results.count)\" failures=\"\(f)\" errors=\"0\""
            + " skipped=\"\(skipped)\" time=\"0.000\">\n"
        for p in properties {
            let rows = results.filter { $0.property == p }
            x += "  <testsuite name=\(XML.attribute(p.rawValue)) tests=\"\(rows.count)\" failures=\"\(count(p, .fail))\""
                + " errors=\"0\" skipped=\"\(count(p, .notApplicable))\" time=\"0.000\">\n"
            x += "    <properties>\n"
            for (k, v) in [("variant", variant), ("core", core), ("arith", arith), ("level", level), ("seed", String(seed))] {
                x += "      <property name=\(XML.attribute(k)) value=\(XML.attribute(v))/>\n"
            }
            x += "    </properties>\n"
            for r in rows {
                x += "    <testcase classname=\(XML.attribute("mambacheck.suite.\(p.rawValue)")) name=\(XML.attribute(r.probe)) time=\"0.000\">\n"
                let details = "config \(r.config)\ncases \(r.cases.joined(separator: " "))\n\(r.summary)\nreproduce: \(r.reproduce)"
                switch r.status {
                case .fail:
                    x += "      <failure message=\(XML.attribute(r.summary)) type=\(XML.attribute(p.rawValue))>\(XML.text(details))</failure>\n"
                case .notApplicable:
                    x += "      <skipped message=\(XML.attribute("not applicable: " + r.summary))/>\n"
                case .pass:
                    x += "      <system-out>\(XML.text(details))</system-out>\n"
                }
                x += "    </testcase>\n"
            }
            x += "  </testsuite>\n"
        }
        return x + "</testsuites>\n"
    }

    /// Markdown for pull-request comments: a headline, the smallest failure, one table per property.
    public func markdown() -> String {
        let f = failures.count
        var md = "### MambaCheck suite: " + (f == 0 ? "✅ no failing probe" : "❌ \(f) failing probe\(f == 1 ? "" : "s")") + "\n\n"
        md += "\(Markdown.escape(variant)) (core \(Markdown.escape(core))) · arith \(Markdown.escape(arith)) · level "
            + "\(Markdown.escape(level)) · seed \(seed)\n\n"
        if let s = smallestFailure {
            md += "**Smallest failing case:** \(Markdown.escape(s.property.rawValue)) \(Markdown.escape(s.probe)) "
                + "(\(Markdown.escape(s.config))): \(Markdown.escape(s.summary))  \nReproduce: \(Markdown.codeSpan(s.reproduce))\n\n"
        }
        for p in properties {
            md += "#### \(p.rawValue): \(count(p, .pass)) pass, \(count(p, .fail)) fail, \(count(p, .notApplicable)) not applicable\n\n"
            md += "| probe | status | config | detail |\n|:--|:--|:--|:--|\n"
            for r in results where r.property == p {
                let status = r.status == .fail ? "❌ **FAIL**" : (r.status == .pass ? "✅ pass" : "➖ n/a")
                md += "| \(Markdown.escape(r.probe)) | \(status) | \(Markdown.escape(r.config)) | \(Markdown.escape(r.summary)) |\n"
            }
            md += "\n"
        }
        return md
    }

    /// Writes the requested renderings as one all-or-nothing set.
    public func write(json: String?, junit: String?, markdown md: String?) throws {
        var files: [(path: String, data: Data)] = []
        if let json { files.append((json, try jsonData())) }
        if let junit { files.append((junit, Data(junitXML().utf8))) }
        if let md { files.append((md, Data(markdown().utf8))) }
        try AtomicFile.writeAll(files)
    }
}
