import MambaPrecision
import MambaTensors
import Testing

@Suite("Tensor")
struct TensorTests {
    @Test func shapeCountRankAndStrides() {
        let t = Tensor(shape: [2, 3, 4], repeating: 0.0)
        #expect(t.count == 24)
        #expect(t.rank == 3)
        #expect(t.strides == [12, 4, 1])
        #expect(t.storage.count == 24)
    }

    @Test func rowMajorIndexing() {
        var t = Tensor(shape: [2, 3], storage: [0, 1, 2, 10, 11, 12])
        #expect(t[0, 2] == 2)
        #expect(t[1, 0] == 10)
        #expect(t[index: [1, 2]] == 12)
        #expect(t.offset(of: [1, 1]) == 4)
        t[1, 1] = 99
        #expect(t.storage == [0, 1, 2, 10, 99, 12])
    }

    @Test func rankZeroHoldsOneElement() {
        var t = Tensor(shape: [], storage: [3.5])
        #expect(t.count == 1)
        #expect(t.rank == 0)
        #expect(t.strides == [])
        #expect(t[] == 3.5)
        t[] = -1
        #expect(t.storage == [-1])
    }

    @Test func zeroExtentHoldsNothing() {
        let t = Tensor<Float>(shape: [0, 5], storage: [])
        #expect(t.count == 0)
        #expect(t.strides == [5, 1])
    }

    @Test func reshapedKeepsRowMajorOrder() {
        let t = Tensor(shape: [2, 3], storage: Array(0 ..< 6))
        let r = t.reshaped([3, 2])
        #expect(r.shape == [3, 2])
        #expect(r[2, 0] == 4)
        #expect(r.storage == t.storage)
    }

    @Test func mapKeepsShape() {
        let t = Tensor(shape: [2, 2], storage: [1, 2, 3, 4])
        let doubled = t.map { Double($0) * 0.5 }
        #expect(doubled.shape == [2, 2])
        #expect(doubled.storage == [0.5, 1, 1.5, 2])
    }

    @Test func elementCountDetectsOverflowAndNegativeAxes() {
        #expect(Tensor<Double>.elementCount(of: [2, 3]) == 6)
        #expect(Tensor<Double>.elementCount(of: []) == 1)
        #expect(Tensor<Double>.elementCount(of: [1 << 40, 1 << 40]) == nil)
        #expect(Tensor<Double>.elementCount(of: [4, -1]) == nil)
    }

    @Test func equalityIsElementwise() {
        #expect(Tensor([1.0, 2.0]) == Tensor(shape: [2], storage: [1.0, 2.0]))
        #expect(Tensor([1.0, 2.0]) != Tensor(shape: [2, 1], storage: [1.0, 2.0]))
        #expect(Tensor([Double.nan]) != Tensor([Double.nan]))
    }

    @Test func bigFloatTensorsFromFileValues() throws {
        let data = TensorData(Tensor([0.1, -2.5]))
        let big = try data.asBigFloat(precision: 200)
        #expect(big.shape == [2])
        #expect(big.storage.map(\.doubleValue) == [0.1, -2.5])
        #expect(big.storage.allSatisfy { $0.precision == 200 })
        let ints = try TensorData(Tensor<Int64>([Int64.max])).asBigFloat(precision: 64)
        #expect(ints.storage[0] == BigFloat(Int.max, precision: 64))
    }
}
