import Foundation
@testable import MambaTensors
import Testing

@Suite("NPZ")
struct NPZTests {
    static var arrays: [String: TensorData] {
        var arrays = Specials.arrays
        arrays["bf16"] = nil // NumPy has no bfloat16
        arrays["state"] = TensorData(Tensor(shape: [40, 50], storage: (0 ..< 2000).map { Double($0 % 7) }))
        arrays["empty"] = TensorData(Tensor<Float>(shape: [0, 3], storage: []))
        arrays["scalar"] = TensorData(Tensor<Double>(shape: [], storage: [-0.0]))
        return arrays
    }

    @Test(arguments: [false, true])
    func roundTripIsBitExact(compressed: Bool) throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("arrays.npz")
        try TensorFile.write(Self.arrays, to: path, format: compressed ? .npzCompressed : .npz)
        let back = try TensorFile.read(path)
        #expect(Set(back.keys) == Set(Self.arrays.keys))
        for (name, array) in Self.arrays {
            #expect(back[name] == array, "\(name)")
            #expect(back[name]?.bitPatterns == array.bitPatterns, "\(name)")
        }
        #expect(try directory.contents() == ["arrays.npz"])
    }

    @Test func membersAreNamedNpyAndStoredOrDeflatedAsAsked() throws {
        let directory = try TemporaryDirectory()
        for compressed in [false, true] {
            let path = directory.file(compressed ? "deflated.npz" : "stored.npz")
            try NPZ.write(Self.arrays, to: path, compressed: compressed)
            let members = try ZipReader.members(of: Data(readBytes(path)), file: path)
            #expect(members.map(\.name) == Self.arrays.keys.sorted().map { $0 + ".npy" })
            #expect(members.allSatisfy { $0.method == (compressed ? 8 : 0) })
        }
        let stored = try readBytes(directory.file("stored.npz")).count
        let deflated = try readBytes(directory.file("deflated.npz")).count
        #expect(deflated < stored / 2)
    }

    @Test func emptyArchiveRoundTrips() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("none.npz")
        try NPZ.write([:], to: path)
        #expect(try NPZ.read(contentsOf: path).isEmpty)
    }

    @Test func handBuiltArchiveReads() throws {
        let q = try NPY.encode(TensorData(Tensor([Float(1.5), -2])))
        var zip = ZipBuilder()
        zip.members = [ZipBuilder.Member(name: "q.npy", data: Array(q)),
                       ZipBuilder.Member(name: "dir/", data: [])]
        let arrays = try NPZ.read(Data(zip.build()), file: "hand.npz")
        #expect(Array(arrays.keys) == ["q"])
        #expect(try arrays["q"]?.asFloat32().storage == [1.5, -2])
    }

    @Test func bfloat16CannotBeWrittenToNPZ() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("bf.npz")
        let error = tensorFileError { try TensorFile.write(["b": Specials.arrays["bf16"]!], to: path) }
        guard case .unsupportedDType(path, "b", "bfloat16", _) = error else {
            Issue.record("expected unsupportedDType naming the file, got \(String(describing: error))")
            return
        }
        #expect(try directory.contents().isEmpty)
    }
}
