import Foundation

/// A user's own kernel's error curve, drawn next to MambaCheck's kernels in
/// the vs-length plots (`mambacheck sweep --curve NAME=FILE`).
///
/// The file is CSV, one point per line: `N,normwise[,max_ulp32]` — the
/// sequence length (an integer ≥ 1), the normwise relative error
/// `‖ŷ − y‖₂/‖y‖₂` and optionally the maximum error in binary32 ULPs, each a
/// finite number ≥ 0 (a zero cannot be placed on the log axis and is listed
/// as not plotted). Every line has the same number of fields; a first line
/// that is not numeric is a header; empty lines and lines starting with `#`
/// are skipped.
public struct SweepCurve: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        public var length: Int
        public var normwise: Double
        public var ulp: Double?
    }
    public var name: String
    public var points: [Point]

    public init(name: String, points: [Point]) {
        self.name = name
        self.points = points
    }

    /// Parses `text` read from `file` (named in errors).
    ///
    /// - Throws: `SweepCurveError` naming the file, the line and what was expected.
    public static func parse(_ text: String, file: String, name: String) throws -> SweepCurve {
        var points: [Point] = []
        var fields: Int? = nil
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            func fail(_ m: String) -> SweepCurveError { SweepCurveError(file: file, line: i + 1, message: m) }
            if points.isEmpty && fields == nil && Double(parts[0]) == nil { fields = parts.count; continue }  // header
            guard parts.count == 2 || parts.count == 3 else {
                throw fail("expected N,normwise[,max_ulp32] (2 or 3 fields), found \(parts.count)")
            }
            if let fields, fields != parts.count {
                throw fail("expected \(fields) fields like the lines before, found \(parts.count)")
            }
            fields = parts.count
            guard let n = Int(parts[0]), n >= 1 else { throw fail("N must be an integer ≥ 1, found '\(parts[0])'") }
            func value(_ s: String, _ what: String) throws -> Double {
                guard let x = Double(s), x.isFinite, x >= 0 else {
                    throw fail("\(what) must be a finite number ≥ 0, found '\(s)'")
                }
                return x
            }
            let e = try value(parts[1], "normwise")
            let u = parts.count == 3 ? try value(parts[2], "max_ulp32") : nil
            points.append(Point(length: n, normwise: e, ulp: u))
        }
        guard !points.isEmpty else { throw SweepCurveError(file: file, line: 0, message: "no points (expected N,normwise lines)") }
        return SweepCurve(name: name, points: points)
    }

    /// Reads `NAME=FILE` (the `--curve` argument).
    public static func read(argument: String) throws -> SweepCurve {
        guard let eq = argument.firstIndex(of: "="), eq != argument.startIndex else {
            throw SweepCurveError(file: argument, line: 0, message: "expected NAME=FILE")
        }
        let name = String(argument[..<eq]), file = String(argument[argument.index(after: eq)...])
        guard let data = FileManager.default.contents(atPath: file) else {
            throw SweepCurveError(file: file, line: 0, message: "cannot be read")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: file, name: name)
    }
}

/// A curve file that cannot be used: the file, the line (0: the whole file) and why.
public struct SweepCurveError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int
    public var message: String
    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}
