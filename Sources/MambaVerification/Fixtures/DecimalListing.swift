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
            for (flat, value) in e.values.enumerated() {
                lines.append(line(e.name, TensorShape.index(ofOffset: flat, in: e.shape), value, digits: digits))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One value line, `name[i,j,…] = value` (the one format of every
    /// decimal listing: fixtures and `reference --decimal`).
    public static func line(_ name: String, _ index: [Int], _ value: BigFloat, digits: Int) -> String {
        "\(name)\(TensorShape.indexText(index, compact: true)) = " + value.decimalString(significantDigits: digits)
    }

    /// The value lines of a listing (comments and blank lines dropped).
    public static func valueLines(_ text: String) -> [Substring] {
        text.split(separator: "\n", omittingEmptySubsequences: true).filter { !$0.hasPrefix("#") }
    }

}
