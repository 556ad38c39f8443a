import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import MambaPrecision
@testable import MambaVerification
import Testing

@Suite("Reports")
struct ReportTests {
    @Test func jsonIsDeterministicAndRoundTrips() throws {
        let a = try ReportFixtures.standard().jsonData()
        let b = try ReportFixtures.standard().jsonData()
        #expect(a == b)
        let text = String(decoding: a, as: UTF8.self)
        #expect(text.hasSuffix("}\n"))
        #expect(text.contains("\"ulpMax\" : null"))                 // the NaN candidate: an infinite ULP error, as null
        #expect(text.contains("\"passed\" : false"))
        #expect(!text.contains("timestamp"))                          // no clock unless passed in
        // Keys sorted: "cases" before "command" before "schema" before "seed" before "toolVersion".
        let order = ["\"cases\"", "\"command\"", "\"schema\"", "\"seed\"", "\"toolVersion\""]
            .map { text.range(of: $0)!.lowerBound }
        #expect(order == order.sorted())
        let decoded = try VerificationReport(jsonData: a)
        #expect(try decoded.jsonData() == a)
        #expect(decoded.cases.count == 4 && decoded.cases[1].verdict.nonFiniteCount == 1)
    }

    @Test func largeSeedsSurviveJSON() throws {
        let report = ReportFixtures.report(seed: UInt64.max - 1, cases: [])
        #expect(try VerificationReport(jsonData: report.jsonData()).seed == UInt64.max - 1)
    }

    @Test func malformedJSONNamesTheProblem() {
        #expect(throws: VerificationError.self) {
            try VerificationReport(jsonData: Data(#"{"schema": 1}"#.utf8))
        }
        do {
            _ = try VerificationReport(jsonData: Data(#"{"schema": 1}"#.utf8))
        } catch {
            #expect("\(error)".contains("missing key"))
        }
    }

    @Test func junitXMLIsWellFormedAndCountsFailures() throws {
        var report = try ReportFixtures.standard()
        // Hostile text: markup characters, quotes, control characters, newlines.
        report.command = "run <all> & \"quote\" 'apos' \u{1}\u{7}\ttab\nline"
        report.cases[0].name = "2mamba/<chunk&ed>/\"f16\""
        let xml = report.junitXML()
        let collector = XMLCollector()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = collector
        #expect(parser.parse(), "\(String(describing: parser.parserError))\n\(xml)")
        #expect(collector.elements.first?.name == "testsuites")
        #expect(collector.elements.first?.attributes["tests"] == "4")
        #expect(collector.elements.first?.attributes["failures"] == "2")
        #expect(collector.elements.first?.attributes["time"] == "0.500")
        let suites = collector.elements.filter { $0.name == "testsuite" }
        #expect(suites.map { $0.attributes["name"] } == ["2mamba", "mamba2s", "linear"])
        #expect(suites.map { $0.attributes["failures"] } == ["1", "1", "0"])
        let testcases = collector.elements.filter { $0.name == "testcase" }
        #expect(testcases.map { $0.attributes["name"] } ==
                ["<chunk&ed>/\"f16\" [o]", "recurrent/float16 [o]", "chunked/float16-acc32 [final_state]",
                 "quadratic/float32 [o]"])
        #expect(testcases.first?.attributes["classname"] == "mambacheck.2mamba")
        let failures = collector.elements.filter { $0.name == "failure" }
        #expect(failures.count == 2)
        #expect(failures[0].attributes["message"] == report.cases[1].verdict.reason)
        #expect(failures[0].attributes["type"] == "non-finite")
        #expect(failures[1].attributes["type"] == "elementwise")
        let command = collector.elements.first { $0.name == "property" && $0.attributes["name"] == "command" }
        #expect(command?.attributes["value"] == "run <all> & \"quote\" 'apos' \u{FFFD}\u{FFFD}\ttab\nline")
        #expect(report.junitXML() == xml)
    }

    @Test func markdownSummary() throws {
        var report = try ReportFixtures.standard()
        report.cases[3].name = "linear|pipe/quadratic/float32"
        report.cases[0].name = "alpha/chunked/float16-acc32"  // a passing suite appears first
        let md = report.markdownSummary()
        #expect(md.hasPrefix("### MambaCheck: ❌ 2 of 4 cases failed\n"))
        // The summary comes first: failures, then the count per suite, then
        // the collapsed table of every case.
        let failuresAt = try #require(md.range(of: "**Failures (2)**"))
        let suitesAt = try #require(md.range(of: "| suite | cases | failed |"))
        let tableAt = try #require(md.range(of: "<details><summary>All 4 cases</summary>"))
        #expect(failuresAt.lowerBound < suitesAt.lowerBound && suitesAt.lowerBound < tableAt.lowerBound)
        let suiteRows = md[suitesAt.lowerBound..<tableAt.lowerBound].split(separator: "\n").filter { $0.hasPrefix("| ") }
        let suiteNames = Set(report.cases.map(\.variant))
        #expect(suiteRows.count == 1 + suiteNames.count)            // header + one row per suite
        // Suites with failures are listed first.
        let failingSuites = Set(report.cases.filter { !$0.passed }.map(\.variant))
        func rowStart(_ suite: String) throws -> String.Index {
            try #require(md[suitesAt.upperBound...].range(of: "| \(Markdown.escape(suite)) | ")).lowerBound
        }
        #expect(!failingSuites.isEmpty && failingSuites.count < suiteNames.count)
        for bad in failingSuites {
            for good in suiteNames.subtracting(failingSuites) {
                #expect(try rowStart(bad) < rowStart(good), "suite \(bad) (failing) is listed after \(good)")
            }
        }
        let rows = md[tableAt.upperBound...].split(separator: "\n").filter { $0.hasPrefix("| ") }
        #expect(rows.count == 5)                                    // header + 4 cases
        // Every row has the header's number of unescaped cell separators.
        func separators(_ row: Substring) -> Int {
            var count = 0, previous: Character = " "
            for ch in row { if ch == "|" && previous != "\\" { count += 1 }; previous = ch }
            return count
        }
        #expect(Set(rows.map(separators)) == [11])
        #expect(md.contains("linear\\|pipe/quadratic/float32"))

        #expect(md.contains("`mambacheck verify --all`"))
        let passing = ReportFixtures.report(cases: [try ReportFixtures.reportCase("a/b/c")]).markdownSummary()
        #expect(passing.hasPrefix("### MambaCheck: ✅ all 1 cases passed\n") && !passing.contains("Failures"))
        #expect(passing.contains("| a | 1 | 0 |"))
        #expect(Markdown.codeSpan("a `b` c") == "``a `b` c``")
        #expect(Markdown.codeSpan("`x") == "`` `x ``")
    }

    @Test func mergeConcatenatesSortsAndRejectsDuplicates() throws {
        let shard1 = ReportFixtures.report(command: "mambacheck verify --shard 1/2", cases: [
            try ReportFixtures.reportCase("mamba2s/chunked/float32"),
            try ReportFixtures.reportCase("2mamba/chunked/float32", tensor: "o"),
        ])
        var shard2 = ReportFixtures.report(command: "mambacheck verify --shard 2/2", cases: [
            try ReportFixtures.reportCase("2mamba/chunked/float32", tensor: "final_state"),
            try ReportFixtures.reportCase("2mamba-e/tiled/float16", failing: true),
        ])
        shard2.timestamp = "2025-01-02T00:00:00Z"
        let merged = try VerificationReport.merge([shard1, shard2])
        #expect(merged.cases.map { "\($0.name):\($0.tensor)" } ==
                ["2mamba-e/tiled/float16:o", "2mamba/chunked/float32:final_state", "2mamba/chunked/float32:o",
                 "mamba2s/chunked/float32:o"])
        #expect(merged.command == "mambacheck verify --shard 1/2\nmambacheck verify --shard 2/2")
        #expect(merged.timestamp == "2025-01-02T00:00:00Z")
        #expect(!merged.passed && merged.failedCases.count == 1)
        #expect(try VerificationReport.merge([shard2, shard1]).jsonData() == merged.jsonData())

        #expect(throws: VerificationError.duplicateCase(name: "2mamba/chunked/float32", tensor: "o")) {
            try VerificationReport.merge([shard1, shard1])
        }
        #expect(throws: VerificationError.incompatibleReports(field: "seed", values: ["7", "42"])) {
            try VerificationReport.merge([shard1, ReportFixtures.report(seed: 7, cases: [])])
        }
        #expect(throws: VerificationError.nothingToMerge) { try VerificationReport.merge([]) }
    }

    @Test func caseNameParts() throws {
        let c = try ReportFixtures.reportCase("2mamba/chunked/float16-acc32")
        #expect(c.variant == "2mamba" && c.form == "chunked" && c.mode == "float16-acc32")
        let bare = try ReportFixtures.reportCase("custom")
        #expect(bare.variant == "custom" && bare.form == "-" && bare.mode == "-")
    }
}

@Suite("Table printer")
struct TablePrinterTests {
    @Test func alignsColumns() {
        let table = TablePrinter.render(header: ["name", "value"], rows: [["a", "1.5"], ["longer", "10"]],
                                        alignments: [.left, .right])
        #expect(table == """
            name    value
            ------  -----
            a         1.5
            longer     10

            """)
    }

    @Test func reportTable() throws {
        let table = TablePrinter.render(try ReportFixtures.standard())
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0].hasPrefix("variant  form       mode           tensor       ulp p99  ulp max  normwise  verdict"))
        #expect(lines[1].allSatisfy { $0 == "-" || $0 == " " })
        #expect(lines[2].hasPrefix("2mamba   chunked    float16-acc32  o"))
        #expect(lines[2].hasSuffix("pass"))
        #expect(lines[3].hasSuffix("FAIL 1 NaN/Inf"))
        #expect(lines[4].hasSuffix("FAIL 6/6"))
        #expect(lines[6] == "2 of 4 cases passed")
        #expect(!lines.contains { $0.hasSuffix(" ") })
    }
}

/// Records every element and its attributes.
final class XMLCollector: NSObject, XMLParserDelegate {
    struct Element { var name: String; var attributes: [String: String] }
    var elements: [Element] = []

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        elements.append(Element(name: elementName, attributes: attributeDict))
    }
}
