/// A Markdown summary for pull-request comments (GitHub-flavoured tables),
/// short things first so a long run stays readable: a headline with the pass
/// count, the failures with their verdict reasons, one count row per suite
/// (the case name's variant; suites with failures first), then the table of
/// every case, collapsed (`verify` writes hundreds of rows).
///
/// Text from the report (case names, tensor names, reasons) is escaped so it
/// cannot break the table or inject markup: Markdown punctuation is
/// backslash-escaped (`|` included, which GitHub requires even inside code
/// spans in tables), `<` and `>` become entities, and line breaks become spaces.
extension VerificationReport {
    public func markdownSummary(title: String = "MambaCheck") -> String {
        let failures = cases.filter { !$0.passed }
        let status = failures.isEmpty ? "✅ all \(cases.count) cases passed" : "❌ \(failures.count) of \(cases.count) cases failed"
        var md = "### \(Markdown.escape(title)): \(status)\n\n"
        md += "tool \(Markdown.escape(toolVersion)) · seed \(seed)"
        if let timestamp { md += " · \(Markdown.escape(timestamp))" }
        md += " · \(Markdown.codeSpan(command))\n\n"
        if let oracle { md += "oracle: \(Markdown.escape(oracle))\n\n" }
        guard !cases.isEmpty else { return md }
        if !failures.isEmpty {
            md += "**Failures (\(failures.count))**\n\n"
            for c in failures {
                md += "- **\(Markdown.escape(c.name))** [\(Markdown.escape(c.tensor))]: \(Markdown.escape(c.verdict.reason))\n"
            }
            md += "\n"
        }
        // Per suite, in order of first appearance, suites with failures first.
        var suites: [(name: String, cases: Int, failed: Int)] = []
        for c in cases {
            if let i = suites.firstIndex(where: { $0.name == c.variant }) {
                suites[i].cases += 1; suites[i].failed += c.passed ? 0 : 1
            } else {
                suites.append((c.variant, 1, c.passed ? 0 : 1))
            }
        }
        let ordered = suites.filter { $0.failed > 0 } + suites.filter { $0.failed == 0 }
        md += "| suite | cases | failed |\n|:--|--:|--:|\n"
        for suite in ordered {
            md += "| \(Markdown.escape(suite.name)) | \(suite.cases) | \(suite.failed > 0 ? "❌ \(suite.failed)" : "0") |\n"
        }
        md += "\n<details><summary>All \(cases.count) cases</summary>\n\n"
        md += "| case | tensor | format | ULP p99 | ULP max | normwise rel | allowance used | uniform floor | NaN/Inf | verdict |\n"
        md += "|:--|:--|:--|--:|--:|--:|--:|--:|--:|:--|\n"
        let n = NumberText.significant, s = NumberText.scientific
        for c in cases {
            let m = c.metrics
            let verdict = c.passed ? "✅ pass" : "❌ **FAIL**"
            let cells = [Markdown.escape(c.name), Markdown.escape(c.tensor), Markdown.escape(m.format),
                         n(m.ulpP99, 3), n(m.ulpMax, 3), s(m.normwiseRelativeError, 2),
                         n(Swift.max(c.verdict.margins.max, c.verdict.rows.worstShare, c.verdict.normwise.share), 3),
                         s(c.verdict.detectionFloor.uniform, 2), String(m.nonFiniteCount), verdict]
            md += "| " + cells.joined(separator: " | ") + " |\n"
        }
        md += "\n</details>\n"
        return md
    }
}

/// Markdown escaping.
enum Markdown {
    /// Characters that can start emphasis, code, links, strikethrough or end a table cell
    /// anywhere in a line (line-start-only markers — `#`, `-`, `+`, digits — cannot
    /// occur at the start of the places this text is put).
    private static let punctuation: Set<Character> = ["\\", "`", "*", "_", "[", "]", "|", "~"]

    /// `text` with Markdown punctuation backslash-escaped, `<`/`>`/`&` as entities,
    /// line breaks as spaces.
    static func escape(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\n", "\r", "\r\n": out += " "
            default:
                if punctuation.contains(ch) { out += "\\" }
                out.append(ch)
            }
        }
        return out
    }

    /// `text` as an inline code span: delimited by one backtick more than its
    /// longest backtick run, padded with spaces when it starts or ends with a
    /// backtick; line breaks become spaces.
    static func codeSpan(_ text: String) -> String {
        let flat = text.map { $0.isNewline ? " " : String($0) }.joined()
        var longest = 0, run = 0
        for ch in flat {
            run = ch == "`" ? run + 1 : 0
            longest = Swift.max(longest, run)
        }
        let fence = String(repeating: "`", count: longest + 1)
        let pad = flat.hasPrefix("`") || flat.hasSuffix("`") ? " " : ""
        return fence + pad + flat + pad + fence
    }
}
