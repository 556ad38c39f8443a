import Foundation

/// One measurement of a sweep: a kernel (form × precision mode) or the MPFR
/// oracle at a reduced working precision, at one sequence length.
public struct SweepPoint: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// MambaCheck's Float32/Float16 kernel `form` in `mode`.
        case kernel
        /// `Reference.quadratic` with every MPFR operation at `precision` bits.
        case precision
    }

    public var kind: Kind
    public var length: Int
    /// Kernel points: the form (`quadratic`, `chunked`, `recurrent`, `tiled`).
    public var form: String?
    /// Kernel points: the precision mode (`float32`, `float16-acc32`, …).
    public var mode: String?
    /// Precision points: working precision in bits.
    public var precision: Int?
    /// `‖ŷ − y‖₂ / ‖y‖₂` over the elements whose oracle value is finite.
    public var normwiseRelativeError: Double
    /// `max_e |ŷ_e − y_e| / ulp_binary32(y_e)`.
    public var maxULP32: Double
    /// `max_e |ŷ_e − y_e| / |y_e|` (elements with `y_e ≠ 0`).
    public var maxRelativeError: Double
    /// Candidate elements that are NaN or ±∞ where the oracle is finite.
    public var nonFiniteCount: Int
    /// Wall-clock seconds of the kernel or reduced-precision oracle run.
    public var seconds: Double

    /// `form/mode` for kernel points, `p=<bits>` for precision points.
    public var series: String {
        kind == .kernel ? "\(form ?? "-")/\(mode ?? "-")" : "p=\(precision ?? 0)"
    }

    public init(kind: Kind, length: Int, form: String? = nil, mode: String? = nil, precision: Int? = nil,
                normwiseRelativeError: Double, maxULP32: Double, maxRelativeError: Double, nonFiniteCount: Int,
                seconds: Double) {
        self.kind = kind
        self.length = length
        self.form = form
        self.mode = mode
        self.precision = precision
        self.normwiseRelativeError = normwiseRelativeError
        self.maxULP32 = maxULP32
        self.maxRelativeError = maxRelativeError
        self.nonFiniteCount = nonFiniteCount
        self.seconds = seconds
    }

    static func precedes(_ a: SweepPoint, _ b: SweepPoint) -> Bool {
        if a.kind != b.kind { return a.kind == .kernel }
        if a.kind == .precision, a.precision != b.precision { return (a.precision ?? 0) < (b.precision ?? 0) }
        if a.series != b.series { return a.series < b.series }
        return a.length < b.length
    }
}

/// The result of `mambacheck sweep`: error against the 128-bit oracle as the
/// sequence length grows (every form × mode of MambaCheck's kernels) and as
/// the oracle's own working precision shrinks.
///
/// JSON as `VerificationReport`'s: sorted keys, non-finite numbers as
/// "inf"/"-inf"/"nan". Shards of one sweep merge with `merge(_:)`.
public struct SweepReport: Codable, Sendable, Equatable {
    public static let currentSchema = 1

    public var schema: Int
    /// Always "sweep" (tells sweep files from verification reports).
    public var kind: String
    public var toolVersion: String
    public var command: String
    /// The `--variant` argument and the core it resolves to.
    public var variant: String
    public var core: String
    public var headDim: Int
    public var heads: Int
    public var seed: UInt64
    public var chunkSize: Int
    public var oraclePrecision: Int
    public var lengths: [Int]
    public var precisions: [Int]
    public var points: [SweepPoint]

    public init(toolVersion: String, command: String, settings: SweepSettings, points: [SweepPoint]) {
        schema = SweepReport.currentSchema
        kind = "sweep"
        self.toolVersion = toolVersion
        self.command = command
        variant = settings.variant
        core = settings.core.name
        headDim = settings.headDim
        heads = settings.heads
        seed = settings.seed
        chunkSize = settings.chunkSize
        oraclePrecision = settings.oraclePrecision
        lengths = settings.lengths
        precisions = settings.precisions
        self.points = points.sorted(by: SweepPoint.precedes)
    }

    /// Numbers as JSON numbers, `null` for a non-finite one (`JSONNumbers`); ends in a newline.
    public func jsonData() throws -> Data {
        JSONNumbers.nonFiniteAsNull(try VerificationReport.jsonEncoder().encode(self))
    }

    public init(jsonData data: Data) throws {
        do {
            self = try VerificationReport.jsonDecoder().decode(SweepReport.self, from: JSONNumbers.nullAsNaN(data))
        } catch {
            throw VerificationError.malformedReport("not a sweep report: \(error)")
        }
        guard kind == "sweep" else { throw VerificationError.malformedReport("kind is '\(kind)', not 'sweep'") }
    }

    /// Whether `data` looks like a sweep report (a JSON object with `"kind": "sweep"`).
    public static func isSweep(_ data: Data) -> Bool {
        (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["kind"] as? String == "sweep"
    }

    /// Combines the shards of one sweep: every setting must agree; points are
    /// united and sorted; a point measured twice is an error.
    public static func merge(_ reports: [SweepReport]) throws -> SweepReport {
        guard var merged = reports.first else { throw VerificationError.nothingToMerge }
        func same<T: Hashable>(_ field: String, _ value: (SweepReport) -> T) throws {
            let values = Set(reports.map(value))
            if values.count > 1 {
                throw VerificationError.incompatibleReports(field: field, values: values.map { "\($0)" }.sorted())
            }
        }
        try same("toolVersion", \.toolVersion)
        try same("variant", \.variant)
        try same("headDim", \.headDim)
        try same("heads", \.heads)
        try same("seed", \.seed)
        try same("chunkSize", \.chunkSize)
        try same("oraclePrecision", \.oraclePrecision)
        try same("schema", \.schema)
        let points = reports.flatMap(\.points).sorted(by: SweepPoint.precedes)
        for (a, b) in zip(points, points.dropFirst()) where a.kind == b.kind && a.series == b.series && a.length == b.length {
            throw VerificationError.duplicateCase(name: a.series, tensor: "N=\(a.length)")
        }
        merged.points = points
        merged.command = Set(reports.map(\.command)).sorted().joined(separator: "\n")
        merged.lengths = Set(reports.flatMap(\.lengths)).sorted()
        merged.precisions = Set(reports.flatMap(\.precisions)).sorted()
        return merged
    }

    /// Plain-text tables: one row per series, one column per length, for the
    /// normwise relative error and the maximum binary32 ULP error.
    public func tables() -> String {
        var out = ""
        let lengths = Set(points.map(\.length)).sorted()
        for (title, kind) in [("Kernels (form/mode) against the \(oraclePrecision)-bit oracle", SweepPoint.Kind.kernel),
                              ("MPFR oracle at p bits against the \(oraclePrecision)-bit oracle", .precision)] {
            let pts = points.filter { $0.kind == kind }
            if pts.isEmpty { continue }
            var series: [String] = []
            for p in pts where !series.contains(p.series) { series.append(p.series) }
            for (metric, value) in [("normwise relative error", { (p: SweepPoint) in NumberText.scientific(p.normwiseRelativeError) }),
                                    ("max ULP (binary32)", { (p: SweepPoint) in NumberText.significant(p.maxULP32) })] {
                out += "\(title): \(metric)\n"
                let rows = series.map { s -> [String] in
                    [s] + lengths.map { n in
                        pts.first { $0.series == s && $0.length == n }.map { value($0) + ($0.nonFiniteCount > 0 ? " (\($0.nonFiniteCount) NaN/Inf)" : "") } ?? "-"
                    }
                }
                out += TablePrinter.render(header: [kind == .kernel ? "form/mode" : "precision"] + lengths.map { "N=\($0)" },
                                           rows: rows,
                                           alignments: [.left] + lengths.map { _ in .right })
                out += "\n"
            }
        }
        return out
    }
}
