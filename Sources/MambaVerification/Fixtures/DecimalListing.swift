import MambaPrecision

/// The decimal form of a fixture's reference outputs: one line per element,
///
///     o[0,1,5,3] = -1.2345678901234567890123456789012345678901234567890e-01
///
/// (row-major multi-index, `digits` significant digits, correctly rounded
/// from the oracle's value; "nan"/"inf" for special values), after `#`
/// comment lines. Readable with Python's `decimal` module or mpmath.
public enum DecimalListing {
    /// One named array of oracle values with its shape.
    public struct Entry {
        public var name: String
        public var shape: [Int]
        public var values: [BigFloat]
        public init(name: String, shape: [Int], values: [BigFloat]) {
            self.name = name; self.shape = shape; self.values = values
        }
    }

    /// The listing text (ends in a newline).
    public static func render(comments: [String], entries: [Entry], digits: Int) -> String {
        var lines = comments.map { "# " + $0 }
        for e in entries {
            let strides = rowMajorStrides(e.shape)
            for (flat, value) in e.values.enumerated() {
                let index = strides.indices.map { (flat / strides[$0]) % e.shape[$0] }
                lines.append("\(e.name)[\(index.map(String.init).joined(separator: ","))] = "
                             + value.decimalString(significantDigits: digits))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The value lines of a listing (comments and blank lines dropped).
    public static func valueLines(_ text: String) -> [Substring] {
        text.split(separator: "\n", omittingEmptySubsequences: true).filter { !$0.hasPrefix("#") }
    }

    static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for a in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[a] = acc
            acc *= Swift.max(shape[a], 1)
        }
        return strides
    }
}
