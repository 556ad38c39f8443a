import Foundation
import Testing

/// Proofs/ and the tests check each other: every theorem names the tests that
/// check it, every named test exists, and every property test names its theorem.
@Suite struct ProofIndexTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func files(_ dir: String, suffix: String) -> [URL] {
        let url = root.appendingPathComponent(dir)
        guard let e = FileManager.default.enumerator(at: url, includingPropertiesForKeys: nil) else { return [] }
        return e.compactMap { $0 as? URL }.filter { $0.path.hasSuffix(suffix) }
    }

    /// `Suite.test` names in the "Checked by" section of a theorem file.
    static func checkedBy(_ text: String) -> [String] {
        guard let r = text.range(of: "**Checked by:**") else { return [] }
        let section = String(text[r.upperBound...])
        let regex = try! NSRegularExpression(pattern: "`([A-Za-z_][A-Za-z0-9_]*)\\.([A-Za-z_][A-Za-z0-9_]*)`")
        return regex.matches(in: section, range: NSRange(section.startIndex..., in: section)).map {
            (section as NSString).substring(with: $0.range(at: 1)) + "." + (section as NSString).substring(with: $0.range(at: 2))
        }
    }

    @Test func everyTheoremNamesExistingTests() throws {
        let theorems = Self.files("Proofs", suffix: ".md").filter { $0.lastPathComponent.hasPrefix("T") }
        #expect(theorems.count >= 9, "expected the theorem files under Proofs/")
        let sources = try Self.files("Tests", suffix: ".swift").map { try String(contentsOf: $0, encoding: .utf8) }
            .joined(separator: "\n")
        for file in theorems {
            let text = try String(contentsOf: file, encoding: .utf8)
            let names = Self.checkedBy(text)
            #expect(!names.isEmpty, "\(file.lastPathComponent) names no test that checks it")
            for name in names {
                let parts = name.split(separator: ".")
                let suite = String(parts[0]), test = String(parts[1])
                let hasSuite = sources.contains("struct \(suite)") || sources.contains("class \(suite)")
                let hasTest = sources.contains("func \(test)(")
                #expect(hasSuite && hasTest, "\(file.lastPathComponent) names \(name), which does not exist in Tests/")
            }
        }
    }

    @Test func everyPropertyTestNamesItsTheorem() throws {
        for file in Self.files("Tests/MambaPropertyTests", suffix: ".swift") {
            let lines = try String(contentsOf: file, encoding: .utf8).components(separatedBy: "\n")
            for (i, line) in lines.enumerated() where line.trimmingCharacters(in: .whitespaces).hasPrefix("@Test") {
                // The doc comment right above @Test must cite Proofs/Tn.
                var j = i - 1, doc = ""
                while j >= 0, lines[j].trimmingCharacters(in: .whitespaces).hasPrefix("///") { doc = lines[j] + doc; j -= 1 }
                #expect(doc.contains("Proofs/T"), "\(file.lastPathComponent):\(i + 1): property test without a theorem")
            }
        }
    }
}
