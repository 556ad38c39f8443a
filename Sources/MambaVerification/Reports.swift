import Foundation

/// The record of one verification run: what was run, and for every case and
/// tensor the metrics and the verdict.
///
/// Deterministic by construction: the report holds no clock readings except
/// those the caller passes in (`timestamp`, the cases' `durationSeconds`), its
/// JSON has sorted keys and locale-independent numbers, so the same inputs
/// give byte-identical files — reports can be diffed and cached.
///
/// Every number is a JSON number; non-finite ones (an infinite ULP error, a
/// NaN candidate value) are written as `null` by `jsonData()` and read back
/// as NaN by `init(jsonData:)`. The file also carries a top-level `passed`.
public struct VerificationReport: Codable, Sendable, Equatable {
    /// Version of this file layout.
    public static let currentSchema = 1

    public var schema: Int
    /// The version of the tool that produced the report.
    public var toolVersion: String
    /// The command line (or a description of the call) that produced it.
    public var command: String
    /// The seed of the input generators.
    public var seed: UInt64
    /// When the run happened, as the caller formatted it (ISO 8601 recommended); nil unless passed in.
    public var timestamp: String?
    /// What the oracle was: the scale used and whether its values are certified
    /// (e.g. "scale 1/sqrt(64) exact; oracle certified: all 65536 elements correctly rounded (Float64)").
    public var oracle: String?
    /// The chunk length `compare` read from the candidate's error pattern because
    /// none was declared (`ChunkLengthInference`); absent otherwise.
    public var inferredChunkLength: Int?
    /// The form `compare` read from the candidate's error pattern because none
    /// was declared (`RecurrentFormInference`: "recurrent"); absent otherwise.
    public var inferredForm: String?
    public var cases: [ReportCase]

    public init(toolVersion: String, command: String, seed: UInt64, timestamp: String? = nil, cases: [ReportCase]) {
        self.schema = VerificationReport.currentSchema
        self.toolVersion = toolVersion
        self.command = command
        self.seed = seed
        self.timestamp = timestamp
        self.cases = cases
    }

    /// Whether every case passed (true for a report without cases).
    public var passed: Bool { cases.allSatisfy(\.passed) }

    /// The report with every case's wall-clock duration set to 0, so that the
    /// same inputs and seed give byte-identical reports (the CLI's default;
    /// `--timings` keeps them).
    public var withoutTimings: VerificationReport {
        var r = self
        for i in r.cases.indices { r.cases[i].durationSeconds = 0 }
        return r
    }

    /// The cases that failed, in report order.
    public var failedCases: [ReportCase] { cases.filter { !$0.passed } }

    /// Sum of the cases' durations.
    public var totalDurationSeconds: Double { cases.reduce(0) { $0 + $1.durationSeconds } }
}

/// One tensor of one run: e.g. the output `o` of `2mamba/chunked/float16-acc32`.
public struct ReportCase: Codable, Sendable, Equatable {
    /// `variant/form/mode`, e.g. "2mamba/chunked/float16-acc32" (any string is
    /// accepted; `variant`, `form` and `mode` read its `/`-separated parts).
    public var name: String
    /// Which output tensor: "o", "final_state", "dq", …
    public var tensor: String
    public var metrics: TensorMetrics
    public var verdict: Verdict
    /// Wall-clock seconds, as measured by the caller.
    public var durationSeconds: Double

    public init(name: String, tensor: String, metrics: TensorMetrics, verdict: Verdict, durationSeconds: Double) {
        self.name = name
        self.tensor = tensor
        self.metrics = metrics
        self.verdict = verdict
        self.durationSeconds = durationSeconds
    }

    public var passed: Bool { verdict.passed }

    /// The first `/`-separated part of `name` (the variant), or the whole name.
    public var variant: String { part(0) ?? name }
    /// The second part of `name` (the form), or "-".
    public var form: String { part(1) ?? "-" }
    /// The rest of `name` after the form (the precision mode), or "-".
    public var mode: String {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count > 2 ? parts[2...].joined(separator: "/") : "-"
    }

    private func part(_ i: Int) -> String? {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count > i ? String(parts[i]) : nil
    }

    /// Cases are identified, and sorted, by `(name, tensor)`.
    static func precedes(_ a: ReportCase, _ b: ReportCase) -> Bool {
        a.name != b.name ? a.name < b.name : a.tensor < b.tensor
    }
}

// MARK: - JSON

extension VerificationReport {
    /// The encoder behind `jsonData()`: pretty-printed, sorted keys, unescaped
    /// slashes, non-finite numbers as "inf", "-inf", "nan".
    public static func jsonEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    /// The decoder matching `jsonEncoder()`.
    public static func jsonDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    /// The report as JSON, UTF-8, ending in a newline: numbers as JSON numbers,
    /// `null` for NaN and ±∞, a top-level `passed`. Same report → same bytes.
    public func jsonData() throws -> Data {
        JSONNumbers.nonFiniteAsNull(try VerificationReport.jsonEncoder().encode(ReportDocument(report: self, passed: passed)))
    }

    /// Reads a report written by `jsonData()`.
    ///
    /// - Throws: `VerificationError.malformedReport` naming what is wrong.
    public init(jsonData data: Data) throws {
        // null (a non-finite number) reads back as NaN.
        do {
            self = try VerificationReport.jsonDecoder().decode(VerificationReport.self,
                                                               from: JSONNumbers.nullAsNaN(data))
        } catch let error as DecodingError {
            throw VerificationError.malformedReport(VerificationReport.describe(error))
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "top level" : keys.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing key \(key.stringValue) at \(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(context.debugDescription) at \(path(context))"
        @unknown default: return String(describing: error)
        }
    }
}

// MARK: - Merging shards

extension VerificationReport {
    /// Combines the reports of a sharded run into one.
    ///
    /// - the cases of all shards, sorted by `(name, tensor)` (so the result
    ///   does not depend on the order of the shards);
    /// - `toolVersion` and `seed` must be the same in every shard;
    /// - `command`: the shards' distinct commands, sorted, one per line;
    /// - `timestamp`: the smallest of the shards' timestamps (the earliest for
    ///   ISO 8601 strings), nil if none has one.
    ///
    /// - Throws: `VerificationError.nothingToMerge` for an empty list,
    ///   `.incompatibleReports` when tool versions or seeds differ, and
    ///   `.duplicateCase` when a `(name, tensor)` pair occurs twice (in two
    ///   shards, or twice in one).
    public static func merge(_ reports: [VerificationReport]) throws -> VerificationReport {
        guard let first = reports.first else { throw VerificationError.nothingToMerge }
        let versions = Set(reports.map(\.toolVersion))
        guard versions.count == 1 else {
            throw VerificationError.incompatibleReports(field: "toolVersion", values: versions.sorted())
        }
        let seeds = Set(reports.map(\.seed))
        guard seeds.count == 1 else {
            throw VerificationError.incompatibleReports(field: "seed", values: seeds.sorted().map(String.init))
        }
        let schemas = Set(reports.map(\.schema))
        guard schemas.count == 1 else {
            throw VerificationError.incompatibleReports(field: "schema", values: schemas.sorted().map(String.init))
        }
        let cases = reports.flatMap(\.cases).sorted(by: ReportCase.precedes)
        for (a, b) in zip(cases, cases.dropFirst()) where a.name == b.name && a.tensor == b.tensor {
            throw VerificationError.duplicateCase(name: a.name, tensor: a.tensor)
        }
        var merged = VerificationReport(
            toolVersion: first.toolVersion,
            command: Set(reports.map(\.command)).sorted().joined(separator: "\n"),
            seed: first.seed,
            timestamp: reports.compactMap(\.timestamp).min(),
            cases: cases)
        merged.schema = first.schema
        return merged
    }
}

/// A report as its JSON file holds it: the report's own (synthesised)
/// `Codable` fields plus its overall `passed`, which readers use without
/// re-deriving it; decoding ignores the extra key. The one document shape of
/// `VerificationReport.jsonData()` and `SuiteReport.jsonData()`.
struct ReportDocument<Report: Encodable>: Encodable {
    var report: Report
    var passed: Bool

    private enum Keys: String, CodingKey { case passed }

    func encode(to encoder: any Encoder) throws {
        try report.encode(to: encoder)
        // The report's keyed container, extended by one key.
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(passed, forKey: .passed)
    }
}
