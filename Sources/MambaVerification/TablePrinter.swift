/// Fixed-width plain-text tables for terminals and CI logs.
///
/// Column widths are the widest cell (counted in `Character`s), columns are
/// separated by two spaces, a rule of `-` under the header, no trailing
/// spaces. Numbers are right-aligned, text left-aligned.
public enum TablePrinter {
    public enum Alignment: Sendable { case left, right }

    /// A table of `rows` under `header`; `alignments` defaults to left for every column.
    ///
    /// - Precondition: every row has `header.count` cells; `alignments`, when
    ///   given, has `header.count` entries.
    public static func render(header: [String], rows: [[String]], alignments: [Alignment]? = nil) -> String {
        let align = alignments ?? Array(repeating: .left, count: header.count)
        precondition(align.count == header.count, "one alignment per column")
        precondition(rows.allSatisfy { $0.count == header.count }, "every row needs \(header.count) cells")
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = Swift.max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var text = ""
            for (i, cell) in cells.enumerated() {
                let padding = String(repeating: " ", count: widths[i] - cell.count)
                if i > 0 { text += "  " }
                text += align[i] == .left ? cell + padding : padding + cell
            }
            while text.last == " " { text.removeLast() }
            return text
        }
        var out = line(header) + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for row in rows { out += line(row) + "\n" }
        return out
    }

    /// One row per case — variant, form, mode, tensor, ULP p99, ULP max,
    /// normwise relative error, verdict — and a closing count of passes.
    public static func render(_ report: VerificationReport) -> String {
        let header = ["variant", "form", "mode", "tensor", "ulp p99", "ulp max", "normwise", "verdict"]
        let rows = report.cases.map { c -> [String] in
            let m = c.metrics
            return [c.variant, c.form, c.mode, c.tensor,
                    NumberText.significant(m.ulpP99), NumberText.significant(m.ulpMax),
                    NumberText.scientific(m.normwiseRelativeError), verdictCell(c.verdict)]
        }
        let alignments: [Alignment] = [.left, .left, .left, .left, .right, .right, .right, .left]
        let passed = report.cases.filter(\.passed).count
        return render(header: header, rows: rows, alignments: alignments)
            + "\(passed) of \(report.cases.count) cases passed\n"
    }

    /// "pass", "FAIL 812/4096" (failing elements of judged), "FAIL 3 NaN/Inf", or "FAIL normwise".
    static func verdictCell(_ verdict: Verdict) -> String {
        if verdict.passed { return "pass" }
        if verdict.nonFiniteCount > 0 { return "FAIL \(verdict.nonFiniteCount) NaN/Inf" }
        if verdict.failingCount > 0 { return "FAIL \(verdict.failingCount)/\(verdict.judgedCount)" }
        return "FAIL normwise"
    }
}
