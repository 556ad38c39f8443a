import MambaTensors

/// JUnit XML for CI systems (GitHub Actions test reporters, GitLab's
/// `artifacts:reports:junit`, Jenkins), in the common Ant/Surefire dialect:
///
///     <testsuites name="MambaCheck" tests= failures= errors="0" time=>
///       <testsuite name="<variant>" tests= failures= errors="0" skipped="0" time=>
///         <properties> toolVersion, command, seed, timestamp </properties>
///         <testcase classname="mambacheck.<variant>" name="<form>/<mode> [<tensor>]" time=>
///           <failure message="<verdict reason>" type="<kind>"> metrics </failure>   (failed)
///           <system-out> metrics </system-out>                                       (passed)
///         </testcase>
///
/// One `testsuite` per variant, in order of first appearance; one
/// `testcase` per report case, in report order. Times are seconds with three
/// decimals. Every attribute value and text is escaped (`&`, `<`, `>`, `"`,
/// `'`; tab, newline and carriage return as character references inside
/// attributes) and characters XML 1.0 forbids (other C0 controls, U+FFFE,
/// U+FFFF) are replaced by U+FFFD, so the document is always well-formed.
extension VerificationReport {
    public func junitXML(suitesName: String = "MambaCheck") -> String {
        var groups: [(variant: String, cases: [ReportCase])] = []
        for c in cases {
            if let i = groups.firstIndex(where: { $0.variant == c.variant }) { groups[i].cases.append(c) }
            else { groups.append((c.variant, [c])) }
        }
        let failures = cases.filter { !$0.passed }.count
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\(XML.attribute(suitesName)) tests=\"\(cases.count)\" failures=\"\(failures)\""
            + " errors=\"0\" time=\"\(NumberText.fixed(totalDurationSeconds))\">\n"
        for group in groups {
            let time = group.cases.reduce(0) { $0 + $1.durationSeconds }
            xml += "  <testsuite name=\(XML.attribute(group.variant)) tests=\"\(group.cases.count)\""
                + " failures=\"\(group.cases.filter { !$0.passed }.count)\" errors=\"0\" skipped=\"0\""
                + " time=\"\(NumberText.fixed(time))\">\n"
            xml += "    <properties>\n"
            var properties = [("toolVersion", toolVersion), ("command", command), ("seed", String(seed))]
            if let timestamp { properties.append(("timestamp", timestamp)) }
            if let oracle { properties.append(("oracle", oracle)) }
            for (name, value) in properties {
                xml += "      <property name=\(XML.attribute(name)) value=\(XML.attribute(value))/>\n"
            }
            xml += "    </properties>\n"
            for c in group.cases {
                let name = c.name.hasPrefix(c.variant + "/") ? String(c.name.dropFirst(c.variant.count + 1)) : c.name
                xml += "    <testcase classname=\(XML.attribute("mambacheck." + c.variant))"
                    + " name=\(XML.attribute(name + " [" + c.tensor + "]"))"
                    + " time=\"\(NumberText.fixed(c.durationSeconds))\">\n"
                let details = c.detailLines.joined(separator: "\n")
                if c.passed {
                    xml += "      <system-out>\(XML.text(details))</system-out>\n"
                } else {
                    xml += "      <failure message=\(XML.attribute(c.verdict.reason))"
                        + " type=\(XML.attribute(c.failureKind))>\(XML.text(details))</failure>\n"
                }
                xml += "    </testcase>\n"
            }
            xml += "  </testsuite>\n"
        }
        xml += "</testsuites>\n"
        return xml
    }
}

extension ReportCase {
    /// The kind of failure for JUnit's `type` attribute.
    var failureKind: String {
        if verdict.isUndefined { return "undefined-oracle" }
        if verdict.nonFiniteCount > 0 { return "non-finite" }
        if verdict.failingCount > 0 { return "elementwise" }
        if !verdict.rows.passed { return "rowwise" }
        return "normwise"
    }

    /// The metrics and verdict as `key: value` lines (JUnit bodies, logs).
    var detailLines: [String] {
        let m = metrics, n = NumberText.significant
        var lines = [
            "case: \(name) [\(tensor)], format \(m.format), shape \(m.shape)",
            "verdict: \(verdict.reason)",
            "ulp p50/p99/max: \(n(m.ulpP50, 3)) / \(n(m.ulpP99, 3)) / \(n(m.ulpMax, 3))",
            "max abs error: \(n(m.maxAbsoluteError, 3)); max rel error: \(n(m.maxRelativeError, 3));"
                + " median rel error: \(n(m.medianRelativeError, 3))",
            "normwise rel error: \(n(m.normwiseRelativeError, 3)); FLA rms ratio: \(n(m.rmsRatio, 3))",
            "elements: \(m.elementCount), compared \(m.comparedCount), oracle non-finite \(m.oracleNonFiniteCount),"
                + " candidate NaN/Inf \(m.nonFiniteCount)",
            "baseline backward error: \(n(verdict.baselineBackwardError, 3)) over \(verdict.baselineCount) baseline(s)",
            "allowance used: elements p50/p99/max \(n(verdict.margins.p50, 3)) / \(n(verdict.margins.p99, 3)) / \(n(verdict.margins.max, 3));"
                + " rows max \(n(verdict.rows.worstShare, 3)); norm \(n(verdict.normwise.share, 3))",
            "detection floor: uniform relative error \(n(verdict.detectionFloor.uniform, 3)); one row (median)"
                + " \(n(verdict.detectionFloor.singleRowMedian, 3)); baselines' relative error \(n(verdict.detectionFloor.baselineRelativeError, 3))",
        ]
        if let note = verdict.note { lines.append("explanation: \(note)") }
        for w in verdict.worstElements {
            lines.append("  worst by |err|/allowance \(TensorShape.indexText(w.index)): |err| \(n(w.absoluteError, 3)),"
                         + " allowed \(n(w.allowance, 3)), ratio \(n(w.ratio, 3))")
        }
        for w in m.worst {
            lines.append("  worst \(TensorShape.indexText(w.index)): candidate \(n(w.candidate, 6)), oracle \(n(w.oracle, 6)),"
                         + " abs err \(n(w.absoluteError, 3)), \(n(w.ulpError, 3)) ulp"
                         + (w.condition.map { ", condition \(n($0, 3))" } ?? ""))
        }
        return lines
    }
}

/// XML 1.0 escaping.
enum XML {
    /// `value` escaped and wrapped in double quotes, for an attribute.
    static func attribute(_ value: String) -> String {
        "\"" + value.escapingScalars { scalar in
            switch scalar {
            case "&": "&amp;"
            case "<": "&lt;"
            case ">": "&gt;"
            case "\"": "&quot;"
            case "'": "&apos;"
            case "\t": "&#9;"
            case "\n": "&#10;"
            case "\r": "&#13;"
            default: disallowed(scalar)
            }
        } + "\""
    }

    /// `value` escaped for character data (line breaks kept; `\r` as a
    /// reference, since parsers normalise a literal one away).
    static func text(_ value: String) -> String {
        value.escapingScalars { scalar in
            switch scalar {
            case "&": "&amp;"
            case "<": "&lt;"
            case ">": "&gt;"
            case "\r": "&#13;"
            case "\t", "\n": nil
            default: disallowed(scalar)
            }
        }
    }

    /// nil (kept) if XML 1.0 allows the scalar (`#x9 | #xA | #xD |
    /// [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`; Swift scalars
    /// are never surrogates), U+FFFD otherwise.
    private static func disallowed(_ scalar: Unicode.Scalar) -> String? {
        let v = scalar.value
        return v < 0x20 || v == 0xFFFE || v == 0xFFFF ? "\u{FFFD}" : nil
    }
}
