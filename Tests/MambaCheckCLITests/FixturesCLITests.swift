import Foundation
import MambaVerification
import Testing

/// `mambacheck fixtures check` on the committed golden vectors, and on
/// tampered copies of them.
@Suite("fixtures: committed set checks; tampering is caught")
struct FixturesCLITests {
    static let committed = CLI.packageRoot.appendingPathComponent("Fixtures")

    /// A private copy of the committed set (never modify the original).
    static func copyOfCommittedSet() throws -> URL {
        let dir = try CLI.temporaryDirectory("fixtures")
        let copy = dir.appendingPathComponent("Fixtures")
        try FileManager.default.copyItem(at: committed, to: copy)
        return copy
    }

    @Test func committedSetPasses() throws {
        let r = try CLI.run(["fixtures", "check", "--dir", Self.committed.path])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("PASS"), "\(r)")
        #expect(r.stdout.contains("ok   core-squared-decay-sum"), "\(r)")
        #expect(r.stdout.contains("ok   block-2mamba"), "\(r)")
        // Every base preset and every core is in the set.
        let manifest = try FixtureManifest(jsonData: Data(contentsOf: Self.committed.appendingPathComponent("manifest.json")))
        #expect(manifest.cases.filter { $0.kind == .core }.count == 14)
        #expect(manifest.cases.filter { $0.kind == .block }.count == 9)
        #expect(manifest.precision == 256 && manifest.decimalDigits >= 40)
        let bytes = manifest.files.reduce(0) { $0 + $1.bytes }
        #expect(bytes < 5_000_000, "the set is \(bytes) bytes")
    }

    /// One byte flipped in the data of an inputs file: the SHA-256 no longer
    /// matches, and the recomputed oracle no longer matches the stored reference.
    @Test func flippedByteFails() throws {
        let copy = try Self.copyOfCommittedSet()
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let file = copy.appendingPathComponent("core-squared-decay-sum.inputs.npz")
        var bytes = try Data(contentsOf: file)
        // Inside q's data: find q.npy's local header, then its npy magic and header length,
        // and flip the low byte of the 37th Float32.
        let member = bytes.range(of: Data("q.npy".utf8))!
        let magic = bytes.range(of: Data([0x93] + Array("NUMPY".utf8)), in: member.upperBound ..< bytes.endIndex)!
        let headerLength = Int(bytes[magic.lowerBound + 8]) | Int(bytes[magic.lowerBound + 9]) << 8
        let offset = magic.lowerBound + 10 + headerLength + 4 * 37
        bytes[offset] ^= 0x01
        try bytes.write(to: file)
        let r = try CLI.run(["fixtures", "check", "--dir", copy.path])
        #expect(r.status == 1, "\(r)")
        #expect(r.stderr.contains("core-squared-decay-sum.inputs.npz: SHA-256"), "\(r)")
        #expect(r.stdout.contains("FAIL core-squared-decay-sum"), "\(r)")
        // The archive's own CRC-32 or the recomputed oracle (whichever the reader meets first) fails too.
        #expect(r.stderr.contains("CRC-32 mismatch") || r.stderr.contains("differ from the recomputed oracle"), "\(r)")
    }

    /// A changed digit in a decimal listing, with the manifest's hash updated
    /// to match (a consistent forgery): the recomputation still catches it.
    @Test func forgedDecimalWithUpdatedHashFails() throws {
        let copy = try Self.copyOfCommittedSet()
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let name = "block-mamba2.reference.txt"
        let file = copy.appendingPathComponent(name)
        var text = try String(contentsOf: file, encoding: .utf8)
        let line = text.range(of: "out[0,3,5] = ")!
        let digit = text.index(line.upperBound, offsetBy: 30)       // a digit deep in the mantissa
        let old = text[digit]
        text.replaceSubrange(digit...digit, with: old == "7" ? "8" : "7")
        try Data(text.utf8).write(to: file)
        let manifestURL = copy.appendingPathComponent("manifest.json")
        var manifest = try FixtureManifest(jsonData: Data(contentsOf: manifestURL))
        let i = manifest.files.firstIndex { $0.name == name }!
        let data = try Data(contentsOf: file)
        manifest.files[i].sha256 = SHA256.hexDigest(data)
        manifest.files[i].bytes = data.count
        try manifest.jsonData().write(to: manifestURL)
        let r = try CLI.run(["fixtures", "check", "--dir", copy.path])
        #expect(r.status == 1, "\(r)")
        #expect(r.stderr.contains("\(name): 1 value line(s) differ from the recomputed oracle"), "\(r)")
        #expect(!r.stderr.contains("SHA-256"), "\(r)")
    }

    @Test func missingManifestIsAnInputError() throws {
        let dir = try CLI.temporaryDirectory("fixtures-empty")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["fixtures", "check", "--dir", dir.path])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("manifest.json"), "\(r)")
    }

    /// `generate` into a fresh directory reproduces the committed files byte for byte.
    @Test func generateIsDeterministic() throws {
        let dir = try CLI.temporaryDirectory("fixtures-gen")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["fixtures", "generate", "--dir", dir.path])
        #expect(r.status == 0, "\(r)")
        let fresh = try FixtureManifest(jsonData: Data(contentsOf: dir.appendingPathComponent("manifest.json")))
        let committed = try FixtureManifest(jsonData: Data(contentsOf: Self.committed.appendingPathComponent("manifest.json")))
        #expect(fresh.files == committed.files)
        #expect(fresh.cases == committed.cases)
    }
}
