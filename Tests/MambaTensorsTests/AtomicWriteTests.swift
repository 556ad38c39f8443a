import Foundation
import MambaTensors
import Testing

@Suite("Atomic writes")
struct AtomicWriteTests {
    struct InjectedFailure: Error {}

    @Test func failureMidWriteLeavesTheOriginalAndNoTemporaryFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("q.npy")
        try TensorFile.write(["q": TensorData(Tensor([1.0, 2.0]))], to: path)
        let original = try readBytes(path)

        var temporary: String?
        #expect(throws: InjectedFailure.self) {
            try AtomicFile.write(to: path) { temporaryPath in
                temporary = temporaryPath
                // Half a file's worth of new bytes, then the failure.
                try Data(original.prefix(40)).write(to: URL(fileURLWithPath: temporaryPath))
                #expect(FileManager.default.fileExists(atPath: temporaryPath))
                throw InjectedFailure()
            }
        }
        #expect(try readBytes(path) == original)
        #expect(try directory.contents() == ["q.npy"])
        let used = try #require(temporary)
        #expect(URL(fileURLWithPath: used).deletingLastPathComponent().path == directory.path)
        #expect(!FileManager.default.fileExists(atPath: used))
    }

    @Test func failedTensorFileWritesLeaveTheOriginal() throws {
        let directory = try TemporaryDirectory()
        for name in ["x.npy", "x.npz", "x.safetensors"] {
            let path = directory.file(name)
            try TensorFile.write(["x": TensorData(Tensor([Float(3)]))], to: path)
        }
        let before = try directory.contents().map { try readBytes(directory.file($0)) }
        let bf16 = TensorData(bitPatterns: Tensor([0x3F80] as [UInt16]), dtype: .bfloat16)
        _ = tensorFileError { try TensorFile.write(["a": TensorData(Tensor([1.0])), "b": bf16], to: directory.file("x.npz")) }
        _ = tensorFileError { try TensorFile.write(["a": bf16, "b": bf16], to: directory.file("x.npy")) }
        _ = tensorFileError { try TensorFile.write(["__metadata__": bf16], to: directory.file("x.safetensors")) }
        #expect(try directory.contents() == ["x.npy", "x.npz", "x.safetensors"])
        #expect(try directory.contents().map { try readBytes(directory.file($0)) } == before)
    }

    @Test func renameFailureCleansUp() throws {
        let directory = try TemporaryDirectory()
        let target = directory.file("occupied.npy")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        _ = FileManager.default.createFile(atPath: target + "/keep", contents: Data([1]))
        let error = tensorFileError { try TensorFile.write(["x": TensorData(Tensor([1.0]))], to: target) }
        guard case .unwritable(target, _)? = error else {
            Issue.record("expected unwritable, got \(String(describing: error))")
            return
        }
        #expect(try directory.contents() == ["occupied.npy"])
    }

    @Test func missingDirectoryIsReported() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("absent/x.safetensors")
        guard case .unwritable(path, _)? = tensorFileError({
            try TensorFile.write(["x": TensorData(Tensor([1.0]))], to: path)
        }) else {
            Issue.record("expected unwritable")
            return
        }
        #expect(try directory.contents().isEmpty)
    }

    @Test func overwriteReplacesContentsAndKeepsPermissions() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("w.safetensors")
        try TensorFile.write(["a": TensorData(Tensor([1.0]))], to: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        try TensorFile.write(["b": TensorData(Tensor([2.0, 3.0]))], to: path)
        #expect(try Array(TensorFile.read(path).keys) == ["b"])
        let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(permissions == 0o600)
        #expect(try directory.contents() == ["w.safetensors"])
    }

    @Test func unknownExtensionIsRefusedBeforeWriting() throws {
        let directory = try TemporaryDirectory()
        guard case .invalidArguments? = tensorFileError({
            try TensorFile.write(["x": TensorData(Tensor([1.0]))], to: directory.file("x.bin"))
        }) else {
            Issue.record("expected invalidArguments")
            return
        }
        #expect(try directory.contents().isEmpty)
    }
}
