import Foundation
import MambaTensors
import Testing

@Suite("NPY")
struct NPYTests {
    static let numpyDTypes = ["f16", "f32", "f64", "i32", "i64"]

    @Test(arguments: numpyDTypes, [NPY.Version.v1, .v2, .v3])
    func roundTripIsBitExact(name: String, version: NPY.Version) throws {
        let array = try #require(Specials.arrays[name])
        let image = try NPY.encode(array, version: version)
        #expect(Int(image[6]) == [NPY.Version.v1: 1, .v2: 2, .v3: 3][version])
        let back = try NPY.read(image, file: "mem.npy", name: name)
        #expect(back == array)
        #expect(back.bitPatterns == array.bitPatterns)
        #expect(back.dtype == array.dtype && back.shape == array.shape)
    }

    @Test(arguments: [[Int](), [0], [7], [3, 5], [2, 1, 4], [1, 2, 3, 4, 5], [123_456_789_012, 0]])
    func dataStartsAtAMultipleOf64(shape: [Int]) throws {
        let count = Tensor<Double>.elementCount(of: shape) ?? 0
        let array = TensorData(Tensor(shape: shape, repeating: Float(1.5)))
        #expect(array.count == count)
        let image = try NPY.encode(array)
        let headerLength = Int(image[8]) | Int(image[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        #expect(image.count == 10 + headerLength + 4 * count)
        #expect(image[10 + headerLength - 1] == UInt8(ascii: "\n"))
        #expect(try NPY.read(image, file: "mem.npy", name: "x") == array)
    }

    /// What `numpy.save` wrote, re-encoded, is byte-for-byte the same file.
    @Test(arguments: ["arange_f2.npy", "arange_f4.npy", "arange_f8.npy", "specials_f2.npy", "specials_f4.npy",
                      "specials_f8.npy", "cu_seqlens_i4.npy", "cu_seqlens_i8.npy", "scalar_f8.npy", "empty_f4.npy"])
    func encodingMatchesNumPyByteForByte(file: String) throws {
        let path = try dataFile(file)
        let array = try NPY.read(contentsOf: path)
        #expect(try Array(NPY.encode(array)) == readBytes(path))
    }

    @Test func fileRoundTripThroughTensorFile() throws {
        let directory = try TemporaryDirectory()
        for (name, array) in Specials.arrays where name != "bf16" {
            let path = directory.file(name + ".npy")
            try TensorFile.write([name: array], to: path)
            let back = try TensorFile.read(path)
            #expect(Array(back.keys) == [name])
            #expect(back[name] == array)
            #expect(back[name]?.source == path && back[name]?.name == name)
        }
    }

    @Test func headersInOtherSpellingsParse() throws {
        let headers = [
            #"{"descr": "<f4", "shape": (2,), "fortran_order": False}"#,
            "{ 'shape' : ( 2 , ) , 'fortran_order' : False , 'descr' : '<f4' , }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }",
            "{'descr':'=f4','fortran_order':False,'shape':(2,)}",
        ]
        for header in headers {
            let image = Self.image(header: header, data: [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40])
            let array = try NPY.read(image, file: "h.npy", name: "h")
            #expect(try array.asFloat32().storage == [1, 2], "\(header)")
        }
    }

    @Test func bigEndianDataIsConverted() throws {
        let image = Self.image(header: "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }",
                               data: [0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE])
        #expect(try NPY.read(image, file: "be.npy", name: "be").asInt64().storage == [1, -2])
    }

    @Test func fortranOrderIsTransposedToCOrder() throws {
        // Column-major 2×3 holding [[1, 2, 3], [4, 5, 6]] is stored 1 4 2 5 3 6.
        let stored: [UInt8] = [1, 4, 2, 5, 3, 6].flatMap { v in [UInt8(v), 0, 0, 0] }
        let image = Self.image(header: "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", data: stored)
        let array = try NPY.read(image, file: "f.npy", name: "f")
        #expect(array.shape == [2, 3])
        #expect(try array.asInt64().storage == [1, 2, 3, 4, 5, 6])
    }

    @Test func bfloat16CannotBeWrittenToNPY() throws {
        let error = tensorFileError { _ = try NPY.encode(Specials.arrays["bf16"]!, file: "x.npy") }
        guard case .unsupportedDType(let file, _, "bfloat16", _) = error else {
            Issue.record("expected unsupportedDType, got \(String(describing: error))")
            return
        }
        #expect(file == "x.npy")
    }

    /// A version 1.0 `.npy` image with `header` (padded like NumPy) and raw `data`.
    static func image(header: String, data: [UInt8], major: UInt8 = 1) -> Data {
        var header = Array(header.utf8)
        let prefix = major == 1 ? 10 : 12
        header += [UInt8](repeating: 0x20, count: (64 - (prefix + header.count + 1) % 64) % 64) + [0x0A]
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        let n = header.count
        let length = (0 ..< 4).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) }
        bytes += major == 1 ? Array(length.prefix(2)) : length
        return Data(bytes + header + data)
    }
}
