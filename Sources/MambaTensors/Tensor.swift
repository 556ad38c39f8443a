/// A dense, contiguous, row-major (C order) array of any rank.
///
/// `storage[i]` holds the element whose multi-index `(i₀, …, iₙ₋₁)` satisfies
/// `i = Σₖ iₖ · strides[k]`, where the last axis varies fastest. A rank-0
/// tensor (`shape == []`) holds exactly one element; a tensor with a zero in
/// its shape holds none.
///
/// `Tensor` is a value type backed by an `Array`, so copies are cheap until
/// one side is mutated. The invariant `storage.count == count` is checked on
/// every assignment to `storage`; index bounds are checked by `precondition`
/// (they are programming errors, never file content — file readers validate
/// shapes before they build a tensor).
///
/// Arbitrary-precision tensors are simply `Tensor<BigFloat>`.
public struct Tensor<Element>: Sendable where Element: Sendable {
    /// The extent of each axis, outermost first.
    public let shape: [Int]

    /// The number of elements, the product of `shape` (1 for rank 0).
    public let count: Int

    /// The elements in row-major order. Reassigning it must keep `count`.
    public var storage: [Element] {
        didSet {
            precondition(storage.count == count,
                         "Tensor storage must keep \(count) elements for shape \(shape), got \(storage.count)")
        }
    }

    /// A tensor of `shape` with every element equal to `value`.
    public init(shape: [Int], repeating value: Element) {
        let count = Self.checkedCount(shape)
        self.shape = shape
        self.count = count
        self.storage = Array(repeating: value, count: count)
    }

    /// A tensor of `shape` whose row-major elements are `storage`.
    ///
    /// - Precondition: every axis is non-negative and `storage.count` equals
    ///   the product of `shape`.
    public init(shape: [Int], storage: [Element]) {
        let count = Self.checkedCount(shape)
        precondition(storage.count == count,
                     "shape \(shape) needs \(count) elements, storage has \(storage.count)")
        self.shape = shape
        self.count = count
        self.storage = storage
    }

    /// A rank-1 tensor holding `elements`.
    public init(_ elements: [Element]) {
        self.init(shape: [elements.count], storage: elements)
    }

    /// The number of axes.
    public var rank: Int { shape.count }

    /// Row-major strides, in elements: `strides[k]` is the product of
    /// `shape[(k+1)...]`, so the last stride is 1. Empty for rank 0.
    public var strides: [Int] { Self.rowMajorStrides(shape) }

    /// The position in `storage` of the element at `index` (one entry per axis).
    ///
    /// - Precondition: `index.count == rank` and `0 ≤ index[k] < shape[k]`.
    public func offset(of index: [Int]) -> Int {
        precondition(index.count == shape.count,
                     "index \(index) has \(index.count) components, tensor has rank \(shape.count)")
        var offset = 0
        for (axis, i) in index.enumerated() {
            precondition(i >= 0 && i < shape[axis],
                         "index \(i) out of range 0..<\(shape[axis]) on axis \(axis) of shape \(shape)")
            offset = offset * shape[axis] + i
        }
        return offset
    }

    /// The element at a multi-index, one component per axis: `t[i, j, k]`.
    public subscript(_ index: Int...) -> Element {
        get { storage[offset(of: index)] }
        set { storage[offset(of: index)] = newValue }
    }

    /// The element at a multi-index given as an array.
    public subscript(index index: [Int]) -> Element {
        get { storage[offset(of: index)] }
        set { storage[offset(of: index)] = newValue }
    }

    /// The same elements, in the same row-major order, viewed with `newShape`.
    ///
    /// - Precondition: `newShape` has the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor<Element> {
        Tensor(shape: newShape, storage: storage)
    }

    /// A tensor of the same shape with `transform` applied to every element,
    /// in row-major order.
    public func map<Result>(_ transform: (Element) throws -> Result) rethrows -> Tensor<Result> {
        Tensor<Result>(shape: shape, storage: try storage.map(transform))
    }
}

extension Tensor {
    /// The product of `shape`, or `nil` when an axis is negative or the
    /// product overflows `Int`. Use this to validate untrusted shapes.
    public static func elementCount(of shape: [Int]) -> Int? {
        var count = 1
        for extent in shape {
            guard extent >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    /// Row-major strides of `shape`, in elements.
    static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var stride = 1
        for axis in shape.indices.reversed() {
            strides[axis] = stride
            stride &*= shape[axis]
        }
        return strides
    }

    private static func checkedCount(_ shape: [Int]) -> Int {
        guard let count = elementCount(of: shape) else {
            preconditionFailure("invalid tensor shape \(shape): negative axis or element count overflows Int")
        }
        return count
    }
}

extension Tensor: Equatable where Element: Equatable {
    /// Equal shapes and elementwise `==` (so a NaN element is never equal).
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        lhs.shape == rhs.shape && lhs.storage == rhs.storage
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = storage.prefix(8).map { "\($0)" }.joined(separator: ", ")
        let more = count > 8 ? ", … (\(count) elements)" : ""
        return "Tensor(shape: \(shape), [\(shown)\(more)])"
    }
}
