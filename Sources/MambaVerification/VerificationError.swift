/// What the verification layer reports instead of guessing: mismatched
/// inputs, invalid policies, and reports that cannot be combined.
///
/// Every case carries the numbers or names a user needs to fix the call.
public enum VerificationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A shape with a negative extent, or whose element count overflows `Int`.
    case invalidShape([Int])
    /// An array (`what`: "candidate", "oracle", "baseline 0", "magnitude", …)
    /// whose element count is not the one the shape implies.
    case countMismatch(what: String, shape: [Int], expected: Int, found: Int)
    /// A verdict policy parameter that is negative, NaN or infinite.
    case invalidPolicy(String)
    /// An element whose oracle value is defined but whose magnitude is NaN or negative.
    case invalidMagnitude(index: [Int], value: Double)
    /// The same `(case name, tensor)` pair occurs twice among reports being merged
    /// (or twice in one report).
    case duplicateCase(name: String, tensor: String)
    /// Reports to merge disagree on a field that must be common to all shards.
    case incompatibleReports(field: String, values: [String])
    /// `VerificationReport.merge` was given no reports.
    case nothingToMerge
    /// A JSON report that could not be decoded.
    case malformedReport(String)

    public var description: String {
        switch self {
        case .invalidShape(let shape):
            return "invalid shape \(shape): extents must be non-negative and their product must fit in Int"
        case let .countMismatch(what, shape, expected, found):
            return "\(what) has \(found) elements, but shape \(shape) needs \(expected)"
        case .invalidPolicy(let detail):
            return "invalid verdict policy: \(detail)"
        case let .invalidMagnitude(index, value):
            return "magnitude at \(index) is \(value); it must be a non-negative number"
        case let .duplicateCase(name, tensor):
            return "case \(name) (tensor \(tensor)) occurs more than once"
        case let .incompatibleReports(field, values):
            return "reports disagree on \(field): \(values.joined(separator: ", "))"
        case .nothingToMerge:
            return "no reports to merge"
        case .malformedReport(let detail):
            return "malformed report: \(detail)"
        }
    }
}
