import Foundation
import MambaTensors
import Testing

@Suite("Safetensors")
struct SafetensorsTests {
    @Test func roundTripIsBitExactForEveryDType() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("all.safetensors")
        let metadata = ["format": "pt", "note": "quote \" backslash \\ newline \n ünïcode"]
        try Safetensors.write(Specials.arrays, metadata: metadata, to: path)
        let back = try Safetensors.read(contentsOf: path)
        #expect(back.metadata == metadata)
        #expect(Set(back.arrays.keys) == Set(Specials.arrays.keys))
        for (name, array) in Specials.arrays {
            #expect(back.arrays[name] == array, "\(name)")
            #expect(back.arrays[name]?.dtype == array.dtype, "\(name)")
        }
        #expect(try TensorFile.read(path) == back.arrays)
    }

    @Test(arguments: [DType.float16, .bfloat16, .float32, .float64])
    func writingRoundedValuesThroughTensorFile(dtype: DType) throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("x.safetensors")
        let values = Tensor(shape: [2, 3], storage: [0.1, -0.2, 0.3, 1e-6, 65504, -0.0])
        try TensorFile.write(["x": values], to: path, dtype: dtype)
        let back = try TensorFile.read(path, array: "x")
        #expect(back.dtype == dtype)
        #expect(back == TensorData(rounding: values, to: dtype))
    }

    @Test func headerIsPaddedToEightBytesAndOffsetsTileTheBuffer() throws {
        let image = try Safetensors.encode(Specials.arrays)
        let headerLength = image.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
        let header = try #require(String(data: image[8 ..< 8 + headerLength], encoding: .utf8))
        #expect(header.hasPrefix("{") && !header.contains("__metadata__"))
        let expectedBytes = Specials.arrays.values.reduce(0) { $0 + $1.count * $1.dtype.byteSize }
        #expect(image.count == 8 + headerLength + expectedBytes)
        #expect(header.contains(#""bf16":{"dtype":"BF16","shape":[3,4],"data_offsets":[0,24]}"#))
    }

    @Test func metadataNameIsReserved() {
        let error = tensorFileError { _ = try Safetensors.encode(["__metadata__": Specials.arrays["f32"]!], file: "m") }
        guard case .invalidArguments("m", _) = error else {
            Issue.record("expected invalidArguments, got \(String(describing: error))")
            return
        }
    }

    @Test func emptyTensorsAndScalarsRoundTrip() throws {
        let arrays = ["empty": TensorData(Tensor<Float>(shape: [0, 4], storage: [])),
                      "scalar": TensorData(Tensor<Double>(shape: [], storage: [2.5]))]
        let back = try Safetensors.read(Safetensors.encode(arrays), file: "mem")
        #expect(back.arrays == arrays)
        #expect(back.arrays["scalar"]?.shape == [])
    }
}
