/// Row-major shape arithmetic shared by the metrics and the verdict.
///
/// A shape `[d₀, …, d_{r−1}]` has `d₀ · … · d_{r−1}` elements (1 for the
/// scalar shape `[]`); element `(i₀, …, i_{r−1})` lives at offset
/// `Σ_k i_k · stride_k` with `stride_{r−1} = 1`, `stride_k = stride_{k+1} · d_{k+1}`.
public enum TensorShape {
    /// The number of elements of `shape`.
    ///
    /// - Throws: `VerificationError.invalidShape` for a negative extent or an
    ///   element count that overflows `Int`.
    public static func elementCount(of shape: [Int]) throws -> Int {
        var count = 1
        for extent in shape {
            guard extent >= 0 else { throw VerificationError.invalidShape(shape) }
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw VerificationError.invalidShape(shape) }
            count = product
        }
        return count
    }

    /// The multi-index of the element at row-major `offset`.
    ///
    /// - Precondition: `0 ≤ offset < elementCount(of: shape)`.
    public static func index(ofOffset offset: Int, in shape: [Int]) -> [Int] {
        var index = [Int](repeating: 0, count: shape.count)
        var rest = offset
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            let extent = shape[axis]
            index[axis] = rest % extent
            rest /= extent
        }
        precondition(rest == 0, "offset \(offset) is outside shape \(shape)")
        return index
    }

    /// A multi-index as text, the one index formatter of reports and
    /// listings: `[0, 3, 17, 2]` in reports and verdicts, `[0,3,17,2]` with
    /// `compact` (the index format of every decimal listing: fixtures and
    /// `reference --decimal`, `DecimalListing.line`).
    public static func indexText(_ index: [Int], compact: Bool = false) -> String {
        "[" + index.map(String.init).joined(separator: compact ? "," : ", ") + "]"
    }

    /// Checks that `array` has exactly the shape's element count.
    static func check(_ count: Int, _ what: String, shape: [Int], expected: Int) throws {
        guard count == expected else {
            throw VerificationError.countMismatch(what: what, shape: shape, expected: expected, found: count)
        }
    }
}
