import Foundation
import MambaTensors
import Testing

/// Damaged, lying and hostile files: each must give the specific error,
/// naming the file, without crashing, hanging or allocating what the header claims.
@Suite("Malformed files")
struct MalformedFileTests {
    /// Reads `bytes` written to a file called `name`, expecting an error that names it.
    func readError(_ bytes: [UInt8], named name: String, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> TensorFileError? {
        let directory = try TemporaryDirectory()
        let path = directory.file(name)
        try writeBytes(bytes, to: path)
        let error = tensorFileError({ _ = try TensorFile.read(path) }, sourceLocation: sourceLocation)
        #expect(error?.file == path, sourceLocation: sourceLocation)
        #expect(error?.description.contains(path) == true, sourceLocation: sourceLocation)
        return error
    }

    func npy(_ header: String, data: [UInt8] = [], major: UInt8 = 1) -> [UInt8] {
        Array(NPYTests.image(header: header, data: data, major: major))
    }

    func safetensors(_ json: String, data: [UInt8] = []) -> [UInt8] {
        let header = Array(json.utf8)
        let n = header.count
        return (0 ..< 8).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) } + header + data
    }

    // MARK: .npy

    @Test func everyTruncationOfAnNpyFileIsReported() throws {
        let whole = try readBytes(dataFile("arange_f4.npy"))   // 128-byte header, 48 data bytes
        for length in 0 ..< whole.count {
            let error = tensorFileError { _ = try NPY.read(Data(whole.prefix(length)), file: "cut.npy", name: "a") }
            switch (length, error) {
            case (0 ..< 10, .truncated("cut.npy", "a", _, _, length)?): break
            case (10 ..< 128, .truncated("cut.npy", "a", "npy header", 128, length)?): break
            case (128..., .dataSizeMismatch("cut.npy", "a", [3, 4], .float32, 48, length - 128)?): break
            default: Issue.record("length \(length): unexpected \(String(describing: error))")
            }
        }
        let error = try readError(Array(whole.prefix(140)), named: "short.npy")
        #expect(error?.description.contains("shorter than the header implies") == true)
    }

    @Test func dataLongerThanTheHeaderSaysIsReported() throws {
        let bytes = try readBytes(dataFile("arange_f4.npy")) + [0, 0, 0, 0]
        let error = try readError(bytes, named: "long.npy")
        guard case .dataSizeMismatch(_, "long", [3, 4], .float32, 48, 52)? = error else {
            Issue.record("expected dataSizeMismatch, got \(String(describing: error))")
            return
        }
        #expect(error?.description.contains("longer than the header implies") == true)
    }

    @Test(arguments: [
        "(1099511627776, 1099511627776)",            // 2^80 elements: overflows
        "(1048576, 1048576)",                        // 2^40 × 8 bytes: far more than the file
        "(123456789012345678901234567890,)",         // an axis that is not a 64-bit integer
        "(4, -1)",
        "(" + String(repeating: "1, ", count: 65) + ")",
    ])
    func absurdShapesAreRejectedBeforeAllocating(shape: String) throws {
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': \(shape), }"
        let error = try readError(npy(header, data: [UInt8](repeating: 0, count: 64)), named: "absurd.npy")
        guard case .absurdShape(_, "absurd", _, _)? = error else {
            Issue.record("expected absurdShape, got \(String(describing: error))")
            return
        }
    }

    @Test(arguments: ["'<c8'", "'|u1'", "'<U5'", "'<f16'", "'|b1'", "[('a', '<f4')]", "'bfloat16'"])
    func unsupportedNpyDTypesAreNamed(descr: String) throws {
        let header = "{'descr': \(descr), 'fortran_order': False, 'shape': (1,), }"
        let error = try readError(npy(header, data: [0, 0, 0, 0]), named: "dtype.npy")
        guard case .unsupportedDType(_, "dtype", _, _)? = error else {
            Issue.record("expected unsupportedDType, got \(String(describing: error))")
            return
        }
    }

    @Test(arguments: [
        ("{'descr': '<f4', 'fortran_order': False}", "shape"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "extra"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "shape"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 'a')}", "shape"),
        ("{'descr': '<f4', 'fortran_order': 'no', 'shape': (1,)}", "fortran_order"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}", nil),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", nil),
        ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", nil),
        ("['descr', '<f4']", nil),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': " + String(repeating: "(", count: 100_000) + "}", nil),
    ] as [(String, String?)])
    func malformedNpyHeadersNameTheField(header: String, field: String?) throws {
        let major: UInt8 = header.utf8.count > 60_000 ? 2 : 1
        let error = try readError(npy(header, data: [0, 0, 0, 0], major: major), named: "bad.npy")
        guard case .malformedHeader(_, "bad", field, _)? = error else {
            Issue.record("expected malformedHeader(field: \(field ?? "nil")), got \(String(describing: error))")
            return
        }
    }

    @Test func unknownNpyVersionIsReported() throws {
        var bytes = try readBytes(dataFile("arange_f4.npy"))
        bytes[6] = 4
        guard case .malformedHeader(_, _, "version", _)? = try readError(bytes, named: "v4.npy") else {
            Issue.record("expected a version error")
            return
        }
    }

    @Test func hugeHeaderLengthIsTruncationNotAllocation() throws {
        // Version 2.0 with a 4 GiB header length.
        let bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [2, 0, 0xFF, 0xFF, 0xFF, 0xFF] + Array("{}".utf8)
        guard case .truncated(_, _, "npy header", _, 14)? = try readError(bytes, named: "h.npy") else {
            Issue.record("expected truncated header")
            return
        }
    }

    // MARK: bad magic, unknown formats, missing arrays

    @Test func badMagicIsReportedForEachFormat() throws {
        let garbage = Array("GARBAGE, NOT A TENSOR FILE".utf8)
        for (name, format) in [("g.npy", "npy"), ("g.npz", "npz (zip)")] {
            guard case .badMagic(_, _, format, _, let found)? = try readError(garbage, named: name) else {
                Issue.record("\(name): expected badMagic")
                continue
            }
            #expect(found.hasPrefix("\"GARB"))
        }
        guard case .badMagic(_, nil, "safetensors", _, _)? = try readError(safetensors("[1, 2]"), named: "g.safetensors") else {
            Issue.record("expected badMagic for safetensors")
            return
        }
        guard case .unrecognizedFormat? = try readError(garbage, named: "g.bin") else {
            Issue.record("expected unrecognizedFormat")
            return
        }
    }

    @Test func missingFileIsUnreadable() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("nothing.npz")
        guard case .unreadable(path, _)? = tensorFileError({ _ = try TensorFile.read(path) }) else {
            Issue.record("expected unreadable")
            return
        }
        guard case .unreadable(directory.path, _)? = tensorFileError({ _ = try TensorFile.read(directory.path) }) else {
            Issue.record("expected unreadable for a directory")
            return
        }
    }

    @Test func missingArrayListsWhatIsThere() throws {
        let path = try dataFile("stored.npz")
        let error = tensorFileError { _ = try TensorFile.read(path, array: "v") }
        guard case let .missingArray(file, "v", available)? = error else {
            Issue.record("expected missingArray, got \(String(describing: error))")
            return
        }
        #expect(file == path)
        #expect(Set(available) == ["q", "k", "cu_seqlens"])
        #expect(error?.description.contains("cu_seqlens, k, q") == true)
    }

    @Test func wrongDTypeNamesFileAndArray() throws {
        let path = try dataFile("stored.npz")
        let q = try TensorFile.read(path, array: "q")
        let error = tensorFileError { _ = try q.asInt64() }
        guard case .wrongDType(path, "q", _, .float32)? = error else {
            Issue.record("expected wrongDType, got \(String(describing: error))")
            return
        }
    }

    // MARK: .npz

    @Test func truncatedNpzIsReported() throws {
        let whole = try readBytes(dataFile("deflated.npz"))
        for length in [4, 30, whole.count / 2, whole.count - 1] {
            guard case .corruptArchive(_, nil, let detail)? = try readError(Array(whole.prefix(length)), named: "cut.npz") else {
                Issue.record("length \(length): expected corruptArchive")
                continue
            }
            #expect(detail.contains("truncated"))
        }
    }

    @Test func crcMismatchIsReported() throws {
        var bytes = try readBytes(dataFile("stored.npz"))
        let dataStart = 30 + Int(bytes[26]) + Int(bytes[27]) << 8 + Int(bytes[28]) + Int(bytes[29]) << 8
        bytes[dataStart + 140] ^= 0x01
        guard case .corruptArchive(_, .some(let member), let detail)? = try readError(bytes, named: "crc.npz") else {
            Issue.record("expected corruptArchive")
            return
        }
        #expect(member.hasSuffix(".npy") && detail.contains("CRC-32"))
    }

    /// Deflate streams that never reach their final block. The first, a stored
    /// block claiming 65535 bytes, swallows the rest of the file; ZIPFoundation
    /// 0.9.20's `Archive.extract` then loops forever on Linux.
    @Test(arguments: [[0x00, 0xFF, 0xFF, 0x00, 0x00, 0x61, 0x62, 0x63], [0x00, 0x05, 0x00, 0xFA, 0xFF, 0x61, 0x62, 0x63]]
          as [[UInt8]])
    func deflateStreamRunningOffTheEndIsAnErrorNotAHang(stream: [UInt8]) throws {
        var zip = ZipBuilder()
        zip.members = [ZipBuilder.Member(name: "x.npy", method: 8, data: stream, crc: 0, uncompressedSize: 100)]
        guard case .corruptArchive(_, "x.npy", _)? = try readError(zip.build(), named: "endless.npz") else {
            Issue.record("expected corruptArchive for member x.npy")
            return
        }
    }

    @Test func zipBombDeclarationIsRejected() throws {
        var zip = ZipBuilder()
        zip.members = [ZipBuilder.Member(name: "x.npy", method: 8, data: [0x03, 0x00], crc: 0,
                                         uncompressedSize: 1 << 31)]
        guard case .corruptArchive(_, "x.npy", let detail)? = try readError(zip.build(), named: "bomb.npz") else {
            Issue.record("expected corruptArchive")
            return
        }
        #expect(detail.contains("more than deflate can encode"))
    }

    @Test func duplicateNpzNamesAreReported() throws {
        let member = Array(try NPY.encode(TensorData(Tensor([1.0]))))
        var zip = ZipBuilder()
        zip.members = [ZipBuilder.Member(name: "a.npy", data: member), ZipBuilder.Member(name: "a", data: member)]
        guard case .duplicateArray(_, "a")? = try readError(zip.build(), named: "dup.npz") else {
            Issue.record("expected duplicateArray")
            return
        }
    }

    @Test func nonNpyMemberIsReportedWithItsName() throws {
        var zip = ZipBuilder()
        zip.members = [ZipBuilder.Member(name: "notes.txt", data: Array("hello".utf8))]
        guard case .badMagic(_, "notes.txt", "npy", _, _)? = try readError(zip.build(), named: "notes.npz") else {
            Issue.record("expected badMagic naming the member")
            return
        }
    }

    @Test func unsupportedCompressionIsReported() throws {
        var zip = ZipBuilder()
        zip.members = [ZipBuilder.Member(name: "a.npy", method: 12, data: [1, 2, 3])]
        guard case .corruptArchive(_, "a.npy", let detail)? = try readError(zip.build(), named: "bz.npz") else {
            Issue.record("expected corruptArchive")
            return
        }
        #expect(detail.contains("compression method 12"))
    }

    // MARK: safetensors

    @Test func safetensorsHeaderLengthIsCheckedFirst() throws {
        var bytes = safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        bytes[7] = 0x40   // header length ≈ 2^62
        guard case .malformedHeader(_, nil, nil, _)? = try readError(bytes, named: "len.safetensors") else {
            Issue.record("expected malformedHeader for an enormous header length")
            return
        }
        bytes[7] = 0
        bytes[0] = 200    // longer than the file, within the cap
        guard case .truncated(_, nil, "safetensors JSON header", 208, _)? = try readError(bytes, named: "t.safetensors") else {
            Issue.record("expected truncated header")
            return
        }
        guard case .truncated(_, nil, _, 8, 3)? = try readError([1, 2, 3], named: "tiny.safetensors") else {
            Issue.record("expected truncated length")
            return
        }
    }

    @Test(arguments: [
        (#"{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}"#, "absurdShape"),
        (#"{"a":{"dtype":"F32","shape":[99999999999999999999999],"data_offsets":[0,4]}}"#, "absurdShape"),
        (#"{"a":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4]}}"#, "absurdShape"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, "dataSizeMismatch"),
        (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4000]}}"#, "truncated"),
        (#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#, "malformedHeader"),
        (#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#, "malformedHeader"),
        (#"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, "malformedHeader"),
        (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, "malformedHeader"),
        (#"{"a":{"dtype":"F32","shape":[1]}}"#, "malformedHeader"),
        (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}"#, "malformedHeader"),
        (#"{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}"#, "unsupportedDType"),
        (#"{"a":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}}"#, "unsupportedDType"),
        (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
         "duplicateArray"),
        (#"{"__metadata__":{"n":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, "malformedHeader"),
        (#"{"a":"# + String(repeating: "[", count: 100_000) + "}", "malformedHeader"),
    ])
    func malformedSafetensorsHeaders(json: String, expected: String) throws {
        let error = try readError(safetensors(json, data: [0, 0, 0x80, 0x3F]), named: "bad.safetensors")
        let kind = error.flatMap { Mirror(reflecting: $0).children.first?.label }
        #expect(kind == expected, "\(String(describing: error))")
    }

    // MARK: robustness sweep

    /// Every single-byte corruption of every generated file is either read
    /// or reported as a `TensorFileError`; nothing traps or hangs.
    @Test func everySingleByteCorruptionIsHandled() throws {
        for file in NumPyFileTests.files {
            let whole = try readBytes(dataFile(file))
            for position in whole.indices {
                for flip: UInt8 in [0xFF, 0x01] {
                    var bytes = whole
                    bytes[position] ^= flip
                    do {
                        switch file.split(separator: ".").last {
                        case "npy": _ = try NPY.read(Data(bytes), file: file, name: "x")
                        case "npz": _ = try NPZ.read(Data(bytes), file: file)
                        default: _ = try Safetensors.read(Data(bytes), file: file)
                        }
                    } catch let error as TensorFileError {
                        #expect(error.file == file)
                    }
                }
            }
        }
    }
}
