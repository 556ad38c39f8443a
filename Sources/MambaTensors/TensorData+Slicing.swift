extension TensorData {
    /// The elements whose index along `axis` lies in `range`, every other
    /// axis whole: `shape[axis]` becomes `range.count`. The dtype and every
    /// bit pattern are kept (no conversion), so a slice of a kernel's output
    /// holds exactly the values the kernel wrote. An empty range gives an
    /// array with no elements.
    ///
    /// - Precondition: `0 ≤ axis < shape.count` and `range ⊆ 0..<shape[axis]`.
    public func sliced(axis: Int, _ range: Range<Int>) -> TensorData {
        precondition(axis >= 0 && axis < shape.count, "axis \(axis) out of range for shape \(shape)")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[axis], "\(range) outside 0..<\(shape[axis])")
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        let extent = shape[axis]
        var newShape = shape
        newShape[axis] = range.count
        func cut<T>(_ a: [T]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(outer * range.count * inner)
            for o in 0..<outer {
                out += a[(o * extent + range.lowerBound) * inner ..< (o * extent + range.upperBound) * inner]
            }
            return out
        }
        let p: Payload
        switch payload {
        case let .bits16(a): p = .bits16(cut(a))
        case let .bits32(a): p = .bits32(cut(a))
        case let .bits64(a): p = .bits64(cut(a))
        }
        return TensorData(dtype: dtype, shape: newShape, payload: p, source: source, name: name)
    }
}

extension TensorData {
    /// `parts` joined along `axis` (the inverse of `sliced(axis:_:)`): every
    /// part has the same dtype and the same extent on every other axis; bit
    /// patterns are kept. Parts may be empty along `axis`.
    ///
    /// - Precondition: `parts` is not empty; dtypes, ranks and the other extents agree.
    public static func concatenated(_ parts: [TensorData], axis: Int) -> TensorData {
        precondition(!parts.isEmpty, "nothing to concatenate")
        let first = parts[0]
        precondition(axis >= 0 && axis < first.shape.count, "axis \(axis) out of range for shape \(first.shape)")
        for p in parts {
            precondition(p.dtype == first.dtype && p.shape.count == first.shape.count
                         && p.shape.indices.allSatisfy { $0 == axis || p.shape[$0] == first.shape[$0] },
                         "cannot join \(p.dtype)\(p.shape) to \(first.dtype)\(first.shape) along axis \(axis)")
        }
        let outer = first.shape[..<axis].reduce(1, *)
        let inner = first.shape[(axis + 1)...].reduce(1, *)
        var shape = first.shape
        shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
        func join<T>(_ arrays: [[T]]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(outer * shape[axis] * inner)
            for o in 0..<outer {
                for (a, p) in zip(arrays, parts) {
                    let n = p.shape[axis] * inner
                    out += a[o * n ..< (o + 1) * n]
                }
            }
            return out
        }
        let payload: Payload
        switch first.payload {
        case .bits16:
            payload = .bits16(join(parts.map { if case let .bits16(a) = $0.payload { return a }; return [] }))
        case .bits32:
            payload = .bits32(join(parts.map { if case let .bits32(a) = $0.payload { return a }; return [] }))
        case .bits64:
            payload = .bits64(join(parts.map { if case let .bits64(a) = $0.payload { return a }; return [] }))
        }
        return TensorData(dtype: first.dtype, shape: shape, payload: payload)
    }
}
