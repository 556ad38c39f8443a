import Foundation
import Testing

/// `--help` paragraphs are single logical lines, so ArgumentParser wraps them
/// to the terminal (issue 13): with an unlimited width (`COLUMNS`), the
/// overview has no two consecutive text lines at the same indentation — a
/// hard line break inside a paragraph would show as exactly that. Lists and
/// examples are indented deeper than the paragraph that introduces them.
@Suite("help texts")
struct HelpTextCLITests {
    static let commands: [[String]] = [[], ["verify"], ["compare"], ["calibrate"], ["reference"], ["variants"], ["bench"],
                                       ["fixtures"], ["fixtures", "generate"], ["fixtures", "check"], ["sweep"], ["merge"],
                                       ["suite"], ["suite", "generate"], ["suite", "judge"], ["fuzz"]]

    @Test(arguments: commands)
    func paragraphsAreNotHardWrapped(_ command: [String]) throws {
        let r = try CLI.run(command + ["--help"], environment: ["COLUMNS": "100000"])
        #expect(r.status == 0, "\(r)")
        // The overview: from "OVERVIEW:" up to "USAGE:".
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex { $0.hasPrefix("OVERVIEW:") }, "\(r.stdout)")
        let end = lines.firstIndex { $0.hasPrefix("USAGE:") } ?? lines.count
        func indent(_ s: String) -> Int { s.prefix { $0 == " " }.count }
        let overview = lines[(start + 1)..<end]
        // Paragraphs sit at the overview's smallest indentation; deeper lines are list items or examples.
        let base = overview.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map(indent).min() ?? 0
        var previous: String?
        for line in overview {
            let text = line.trimmingCharacters(in: .whitespaces)
            if let p = previous, !text.isEmpty, indent(line) == base, indent(p) == base, !p.hasSuffix(":") {
                Issue.record("\(command.joined(separator: " ")) --help: hard line break inside a paragraph:\n  \(p)\n  \(line)")
            }
            previous = text.isEmpty ? nil : line
        }
    }
}
