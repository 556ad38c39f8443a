import Foundation
import MambaTensors
import MambaVerification
import Testing

@Suite("Writing reports atomically")
struct AtomicWriteTests {
    func scratchDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "mambaverification-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func leftovers(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".tmp-") }
    }

    @Test func writesEveryFormat() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let report = try ReportFixtures.standard()
        for format in ReportFormat.allCases {
            let path = directory + "/report." + format.fileExtension
            try report.write(format, to: path)
            try report.write(format, to: path)                     // replacing is fine too
            #expect(FileManager.default.contents(atPath: path) == (try report.rendered(as: format)))
        }
        #expect(try leftovers(in: directory).isEmpty)
        let back = try VerificationReport(jsonData: Data(contentsOf: URL(fileURLWithPath: directory + "/report.json")))
        #expect(try back.jsonData() == report.jsonData())
    }

    @Test func failedWriteLeavesTheOriginalIntactAndNoTemporaryFile() throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/report.json"
        let original = Data("original\n".utf8)
        try original.write(to: URL(fileURLWithPath: path))
        struct Interrupted: Error {}
        // A writer that dies half way through.
        #expect(throws: Interrupted.self) {
            try AtomicFile.write(to: path) { temporary in
                try Data("{\"half\": ".utf8).write(to: URL(fileURLWithPath: temporary))
                throw Interrupted()
            }
        }
        #expect(FileManager.default.contents(atPath: path) == original)
        #expect(try leftovers(in: directory).isEmpty)

        // The destination cannot be replaced (it is a non-empty directory): the error names the path.
        let blocked = directory + "/blocked.json"
        try FileManager.default.createDirectory(atPath: blocked + "/inside", withIntermediateDirectories: true)
        do {
            try ReportFixtures.standard().write(.json, to: blocked)
            Issue.record("writing over a directory succeeded")
        } catch {
            #expect("\(error)".contains(blocked))
        }
        #expect(try leftovers(in: directory).isEmpty)
        #expect(FileManager.default.fileExists(atPath: blocked + "/inside"))
        #expect(FileManager.default.contents(atPath: path) == original)

        // A missing directory.
        let nowhere = directory + "/missing/report.json"
        #expect(throws: TensorFileError.self) { try ReportFixtures.standard().write(.junit, to: nowhere) }
    }
}
