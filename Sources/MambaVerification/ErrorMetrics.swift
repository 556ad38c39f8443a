import MambaKernels
import MambaOracle
import MambaPrecision

/// Error statistics of a candidate tensor against the oracle, in the
/// candidate's number format.
///
/// Notation: `ŷ` the candidate (the exact Float16/Float32/… values a kernel
/// produced, held in `Double`), `y` the oracle, `F` the candidate's format,
/// `d_e = |ŷ_e − y_e|` the absolute error of element `e`.
///
/// **Which elements count.** An element is *compared* when `y_e` rounds to a
/// finite value of `F`. The others are left out of every statistic and
/// counted in `oracleNonFiniteCount`: `y_e` NaN (an undefined result, e.g. a
/// zero denominator, where a kernel may legitimately clamp) and `y_e` that
/// overflows `F` (where a correct kernel returns ±∞). The verdict judges
/// those separately.
///
/// **Non-finite candidates.** A NaN or ±∞ candidate at a compared element is
/// counted in `nonFiniteCount` (always a failure in the verdict) and given
/// `d_e = +∞`, so every error statistic that sees it is +∞ — a NaN never
/// hides inside a maximum or a mean.
///
/// **Empty sets.** With no compared element every statistic is 0.
///
/// The statistics:
/// - `maxAbsoluteError = max_e d_e`;
/// - relative error `r_e = d_e / |y_e|`, with `r_e = 0` when `y_e = 0 = ŷ_e`
///   and `r_e = +∞` when `y_e = 0 ≠ ŷ_e` (a nonzero answer to a zero result
///   has no finite relative size; the ULP error and the verdict, which do
///   not divide by `y`, are the robust measures there); `maxRelativeError` and
///   `medianRelativeError` (nearest rank, see `Percentile`);
/// - ULP error `u_e = d_e / ulp_F(y_e)`, the error in units of `F`'s spacing
///   *at the oracle value* (`NumberFormat.ulp(at:)`: its own binade, subnormal
///   spacing near zero); a correctly rounded result has `u_e ≤ ½`;
///   `ulpP50`, `ulpP99`, `ulpMax` by nearest rank;
/// - `normwiseRelativeError = ‖ŷ − y‖₂ / ‖y‖₂` over compared elements, both
///   norms accumulated with scaling (`ScaledNorm`), so neither overflows nor
///   underflows for finite data; 0/0 is 0 and x/0 is +∞;
/// - `rmsRatio`, flash-linear-attention's `get_err_ratio(ref, tri)`:
///   `rms(ŷ − y) / (rms(y) + 1e−8)` with `rms(x) = (mean xᵢ²)^½`, computed from
///   the same scaled norms (`rms = ‖x‖₂/√n`). It equals the normwise error up to
///   FLA's `1e−8` guard and is reported so numbers can be compared with FLA's
///   test thresholds (e.g. 0.005);
/// - `worst`: the `k` compared elements with the largest ULP error (ties:
///   lowest offset first), with their multi-index and condition number.
public struct TensorMetrics: Codable, Sendable, Equatable {
    /// FLA's guard in the denominator of `get_err_ratio`.
    public static let rmsRatioEpsilon = 1e-8

    /// The tensor's shape (row-major).
    public var shape: [Int]
    /// The candidate's number format (`NumberFormat.rawValue`).
    public var format: String
    /// All elements.
    public var elementCount: Int
    /// Elements whose oracle value is a finite value of the format: the ones the statistics cover.
    public var comparedCount: Int
    /// Elements whose oracle value is NaN or overflows the format (excluded from the statistics).
    public var oracleNonFiniteCount: Int
    /// Compared elements where the candidate is NaN or ±∞.
    public var nonFiniteCount: Int
    public var maxAbsoluteError: Double
    public var maxRelativeError: Double
    /// Nearest-rank median of the relative errors.
    public var medianRelativeError: Double
    public var ulpP50: Double
    public var ulpP99: Double
    public var ulpMax: Double
    /// `‖ŷ − y‖₂ / ‖y‖₂`.
    public var normwiseRelativeError: Double
    /// `rms(ŷ − y) / (rms(y) + 1e−8)` (FLA's `get_err_ratio`).
    public var rmsRatio: Double
    /// The elements with the largest ULP error, worst first.
    public var worst: [ElementError]

    /// The candidate's format, when `format` names one.
    public var numberFormat: NumberFormat? { NumberFormat(rawValue: format) }

    public init(shape: [Int], format: String, elementCount: Int, comparedCount: Int,
                oracleNonFiniteCount: Int, nonFiniteCount: Int, maxAbsoluteError: Double,
                maxRelativeError: Double, medianRelativeError: Double, ulpP50: Double, ulpP99: Double,
                ulpMax: Double, normwiseRelativeError: Double, rmsRatio: Double, worst: [ElementError]) {
        self.shape = shape
        self.format = format
        self.elementCount = elementCount
        self.comparedCount = comparedCount
        self.oracleNonFiniteCount = oracleNonFiniteCount
        self.nonFiniteCount = nonFiniteCount
        self.maxAbsoluteError = maxAbsoluteError
        self.maxRelativeError = maxRelativeError
        self.medianRelativeError = medianRelativeError
        self.ulpP50 = ulpP50
        self.ulpP99 = ulpP99
        self.ulpMax = ulpMax
        self.normwiseRelativeError = normwiseRelativeError
        self.rmsRatio = rmsRatio
        self.worst = worst
    }
}

/// One element of a tensor comparison.
public struct ElementError: Codable, Sendable, Equatable {
    /// Multi-index in the tensor's shape.
    public var index: [Int]
    /// Row-major offset (the position in a flat dump).
    public var offset: Int
    public var candidate: Double
    /// The oracle value rounded to `Double`.
    public var oracle: Double
    /// `|ŷ − y|` (+∞ for a non-finite candidate).
    public var absoluteError: Double
    /// `|ŷ − y| / ulp_F(y)`.
    public var ulpError: Double
    /// The element's relative condition number (`ReferenceOutput.condition`), when supplied.
    public var condition: Double?

    public init(index: [Int], offset: Int, candidate: Double, oracle: Double,
                absoluteError: Double, ulpError: Double, condition: Double?) {
        self.index = index
        self.offset = offset
        self.candidate = candidate
        self.oracle = oracle
        self.absoluteError = absoluteError
        self.ulpError = ulpError
        self.condition = condition
    }
}

extension TensorMetrics {
    /// Default number of worst elements kept.
    public static let defaultWorstCount = 8

    /// Metrics of `candidate` against an MPFR oracle (differences formed
    /// exactly enough that a candidate's error is never masked by rounding the
    /// oracle to `Double`; see the type's documentation for every definition).
    ///
    /// - Parameters:
    ///   - candidate: the kernel's values, row-major, exactly as produced.
    ///   - oracle: the oracle's values, row-major.
    ///   - shape: the tensor's shape; every array must have its element count.
    ///   - format: the candidate's storage format (sets the ULP).
    ///   - condition: per-element condition numbers to attach to the worst elements.
    ///   - worstCount: how many worst elements to keep.
    /// - Throws: `VerificationError` for an invalid shape or mismatched counts.
    public init(candidate: [Double], oracle: [BigFloat], shape: [Int], format: NumberFormat,
                condition: [Double]? = nil, worstCount: Int = TensorMetrics.defaultWorstCount) throws {
        try self.init(candidate: candidate, oracle: .exact(oracle), shape: shape, format: format,
                      condition: condition, worstCount: worstCount)
    }

    /// Metrics of `candidate` against an oracle already rounded to `Double`
    /// (faster; `|ŷ − y|` then carries one extra rounding, relative 2⁻⁵³).
    public init(candidate: [Double], oracle: [Double], shape: [Int], format: NumberFormat,
                condition: [Double]? = nil, worstCount: Int = TensorMetrics.defaultWorstCount) throws {
        try self.init(candidate: candidate, oracle: .rounded(oracle), shape: shape, format: format,
                      condition: condition, worstCount: worstCount)
    }

    /// Metrics of `candidate` against the oracle's output `o`, with the
    /// oracle's condition numbers attached to the worst elements.
    public init(candidate: [Double], reference: ReferenceOutput, shape: [Int], format: NumberFormat,
                worstCount: Int = TensorMetrics.defaultWorstCount) throws {
        try self.init(candidate: candidate, oracle: .exact(reference.o), shape: shape, format: format,
                      condition: reference.condition, worstCount: worstCount)
    }

    init(candidate: [Double], oracle values: OracleValues, shape: [Int], format: NumberFormat,
         condition: [Double]?, worstCount: Int) throws {
        let n = try TensorShape.elementCount(of: shape)
        try TensorShape.check(candidate.count, "candidate", shape: shape, expected: n)
        try TensorShape.check(values.count, "oracle", shape: shape, expected: n)
        if let condition { try TensorShape.check(condition.count, "condition", shape: shape, expected: n) }
        precondition(worstCount >= 0, "worstCount must be non-negative")

        let oracle = OracleComparison(values, format: format)
        let difference = oracle.absoluteDifferences(candidate)
        var compared = 0, nonFinite = 0
        var maxAbsolute = 0.0
        var relative: [Double] = [], ulps: [Double] = []
        relative.reserveCapacity(n)
        ulps.reserveCapacity(n)
        var errorNorm = ScaledNorm(), oracleNorm = ScaledNorm()
        var worst = WorstElements(capacity: worstCount)
        for e in 0..<n where oracle.classes[e] == .finite {
            compared += 1
            let y = oracle.oracle[e]
            let d = difference[e]                       // +∞ for a non-finite candidate
            if !candidate[e].isFinite { nonFinite += 1 }
            maxAbsolute = Swift.max(maxAbsolute, d)
            relative.append(y == 0 ? (d == 0 ? 0 : .infinity) : d / Swift.abs(y))
            let u = d / oracle.ulp[e]
            ulps.append(u)
            errorNorm.add(d)
            oracleNorm.add(y)
            worst.offer(offset: e, key: u)
        }
        relative.sort()
        ulps.sort()
        let errorNormValue = errorNorm.value, oracleNormValue = oracleNorm.value
        let rms: Double
        if compared == 0 {
            rms = 0
        } else {
            let root = Double(compared).squareRoot()
            rms = (errorNormValue / root) / (oracleNormValue / root + TensorMetrics.rmsRatioEpsilon)
        }
        self.init(
            shape: shape, format: format.rawValue, elementCount: n, comparedCount: compared,
            oracleNonFiniteCount: n - compared, nonFiniteCount: nonFinite,
            maxAbsoluteError: maxAbsolute,
            maxRelativeError: relative.last ?? 0,
            medianRelativeError: Percentile.nearestRank(of: relative, percent: 50),
            ulpP50: Percentile.nearestRank(of: ulps, percent: 50),
            ulpP99: Percentile.nearestRank(of: ulps, percent: 99),
            ulpMax: ulps.last ?? 0,
            normwiseRelativeError: normRatio(errorNormValue, oracleNormValue),
            rmsRatio: rms,
            worst: worst.offsets.map { e in
                ElementError(index: TensorShape.index(ofOffset: e, in: shape), offset: e,
                             candidate: candidate[e], oracle: oracle.oracle[e],
                             absoluteError: difference[e], ulpError: difference[e] / oracle.ulp[e],
                             condition: condition?[e])
            })
    }
}

/// The `capacity` offsets with the largest keys seen, largest first, ties
/// broken by the smaller offset (offsets arrive in increasing order, so a
/// later equal key never displaces an earlier one). Keys are never NaN.
struct WorstElements {
    let capacity: Int
    private(set) var entries: [(offset: Int, key: Double)] = []

    init(capacity: Int) { self.capacity = capacity }

    mutating func offer(offset: Int, key: Double) {
        guard capacity > 0 else { return }
        if entries.count == capacity {
            guard key > entries[entries.count - 1].key else { return }
            entries.removeLast()
        }
        var position = entries.count
        while position > 0, entries[position - 1].key < key { position -= 1 }
        entries.insert((offset, key), at: position)
    }

    var offsets: [Int] { entries.map(\.offset) }
}
