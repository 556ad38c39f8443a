import MambaTensors
import Testing

@Suite("TensorData slicing")
struct TensorSlicingTests {
    /// `[2, 3, 4]` with element `(i, j, k)` equal to `100i + 10j + k`, so every value names its index.
    static let cube: Tensor<Float> = {
        var values: [Float] = []
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { values.append(Float(100 * i + 10 * j + k)) } } }
        return Tensor(shape: [2, 3, 4], storage: values)
    }()

    @Test func sliceKeepsTheSelectedIndicesOnEveryAxis() throws {
        let t = TensorData(Self.cube)
        let middle = t.sliced(axis: 1, 1..<3)
        #expect(middle.shape == [2, 2, 4] && middle.dtype == DType.float32)
        let values = try middle.asFloat32().storage
        #expect(values.prefix(4) == [10, 11, 12, 13] && values.suffix(4) == [120, 121, 122, 123])
        #expect(try t.sliced(axis: 0, 1..<2).asFloat32().storage.first == 100)
        #expect(try t.sliced(axis: 2, 3..<4).asFloat32().storage == [3, 13, 23, 103, 113, 123])
        #expect(t.sliced(axis: 1, 2..<2).shape == [2, 0, 4] && t.sliced(axis: 1, 2..<2).count == 0)
    }

    /// Splitting along any axis and joining the parts gives the array back, bit for bit
    /// (float16 payload with a NaN and −0, whose bits a value comparison would lose).
    @Test(arguments: [0, 1, 2])
    func concatenationInvertsSlicing(_ axis: Int) {
        var bits: [UInt16] = (0..<24).map { (i: Int) -> UInt16 in UInt16(0x3C00 + i) }
        bits[5] = 0x7E01   // a NaN with payload
        bits[7] = 0x8000   // −0
        let t = TensorData(bitPatterns: Tensor(shape: [2, 3, 4], storage: bits), dtype: .float16)
        let n = t.shape[axis]
        let cuts = [0, 1, 1, n]   // an empty middle part
        let parts = (0..<3).map { t.sliced(axis: axis, cuts[$0]..<cuts[$0 + 1]) }
        #expect(TensorData.concatenated(parts, axis: axis) == t)
    }
}
