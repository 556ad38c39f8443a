import Foundation
import MambaTensors
import Testing

/// Files written by NumPy (and a hand-written safetensors file), made by
/// `scripts/make-tensor-test-files.py`; expected bits come from NumPy's own
/// arrays via `expected.json`.
@Suite("Files written by NumPy")
struct NumPyFileTests {
    static let files = ["arange_f2.npy", "arange_f4.npy", "arange_f8.npy", "ties_f2.npy", "specials_f2.npy",
                        "specials_f4.npy", "specials_f8.npy", "fortran_f8.npy", "fortran_f4.npy", "v2_f4.npy",
                        "v3_f4.npy", "bigendian_f4.npy", "bigendian_f8.npy", "cu_seqlens_i4.npy",
                        "cu_seqlens_i8.npy", "scalar_f8.npy", "empty_f4.npy", "stored.npz", "deflated.npz",
                        "mixed.safetensors"]

    @Test func everyGeneratedFileIsCovered() throws {
        #expect(Set(try expectedArrays().keys) == Set(Self.files))
    }

    @Test(arguments: files)
    func readsExactlyWhatNumPyWrote(file: String) throws {
        let expected = try #require(try expectedArrays()[file])
        let arrays = try TensorFile.read(try dataFile(file))
        #expect(Set(arrays.keys) == Set(expected.keys))
        for (name, want) in expected {
            let array = try #require(arrays[name], "\(file): \(name)")
            #expect(array.dtype.rawValue == want.dtype, "\(file): \(name)")
            #expect(array.shape == want.shape, "\(file): \(name)")
            #expect(array.bitPatterns == want.bitPatterns, "\(file): \(name)")
        }
    }

    @Test func headerVersionsAreRecognised() throws {
        #expect(try readBytes(dataFile("v2_f4.npy"))[6] == 2)
        #expect(try readBytes(dataFile("v3_f4.npy"))[6] == 3)
        let v2 = try NPY.read(contentsOf: dataFile("v2_f4.npy"))
        let v3 = try NPY.read(contentsOf: dataFile("v3_f4.npy"))
        #expect(try v2.asFloat32().storage == [-0.5, -0.25, 0, 0.25, 0.5, 0.75])
        #expect(v2 == v3)
    }

    @Test func arangeMatchesTheFormulaWithOurRounding() throws {
        let formula = Tensor(shape: [3, 4], storage: (0 ..< 12).map { Double($0) * 0.1 })
        #expect(try NPY.read(contentsOf: dataFile("arange_f8.npy")).asFloat64() == formula)
        for (file, dtype) in [("arange_f4.npy", DType.float32), ("arange_f2.npy", .float16)] {
            let read = try NPY.read(contentsOf: dataFile(file))
            #expect(read == TensorData(rounding: formula, to: dtype), "\(file)")
        }
    }

    @Test func float16TiesMatchNumPy() throws {
        let values: [Double] = [1 + 0x1p-11 + 0x1p-40, 1 + 0x1p-11, 1 + 3 * 0x1p-11, -(1 + 0x1p-11 + 0x1p-40),
                                65519.99, 65520, 0x1p-25, 0x1p-25 + 0x1p-60, -1.5 * 0x1p-24, 1e-10, 0.1, -0.0]
        let numpy = try NPY.read(contentsOf: dataFile("ties_f2.npy"))
        #expect(numpy == TensorData(rounding: Tensor(values), to: .float16))
    }

    @Test func bfloat16FormulaMatchesExactRationalRounding() throws {
        let formula: [Double] = (0 ..< 8).map { Double($0 - 3) * 0.3 }
        let edges: [Double] = [1 + 0x1p-8 + 0x1p-40, 1 + 0x1p-8, 1 + 3 * 0x1p-8, 3.0e38, 3.4e38, 0x1p-134,
                               0x1p-133 * 1.5, -1e-45]
        let values = formula + edges
        let file = try TensorFile.read(dataFile("mixed.safetensors"), array: "bf16_formula")
        #expect(file == TensorData(rounding: Tensor(values), to: .bfloat16))
    }

    @Test func safetensorsBFloat16KnownPatternsReadExactly() throws {
        let contents = try Safetensors.read(contentsOf: dataFile("mixed.safetensors"))
        #expect(contents.metadata == ["format": "pt", "made_by": "scripts/make-tensor-test-files.py"])
        let known = try #require(contents.arrays["bf16_known"])
        #expect(known.dtype == .bfloat16 && known.shape == [2, 5])
        let values = try known.asFloat32().storage
        let expected: [Float] = [1, -2, 0.5, 0x1p-133, 3.3895313892515355e38, 0.10009765625, -0.0, .infinity,
                                 -.infinity]
        #expect(values.prefix(9).map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(values[9].isNaN && values[9].bitPattern == 0x7FC1_0000)
    }

    @Test func fortranOrderFileIsInCOrder() throws {
        let array = try NPY.read(contentsOf: dataFile("fortran_f8.npy")).asFloat64()
        #expect(array.shape == [2, 3, 4])
        for i in 0 ..< 2 { for j in 0 ..< 3 { for k in 0 ..< 4 {
            #expect(array[i, j, k] == Double(i * 12 + j * 4 + k) * 1.5)
        } } }
    }

    @Test func integerOffsetsRead() throws {
        #expect(try NPY.read(contentsOf: dataFile("cu_seqlens_i4.npy")).asInt64().storage == [0, 5, 12, 20, -7])
        #expect(try NPY.read(contentsOf: dataFile("cu_seqlens_i8.npy")).asInt64().storage
                == [0, 5, 12, (1 << 40) + 3, -(1 << 62)])
    }

    @Test func scalarAndEmptyShapes() throws {
        let scalar = try TensorFile.read(dataFile("scalar_f8.npy"), array: "scalar_f8")
        #expect(scalar.shape == [])
        #expect(try scalar.asFloat64()[] == 3.25)
        let empty = try TensorFile.read(dataFile("empty_f4.npy"), array: "empty_f4")
        #expect(empty.shape == [0, 3] && empty.count == 0)
    }

    @Test func formatIsSniffedWithoutAnExtension() throws {
        let directory = try TemporaryDirectory()
        for (file, format) in [("arange_f4.npy", TensorFileFormat.npy), ("deflated.npz", .npz),
                               ("mixed.safetensors", .safetensors)] {
            let copy = directory.file("noextension-" + format.rawValue)
            try writeBytes(readBytes(dataFile(file)), to: copy)
            #expect(try TensorFile.format(of: copy) == format)
            #expect(try TensorFile.read(copy).count == TensorFile.read(dataFile(file)).count)
        }
    }
}
