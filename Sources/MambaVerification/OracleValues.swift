import MambaPrecision

/// The oracle's values for one tensor, either as MPFR numbers (exact to the
/// oracle's precision) or already rounded to `Double`.
///
/// The metrics and the verdict only ever need, per element: the oracle's
/// class in the candidate's format, its `Double` value, the format's ulp at
/// it, and absolute differences `|x − y|` for candidate and baseline values
/// `x`. This type computes those once, exactly where it matters:
///
/// - with a `BigFloat` oracle, `|x − y|` is formed with 64 significant bits
///   before rounding to `Double` (so a candidate equal to the `Double` nearest
///   to `y` still shows its true, tiny error), and the ulp is taken in `y`'s own
///   binade (not in that of `y` rounded to `Double`);
/// - with a `Double` oracle, `|x − y|` is the `Double` subtraction (one rounding,
///   relative error ≤ 2⁻⁵³) and the ulp is `format.ulp(at: y)`.
enum OracleValues {
    case exact([BigFloat])
    case rounded([Double])

    var count: Int {
        switch self {
        case .exact(let y): return y.count
        case .rounded(let y): return y.count
        }
    }
}

/// Where an oracle value falls relative to a number format.
enum OracleClass: UInt8 {
    /// A number that rounds to a finite value of the format: the candidate is
    /// judged by its error.
    case finite
    /// ±∞, or a number that overflows the format (rounds to ±∞, or to NaN in
    /// E4M3): a correct candidate overflows too.
    case overflow
    /// NaN: the exact result is undefined (e.g. a zero denominator); nothing to judge.
    case undefined
}

/// The per-element facts about an oracle that the metrics and verdict use.
struct OracleComparison {
    let format: NumberFormat
    let values: OracleValues
    /// `y` rounded to `Double`.
    let oracle: [Double]
    let classes: [OracleClass]
    /// `ulp_F(y)`: the spacing of the format at `y` (see `NumberFormat.ulp(at:)`).
    let ulp: [Double]

    init(_ values: OracleValues, format: NumberFormat) {
        self.format = format
        self.values = values
        let n = values.count
        var oracle = [Double](repeating: 0, count: n)
        var classes = [OracleClass](repeating: .finite, count: n)
        var ulp = [Double](repeating: 0, count: n)
        let largest = format.greatestFiniteMagnitude
        switch values {
        case .rounded(let y):
            for e in 0..<n {
                let v = y[e]
                oracle[e] = v
                if v.isNaN { classes[e] = .undefined }
                else if v.isInfinite || (Swift.abs(v) >= largest && !format.round(v).isFinite) { classes[e] = .overflow }
                ulp[e] = format.ulp(at: v)
            }
        case .exact(let y):
            for e in 0..<n {
                let v = y[e]
                let d = v.doubleValue
                oracle[e] = d
                if v.isNaN { classes[e] = .undefined; ulp[e] = .nan; continue }
                if v.isInfinite || (Swift.abs(d) >= largest && !format.round(v).isFinite) { classes[e] = .overflow }
                ulp[e] = OracleComparison.ulp(of: v, in: format)
            }
        }
        self.oracle = oracle
        self.classes = classes
        self.ulp = ulp
    }

    /// `format.ulp(at: y)` as a `Double`, computed from `y`'s MPFR exponent
    /// without allocating: `2^(clamp(e − 1, emin, emax) − p + 1)` for `y = f·2^e`,
    /// `½ ≤ |f| < 1`; the subnormal spacing at zero; `ulp(greatestFinite)` at ±∞.
    static func ulp(of y: BigFloat, in format: NumberFormat) -> Double {
        if y.isZero { return format.leastNonzeroMagnitude }
        if y.isInfinite { return format.ulp(at: Double.infinity) }
        let e = Swift.min(Swift.max(y.exponent - 1, format.emin), format.emax)
        return Double(sign: .plus, exponent: e - format.significandBits + 1, significand: 1)
    }

    /// `|x_e − y_e|` for every element: +∞ where `x_e` is NaN or ±∞ (the
    /// caller decides what a non-finite value means), and where `y_e` is not a
    /// finite number (these elements are never judged by their error).
    func absoluteDifferences(_ x: [Double]) -> [Double] {
        signedDifferences(x).map { Swift.abs($0) }
    }

    /// `x_e − y_e` for every element, formed as in `absoluteDifferences`
    /// (+∞ where either side is not finite).
    func signedDifferences(_ x: [Double]) -> [Double] {
        precondition(x.count == oracle.count)
        var result = [Double](repeating: .infinity, count: x.count)
        switch values {
        case .rounded(let y):
            for e in 0..<x.count where x[e].isFinite && y[e].isFinite {
                result[e] = x[e] - y[e]
            }
        case .exact(let y):
            let candidate = BigFloat(precision: 53)
            let difference = BigFloat(precision: 64)
            for e in 0..<x.count where x[e].isFinite && y[e].isFinite {
                candidate.set(x[e])
                difference.setDifference(candidate, y[e])
                result[e] = difference.doubleValue
            }
        }
        return result
    }
}
