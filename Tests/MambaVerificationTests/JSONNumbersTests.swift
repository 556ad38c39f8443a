import Foundation
@testable import MambaVerification
import MambaVariants
import Testing

/// Every JSON the tool writes carries numbers as JSON numbers (`null` for a
/// non-finite one), never as strings.
@Suite("JSON: numbers as numbers")
struct JSONNumbersTests {
    /// Walks a parsed JSON value and collects the paths of strings that parse as numbers or "inf"/"nan".
    static func numericStrings(_ value: Any, path: String = "$") -> [String] {
        if let d = value as? [String: Any] {
            return d.keys.sorted().flatMap { numericStrings(d[$0]!, path: path + "." + $0) }
        }
        if let a = value as? [Any] {
            return a.enumerated().flatMap { numericStrings($0.element, path: path + "[\($0.offset)]") }
        }
        if let s = value as? String, Double(s) != nil || ["inf", "-inf", "nan"].contains(s.lowercased()) {
            return [path]
        }
        return []
    }

    @Test func sweepReportWritesNonFiniteAsNullAndReadsItBack() throws {
        let settings = SweepSettings(variant: "2mamba", core: CoreSpec(score: .squared, hasDecay: true, normalization: .sum))
        let points = [
            SweepPoint(kind: .kernel, length: 64, form: "chunked", mode: "float16", normwiseRelativeError: .infinity,
                       maxULP32: .nan, maxRelativeError: 0.25, nonFiniteCount: 3, seconds: 0.5),
            SweepPoint(kind: .precision, length: 64, precision: 8, normwiseRelativeError: 1e-3, maxULP32: 2,
                       maxRelativeError: -.infinity, nonFiniteCount: 0, seconds: 0),
        ]
        let report = SweepReport(toolVersion: "t", command: "c", settings: settings, points: points)
        let data = try report.jsonData()
        let text = String(decoding: data, as: UTF8.self)
        #expect(!text.contains("\"inf\"") && !text.contains("\"-inf\"") && !text.contains("\"nan\""))
        let parsed = try JSONSerialization.jsonObject(with: data)
        #expect(Self.numericStrings(parsed).isEmpty)
        let kernelPoint = ((parsed as? [String: Any])?["points"] as? [[String: Any]])?.first
        #expect(kernelPoint?["normwiseRelativeError"] is NSNull)
        #expect((kernelPoint?["maxRelativeError"] as? NSNumber)?.doubleValue == 0.25)
        let back = try SweepReport(jsonData: data)
        #expect(back.points[0].normwiseRelativeError.isNaN && back.points[0].maxULP32.isNaN)
        #expect(back.points[1].maxRelativeError.isNaN)
        #expect(back.points[0].maxRelativeError == 0.25 && back.points[1].maxULP32 == 2)
    }
}
