/// A Markdown summary for pull-request comments (GitHub-flavoured tables):
/// a headline with the pass count, one table row per case, and the verdict
/// reasons of failed cases in a collapsible section.
///
/// Text from the report (case names, tensor names, reasons) is escaped so it
/// cannot break the table or inject markup: Markdown punctuation is
/// backslash-escaped (`|` included, which GitHub requires even inside code
/// spans in tables), `<` and `>` become entities, and line breaks become spaces.
extension VerificationReport {
    public func markdownSummary(title: String = "MambaCheck") -> String {
        let failed = cases.filter { !$0.passed }.count
        let status = failed == 0 ? "✅ all \(cases.count) cases passed" : "❌ \(failed) of \(cases.count) cases failed"
        var md = "### \(Markdown.escape(title)): \(status)\n\n"
        md += "tool \(Markdown.escape(toolVersion)) · seed \(seed)"
        if let timestamp { md += " · \(Markdown.escape(timestamp))" }
        md += " · \(Markdown.codeSpan(command))\n\n"
        if let oracle { md += "oracle: \(Markdown.escape(oracle))\n\n" }
        guard !cases.isEmpty else { return md }
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
        let failures = cases.filter { !$0.passed }
        if !failures.isEmpty {
            md += "\n<details><summary>Failures (\(failures.count))</summary>\n\n"
            for c in failures {
                md += "- **\(Markdown.escape(c.name))** [\(Markdown.escape(c.tensor))]: \(Markdown.escape(c.verdict.reason))\n"
            }
            md += "\n</details>\n"
        }
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
