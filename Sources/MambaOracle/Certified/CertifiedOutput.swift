import MambaPrecision

/// The certified oracle's result (docs/MATH.md §7.3, Proofs/T7).
///
/// For every element `e` of `o` the exact value `y_e` of the problem (scale
/// included) lies in `[lower[e], upper[e]]`; where both ends round to the
/// same Float64 (and, when requested, the same `decimalDigits`-digit decimal)
/// that rounding *is* the correctly rounded `y_e`, because rounding is
/// monotone. Elements where this could not be decided within the precision
/// cap are listed in `undecided`, never guessed.
public struct CertifiedOutput: Sendable {
    /// Why an element's rounding is not certified.
    public enum Reason: Sendable, Equatable, CustomStringConvertible {
        /// Every weight of the row is exactly zero: `y = 0/0`, undefined.
        case zeroDenominator
        /// The enclosure at the cap still contains a rounding boundary
        /// (an exact tie, or `y` closer to one than the cap can resolve).
        case boundaryAtCap(precision: Int)
        public var description: String {
            switch self {
            case .zeroDenominator: return "zero denominator (every weight of the row is exactly 0)"
            case .boundaryAtCap(let p): return "rounding undecided at \(p) bits (on a rounding boundary the enclosures cannot prove exact, or closer to one than \(p) bits resolve)"
            }
        }
    }

    public struct Undecided: Sendable, Equatable {
        /// Flat index into `o` (`[B, H, N, dv]`, row-major).
        public let index: Int
        public let reason: Reason
    }

    /// The correctly rounded Float64 of every element (NaN where undecided).
    public let o: [Double]
    /// The certified decimal of every element, `decimalDigits` significant digits (nil where undecided).
    public let decimal: [String?]?
    public let decimalDigits: Int?
    /// The final enclosure of every element.
    public let lower: [BigFloat], upper: [BigFloat]
    /// Elements whose rounding is not certified, by flat index.
    public let undecided: [Undecided]
    /// Working precision of the first pass, and the highest the Ziv loop used.
    public let initialPrecision: Int, finalPrecision: Int
    /// Rows recomputed at a higher precision (all passes after the first).
    public let rowsRaised: Int

    /// The values a verdict judges against (it needs accurate values, not
    /// their rounding): each decided element's lower end (within the
    /// enclosure's width of the exact value: below one Float64 ulp, typically
    /// ≈ 2^−p relative); an undecided element's lower end too when its
    /// enclosure is finite, of one sign and at most `2^−initialPrecision`
    /// relative wide (an exact tie, or a value closer to a rounding boundary
    /// than the cap resolves: as accurate as a decided element); NaN otherwise
    /// (an unbounded enclosure, e.g. a zero denominator: judged as undefined,
    /// never a pass).
    public var judgedValues: [BigFloat] {
        (0..<o.count).map { e in
            if !o[e].isNaN { return lower[e] }
            let lo = lower[e], hi = upper[e]
            guard lo.isFinite, hi.isFinite, lo.signum != 0, lo.signum == hi.signum else {
                return BigFloat.nan(precision: initialPrecision)
            }
            let prec = Swift.max(lo.precision, hi.precision) + 2
            let width = BigFloat(hi, precision: prec) - BigFloat(lo, precision: prec)
            let narrow = width.isZero || width.exponent <= BigFloat.abs(lo).exponent - initialPrecision
            return narrow ? lo : BigFloat.nan(precision: initialPrecision)
        }
    }

    /// True when every element is certified.
    public var isComplete: Bool { undecided.isEmpty }

    /// The one-line statement for this tensor alone, as `summary(_:what:)` with the name `o`, e.g.
    /// `oracle certified: all 65536 elements correctly rounded (Float64): o 65536`.
    public var summary: String { Self.summary([(name: "o", values: self)]) }
}

extension CertifiedOutput {
    /// One statement for several certified tensors, e.g.
    /// `oracle certified: all 4224 elements correctly rounded (Float64): o 4096, final_state 128`,
    /// or `… 4200 of 4224 elements …; undecided: o 24`.
    public static func summary(_ parts: [(name: String, values: CertifiedOutput)], what: String = "oracle") -> String {
        let total = parts.reduce(0) { $0 + $1.values.o.count }
        let open = parts.reduce(0) { $0 + $1.values.undecided.count }
        let digits = parts.first?.values.decimalDigits
        let target = "Float64" + (digits.map { " and \($0) significant digits" } ?? "")
        let sizes = parts.map { "\($0.name) \($0.values.o.count)" }.joined(separator: ", ")
        if open == 0 { return "\(what) certified: all \(total) elements correctly rounded (\(target)): \(sizes)" }
        let undecided = parts.filter { !$0.values.undecided.isEmpty }.map { "\($0.name) \($0.values.undecided.count)" }
        return "\(what) certified: \(total - open) of \(total) elements correctly rounded (\(target)); undecided: "
            + undecided.joined(separator: ", ")
    }
}
