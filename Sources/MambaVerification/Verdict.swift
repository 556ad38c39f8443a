import MambaKernels
import MambaPrecision

/// Pass or fail for one candidate tensor, judged against the oracle, the
/// baselines and the per-element error scales (`VerdictPolicy`, Proofs/T9).
///
/// **Elements.** Each element falls in one of three classes by its oracle value:
/// - `y_e` NaN (undefined, e.g. a zero denominator): not judged, counted and
///   located — and the verdict is **never a pass** while any exists
///   (`undefinedCount > 0` makes `passed` false: the problem, not the
///   kernel, is ill-posed there; the CLI exits 2 for it);
/// - `y_e` ±∞ or overflowing `F`: passes iff the candidate overflows the same
///   way — ±∞ of `y_e`'s sign, a saturated ±greatestFinite of that sign, or NaN
///   in a format without infinities (E4M3);
/// - `y_e` finite in `F`: a NaN or ±∞ candidate fails; otherwise the element,
///   its row and the whole tensor are judged by the three tests of
///   `VerdictPolicy`.
///
/// **Verdict.** Pass iff nothing is undefined, no judged element fails, no
/// row fails and the norm test holds. With no baselines only the a-priori
/// element bound remains, and the row and norm tests are reported as not
/// applicable (never as passes).
///
/// **Margins and detection floor.** Every verdict reports the share of the
/// allowance used (p50/p99/max of `|ŷ−y|/τ` over elements, and the row and
/// norm shares), which term of the element allowance dominated, the worst
/// elements sorted by `|ŷ−y|/τ`, and the detection floor: the smallest
/// uniform relative error `ŷ = y(1+δ)`, and the smallest error `δ` confined
/// to one row, that the verdict would have rejected on these inputs.
public struct Verdict: Codable, Sendable, Equatable {
    public var passed: Bool
    /// The policy the verdict was reached under.
    public var policy: VerdictPolicy
    /// The candidate's format (`NumberFormat.rawValue`).
    public var format: String
    public var elementCount: Int
    /// Elements whose oracle value is not NaN.
    public var judgedCount: Int
    /// Judged elements that fail (non-finite and overflow failures included).
    public var failingCount: Int
    /// Failing elements where the candidate is NaN or ±∞ although the oracle is finite in the format.
    public var nonFiniteCount: Int
    /// Elements where the oracle is undefined (NaN); any makes the verdict a non-pass.
    public var undefinedCount: Int
    /// The first few undefined elements' indices.
    public var undefinedIndices: [[Int]]
    /// Number of baselines compared against.
    public var baselineCount: Int
    /// `β`: the baselines' largest error per unit of error scale, output rounding removed.
    public var baselineBackwardError: Double
    /// Baseline values ignored because they are NaN or ±∞ where the oracle is finite in the format.
    public var baselineNonFiniteCount: Int
    public var normwise: NormwiseCheck
    public var rows: RowCheck
    public var margins: Margins
    public var detectionFloor: DetectionFloor
    /// The judged element with the largest `|ŷ − y| / τ` (the first failure
    /// of the worst kind when something fails; the closest call otherwise).
    public var worst: VerdictElement?
    /// The judged elements with the largest `|ŷ − y| / τ`, largest first (at most 5).
    public var worstElements: [VerdictElement]
    /// What explains a failure (e.g. "consistent with TF32 dot products; declared float32"), when known.
    public var note: String?
    /// The largest coherent exponential bias removed from the candidate's error
    /// before judging, in units of `2⁻²⁵` per decay step (Float32 with per-step
    /// decays only, `CoherentExponentialBias`; nil where none was removed).
    public var removedExponentialBias: Double? = nil
    /// One line for humans, with the numbers.
    public var reason: String

    /// True when the oracle is undefined somewhere (the verdict is then not a pass).
    public var isUndefined: Bool { undefinedCount > 0 }

    /// Every test passes on the elements where the oracle is defined (the
    /// verdict may still be a non-pass because some are undefined).
    public var passedWhereDefined: Bool { failingCount == 0 && rows.passed && normwise.passed }
}

/// The norm test of a verdict: `‖ŷ − y‖₂` against the baselines' `‖b − y‖₂`
/// (absolute 2-norms over the finite-class elements — not the relative
/// `TensorMetrics.normwiseRelativeError`).
public struct NormwiseCheck: Codable, Sendable, Equatable {
    /// `‖ŷ − y‖₂`.
    public var candidateError: Double
    /// `max_k ‖b⁽ᵏ⁾ − y‖₂` (0 without baselines).
    public var baselineError: Double
    /// `‖ulp_F(y)‖₂/√12` plus any a-priori term.
    public var slack: Double
    /// `normFactor · baselineError + slack`.
    public var allowance: Double
    /// False without baselines: then the test is not applied.
    public var applicable: Bool
    public var passed: Bool
    /// `candidateError / allowance`.
    public var share: Double { allowance > 0 ? candidateError / allowance : (candidateError == 0 ? 0 : .infinity) }
}

/// The row test of a verdict (rows: `rowLength` consecutive elements, a token's outputs).
public struct RowCheck: Codable, Sendable, Equatable {
    public var rowLength: Int
    public var rowCount: Int
    /// The largest row yardstick `R_r` (see `VerdictPolicy`).
    public var baselineScaledError: Double
    public var failingRows: Int
    /// Index (of the row's first element) of the row with the largest share.
    public var worstRow: [Int]?
    /// Largest `‖ŷ − y‖_r / allowance_r` (with a replica, also `‖ŷ − b⁽ᵏ*⁾‖_r` over its allowance).
    public var worstShare: Double
    public var applicable: Bool
    public var passed: Bool
    /// The replica row test, when one baseline explains nearly all of the candidate's error
    /// (`VerdictPolicy.replicaRowFactor`); `nil` when it does not apply.
    public var replica: Replica?

    /// A baseline that reproduces the candidate: each row's departure from it,
    /// `‖ŷ − b⁽ᵏ*⁾‖_r`, must stay within `factor·R_r` plus the row's rounding terms.
    public struct Replica: Codable, Sendable, Equatable {
        /// Index of the baseline among those judged (credible baselines, in input order).
        public var baseline: Int
        /// `‖ŷ − b⁽ᵏ*⁾‖₂ / ‖ŷ − y‖₂`: the share of the candidate's error it leaves unexplained.
        public var unexplained: Double
        /// The row factor `θ` applied to departures from it.
        public var factor: Double
    }

    public init(rowLength: Int, rowCount: Int, baselineScaledError: Double, failingRows: Int, worstRow: [Int]?,
                worstShare: Double, applicable: Bool, passed: Bool, replica: Replica? = nil) {
        self.rowLength = rowLength
        self.rowCount = rowCount
        self.baselineScaledError = baselineScaledError
        self.failingRows = failingRows
        self.worstRow = worstRow
        self.worstShare = worstShare
        self.applicable = applicable
        self.passed = passed
        self.replica = replica
    }
}

/// How much of its allowance a candidate used.
public struct Margins: Codable, Sendable, Equatable {
    /// Percentiles of `|ŷ_e − y_e| / τ_e` over judged finite elements.
    public var p50: Double
    public var p99: Double
    public var max: Double
    /// Share of elements whose allowance is dominated by the baseline term
    /// `factor·β·s_e` (the rest: the rounding term `ulpAllowance·ulp`, or the a-priori term).
    public var baselineTermShare: Double
}

/// The smallest relative errors this verdict would have rejected on these inputs.
public struct DetectionFloor: Codable, Sendable, Equatable {
    /// Smallest `δ` such that `y(1+δ)` fails (any of the three tests).
    public var uniform: Double
    /// Median over rows of the smallest `δ` such that `y_r(1+δ)` in that row alone fails.
    public var singleRowMedian: Double
    /// The same, minimum over rows.
    public var singleRowMin: Double
    /// Median over rows of (that row's floor / the baselines' relative error in that row).
    public var singleRowMedianOverBaseline: Double
    /// The baselines' own normwise relative error `max_k ‖b⁽ᵏ⁾ − y‖₂ / ‖y‖₂` (for comparison).
    public var baselineRelativeError: Double
}

/// One judged element of a verdict.
public struct VerdictElement: Codable, Sendable, Equatable {
    /// Why an element failed.
    public enum Failure: String, Codable, Sendable {
        /// `|ŷ − y| > τ`.
        case exceedsAllowance = "exceeds-allowance"
        /// NaN or ±∞ where the oracle is finite in the format.
        case nonFinite = "non-finite"
        /// The oracle overflows the format and the candidate does not (or with the wrong sign).
        case missedOverflow = "missed-overflow"
    }

    public var index: [Int]
    public var offset: Int
    public var candidate: Double
    /// The oracle value rounded to `Double`.
    public var oracle: Double
    /// `|ŷ − y|` (+∞ for a non-finite candidate).
    public var absoluteError: Double
    /// `max_k |b⁽ᵏ⁾ − y|` at this element (nil without a finite baseline value).
    public var baselineError: Double?
    /// The element's error scale `s_e`.
    public var magnitude: Double
    /// `τ_e` (+∞ for elements whose oracle overflows the format).
    public var allowance: Double
    /// `|ŷ − y| / τ`: above 1 fails; +∞ for non-finite and overflow failures.
    public var ratio: Double
    /// nil when the element passes.
    public var failure: Failure?
}

extension Verdict {
    /// Puts `text` before any existing note and refreshes `reason` (a note explains;
    /// it never changes the verdict).
    public mutating func prependNote(_ text: String) {
        note = [text, note].compactMap { $0 }.joined(separator: "; ")
        reason = describe()
    }

    /// The one-line summary stored in `reason`.
    func describe() -> String {
        let n = NumberText.significant
        var parts: [String] = []
        if undefinedCount > 0 {
            parts.append("UNDEFINED: the oracle is undefined (NaN, e.g. a zero denominator) at \(undefinedCount) element(s)"
                + (undefinedIndices.first.map { ", first at \(TensorShape.indexText($0))" } ?? "")
                + "; such elements cannot be judged, so this is not a pass")
        }
        if failingCount > 0, let worst {
            var line = "\(failingCount) of \(judgedCount) elements exceed their allowance"
            if nonFiniteCount > 0 { line += " (\(nonFiniteCount) NaN/Inf)" }
            line += "; worst at \(TensorShape.indexText(worst.index)): "
            switch worst.failure {
            case .nonFinite:
                line += "candidate \(n(worst.candidate, 3)) where the oracle is \(n(worst.oracle, 6))"
            case .missedOverflow:
                line += "candidate \(n(worst.candidate, 3)) where the oracle \(n(worst.oracle, 6)) overflows \(format)"
            case .exceedsAllowance, nil:
                line += "|err| \(n(worst.absoluteError, 3)) > allowed \(n(worst.allowance, 3))"
                    + " (\(n(worst.ratio, 3))x; candidate \(n(worst.candidate, 6)), oracle \(n(worst.oracle, 6))"
                    + ", baseline err \(worst.baselineError.map { n($0, 3) } ?? "-")"
                    + ", scale \(n(worst.magnitude, 3)))"
            }
            parts.append(line)
        }
        if rows.applicable && !rows.passed {
            parts.append("\(rows.failingRows) of \(rows.rowCount) rows exceed their row allowance"
                + (rows.worstRow.map { " (worst at \(TensorShape.indexText($0)), \(n(rows.worstShare, 3))x)" } ?? "")
                + (rows.replica.map {
                    " (baseline \($0.baseline) reproduces this kernel up to \(n($0.unexplained, 2)) of its error,"
                        + " so rows may depart from it by \(n($0.factor, 2)) row yardsticks)"
                } ?? ""))
        }
        let normText = "‖err‖₂ \(n(normwise.candidateError, 3)) vs allowed \(n(normwise.allowance, 3))"
            + " (\(n(policy.normFactor, 3)) x baseline \(n(normwise.baselineError, 3)) + rounding \(n(normwise.slack, 3)))"
        if normwise.applicable && !normwise.passed { parts.append("norm: " + normText) }
        if passed {
            var line = "pass: \(judgedCount) of \(elementCount) elements within allowance"
            if let worst, worst.ratio > 0 {
                line += " (closest \(n(worst.ratio, 2)) of it at \(TensorShape.indexText(worst.index)))"
            }
            if rows.applicable { line += "; rows \(n(rows.worstShare, 2)) of allowance" }
            line += normwise.applicable
                ? "; " + normText : "; no informative baseline (none, or all exact): row and norm tests not applicable"
            if let note { line += "; " + note }
            return line
        }
        var text = (undefinedCount > 0 && failingCount == 0 && rows.passed && normwise.passed ? "" : "FAIL: ")
            + parts.joined(separator: "; ")
        if let note { text += "; " + note }
        return text
    }
}
