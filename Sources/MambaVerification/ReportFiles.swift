import Foundation
import MambaTensors

/// The renderings of a `VerificationReport`.
public enum ReportFormat: String, CaseIterable, Codable, Sendable {
    /// `jsonData()`: the complete, machine-readable report.
    case json
    /// `junitXML()`: for CI test-report views.
    case junit
    /// `markdownSummary()`: for pull-request comments.
    case markdown
    /// `TablePrinter.render(_:)`: for terminals and logs.
    case table

    /// The conventional file extension.
    public var fileExtension: String {
        switch self {
        case .json: "json"
        case .junit: "xml"
        case .markdown: "md"
        case .table: "txt"
        }
    }
}

extension VerificationReport {
    /// The report rendered as `format`, UTF-8.
    public func rendered(as format: ReportFormat) throws -> Data {
        switch format {
        case .json: return try jsonData()
        case .junit: return Data(junitXML().utf8)
        case .markdown: return Data(markdownSummary().utf8)
        case .table: return Data(TablePrinter.render(self).utf8)
        }
    }

    /// Writes the report rendered as `format` to `path`, all or nothing.
    ///
    /// Uses `MambaTensors.AtomicFile`: the bytes go to a temporary file in the
    /// destination's directory, which is flushed (`fsync`) and renamed over
    /// `path`. On any failure the temporary file is removed and `path` keeps
    /// its previous contents (or stays absent); a reader never sees a
    /// half-written report.
    ///
    /// - Throws: `TensorFileError.unwritable(file: path, reason:)` naming the path and the cause.
    public func write(_ format: ReportFormat, to path: String) throws {
        try AtomicFile.write(rendered(as: format), to: path)
    }

    /// Writes several renderings as one set, all or nothing
    /// (`AtomicFile.writeAll`): every file is rendered and written to a
    /// temporary first, and none replaces its destination unless all were
    /// written — a CI job never picks up a JSON report without its JUnit twin,
    /// or a half-new, half-stale set.
    public func write(_ files: [(format: ReportFormat, path: String)]) throws {
        try AtomicFile.writeAll(files.map { (path: $0.path, data: try rendered(as: $0.format)) })
    }
}
