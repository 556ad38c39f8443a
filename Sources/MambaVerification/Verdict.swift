import MambaKernels
import MambaPrecision

/// Pass or fail for one candidate tensor, judged against the oracle, the
/// baselines and the oracle's per-element magnitudes (`VerdictPolicy`).
///
/// Notation as in `VerdictPolicy`: `ŷ` candidate, `y` oracle, `b⁽ᵏ⁾`
/// baselines, `m_e` magnitude, `F` the candidate's format, `u_F = 2⁻ᵖ`,
/// `slack_e = ulpAllowance·ulp_F(y_e) + boundFactor·u_F·m_e`.
///
/// **Elements.** Each element falls in one of three classes by its oracle value:
/// - `y_e` NaN (undefined, e.g. a zero denominator): not judged — a kernel may
///   clamp, and the metrics report what it returned;
/// - `y_e` ±∞ or overflowing `F`: passes iff the candidate overflows the same
///   way — ±∞ of `y_e`'s sign, a saturated ±greatestFinite of that sign, or NaN
///   in a format without infinities (E4M3);
/// - `y_e` finite in `F`: a NaN or ±∞ candidate fails; otherwise the element
///   passes iff
///
///       |ŷ_e − y_e| ≤ τ_e = factor · max(β_e, β · m_e) + slack_e,
///       β_e = max_k |b⁽ᵏ⁾_e − y_e|            (the baselines' error here),
///       β   = max_{k,e'} max(0, |b⁽ᵏ⁾_e' − y_e'| − ulpAllowance·ulp_F(y_e')) / m_e'
///
///   (over finite-class elements with `0 < m_e' < ∞`; baseline values that are
///   NaN or ±∞ are ignored and counted). `β` is the baselines' worst
///   *backward error* beyond the rounding floor: the largest relative
///   perturbation of the terms of any element that the trusted kernels
///   needed. Multiplying it by `m_e` turns FlashAttention-3's tensor-wide
///   "`max|ŷ−y| ≤ 2·max|b−y| + atol`" into a per-element test that follows
///   each element's conditioning — when all `m_e` are equal it *is* FA3's
///   test. Using the pointwise `|b_e − y_e|` alone would be wrong: two correct
///   kernels' errors are uncorrelated element by element, and one is often
///   lucky (near zero) where the other is not. `β` also carries what the
///   format's `u_F` cannot know: a TF32 or Float16-input kernel that writes
///   Float32 outputs has errors of order `2⁻¹¹·m_e`, and so do its baselines.
///   `β` is reported; a large one means the baselines, not the candidate, need a look.
///
/// **Normwise.** Over the finite-class elements, with scaled 2-norms:
///
///     ‖ŷ − y‖₂ ≤ factor · max_k ‖b⁽ᵏ⁾ − y‖₂ + ulpAllowance·‖ulp_F(y)‖₂ + boundFactor·u_F·‖m‖₂
///
/// (baseline elements that are not finite are left out of that baseline's norm;
/// a non-finite candidate makes the left side +∞ and fails). This catches a
/// candidate that is worse than the baselines everywhere by a margin each
/// element's generous allowance would tolerate.
///
/// **Verdict.** Pass iff no judged element fails and the normwise criterion
/// holds. With no baselines only the slack remains (a pure a-priori bound).
///
/// **Choosing baselines.** Pass MambaCheck's kernel of the candidate's own
/// form in the candidate's precision mode; adding the other forms makes the
/// yardstick the least accurate of them (more lenient, never stricter). The
/// verdict is only as sharp as `m_e` is at describing each element's
/// sensitivity. `ReferenceOutput.magnitude` covers relative perturbations of
/// the weights and values; it does not cover cancellation *inside* a weight —
/// in `q·k` when a squared score is evaluated through the second-order state
/// (error `∝ (Σ_c |q_c k_c|)²` rather than `(q·k)²`), or in `L_i − L_j` formed
/// from global prefix sums (error `∝ u·|L_i|`, SPEC §6). A kernel whose error
/// is dominated by those is judged through the baseline term, so it passes
/// against a baseline of the same form and fails against one that avoids
/// the cancellation — which is the finding to report.
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
    /// Number of baselines compared against.
    public var baselineCount: Int
    /// `β`: the baselines' largest backward error beyond the rounding floor.
    public var baselineBackwardError: Double
    /// Baseline values ignored because they are NaN or ±∞ where the oracle is finite in the format.
    public var baselineNonFiniteCount: Int
    public var normwise: NormwiseCheck
    /// The judged element with the largest `|ŷ − y| / τ` (the first failure
    /// of the worst kind when something fails; the closest call otherwise).
    public var worst: VerdictElement?
    /// One line for humans, with the numbers.
    public var reason: String

    public init(passed: Bool, policy: VerdictPolicy, format: String, elementCount: Int, judgedCount: Int,
                failingCount: Int, nonFiniteCount: Int, baselineCount: Int, baselineBackwardError: Double,
                baselineNonFiniteCount: Int, normwise: NormwiseCheck, worst: VerdictElement?, reason: String) {
        self.passed = passed
        self.policy = policy
        self.format = format
        self.elementCount = elementCount
        self.judgedCount = judgedCount
        self.failingCount = failingCount
        self.nonFiniteCount = nonFiniteCount
        self.baselineCount = baselineCount
        self.baselineBackwardError = baselineBackwardError
        self.baselineNonFiniteCount = baselineNonFiniteCount
        self.normwise = normwise
        self.worst = worst
        self.reason = reason
    }
}

/// The normwise half of a verdict.
public struct NormwiseCheck: Codable, Sendable, Equatable {
    /// `‖ŷ − y‖₂` over the finite-class elements.
    public var candidateError: Double
    /// `max_k ‖b⁽ᵏ⁾ − y‖₂` (0 without baselines).
    public var baselineError: Double
    /// `ulpAllowance·‖ulp_F(y)‖₂ + boundFactor·u_F·‖m‖₂`.
    public var slack: Double
    /// `factor · baselineError + slack`.
    public var allowance: Double
    public var passed: Bool

    public init(candidateError: Double, baselineError: Double, slack: Double, allowance: Double, passed: Bool) {
        self.candidateError = candidateError
        self.baselineError = baselineError
        self.slack = slack
        self.allowance = allowance
        self.passed = passed
    }
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
    public var magnitude: Double
    /// `τ_e` (+∞ for elements whose oracle overflows the format).
    public var allowance: Double
    /// `|ŷ − y| / τ`: above 1 fails; +∞ for non-finite and overflow failures.
    public var ratio: Double
    /// nil when the element passes.
    public var failure: Failure?

    public init(index: [Int], offset: Int, candidate: Double, oracle: Double, absoluteError: Double,
                baselineError: Double?, magnitude: Double, allowance: Double, ratio: Double, failure: Failure?) {
        self.index = index
        self.offset = offset
        self.candidate = candidate
        self.oracle = oracle
        self.absoluteError = absoluteError
        self.baselineError = baselineError
        self.magnitude = magnitude
        self.allowance = allowance
        self.ratio = ratio
        self.failure = failure
    }
}

extension VerdictPolicy {
    /// Judges `candidate` against an MPFR oracle (see `Verdict` for the criteria).
    ///
    /// - Parameters:
    ///   - candidate: the kernel's values, row-major, exactly as produced.
    ///   - oracle: the oracle's values.
    ///   - magnitude: the oracle's per-element magnitudes (`ReferenceOutput.magnitude`).
    ///   - baselines: MambaCheck's own kernels in the same precision mode on the
    ///     same inputs (one or more; the largest error counts). May be empty.
    ///   - shape: the tensor's shape; every array must have its element count.
    ///   - format: the candidate's storage format.
    /// - Throws: `VerificationError` for an invalid policy or shape, mismatched
    ///   counts, or a NaN or negative magnitude at an element whose oracle value is defined.
    public func judge(candidate: [Double], oracle: [BigFloat], magnitude: [Double], baselines: [[Double]],
                      shape: [Int], format: NumberFormat) throws -> Verdict {
        try judge(candidate: candidate, oracle: .exact(oracle), magnitude: magnitude,
                  baselines: baselines, shape: shape, format: format)
    }

    /// Judges `candidate` against an oracle already rounded to `Double`.
    public func judge(candidate: [Double], oracle: [Double], magnitude: [Double], baselines: [[Double]],
                      shape: [Int], format: NumberFormat) throws -> Verdict {
        try judge(candidate: candidate, oracle: .rounded(oracle), magnitude: magnitude,
                  baselines: baselines, shape: shape, format: format)
    }

    /// Judges `candidate` against the oracle's output `o` and its magnitudes.
    public func judge(candidate: [Double], reference: ReferenceOutput, baselines: [[Double]],
                      shape: [Int], format: NumberFormat) throws -> Verdict {
        try judge(candidate: candidate, oracle: .exact(reference.o), magnitude: reference.magnitude,
                  baselines: baselines, shape: shape, format: format)
    }

    func judge(candidate: [Double], oracle values: OracleValues, magnitude: [Double], baselines: [[Double]],
               shape: [Int], format: NumberFormat) throws -> Verdict {
        try validate()
        let n = try TensorShape.elementCount(of: shape)
        try TensorShape.check(candidate.count, "candidate", shape: shape, expected: n)
        try TensorShape.check(values.count, "oracle", shape: shape, expected: n)
        try TensorShape.check(magnitude.count, "magnitude", shape: shape, expected: n)
        for (k, baseline) in baselines.enumerated() {
            try TensorShape.check(baseline.count, "baseline \(k)", shape: shape, expected: n)
        }

        let oracle = OracleComparison(values, format: format)
        let error = oracle.absoluteDifferences(candidate)
        let baselineErrors = baselines.map { oracle.absoluteDifferences($0) }
        for e in 0..<n where oracle.classes[e] != .undefined {
            let m = magnitude[e]
            guard !m.isNaN, m >= 0 else {
                throw VerificationError.invalidMagnitude(index: TensorShape.index(ofOffset: e, in: shape), value: m)
            }
        }

        // β and the baselines' pointwise errors and norms.
        var beta = 0.0
        var baselineNonFinite = 0
        var pointwise = [Double?](repeating: nil, count: n)
        var baselineNorms = [ScaledNorm](repeating: ScaledNorm(), count: baselines.count)
        for e in 0..<n where oracle.classes[e] == .finite {
            let m = magnitude[e]
            for k in baselineErrors.indices {
                let b = baselineErrors[k][e]
                guard b.isFinite else { baselineNonFinite += 1; continue }
                pointwise[e] = Swift.max(pointwise[e] ?? 0, b)
                baselineNorms[k].add(b)
                if m > 0, m.isFinite {
                    beta = Swift.max(beta, Swift.max(0, b - ulpAllowance * oracle.ulp[e]) / m)
                }
            }
        }

        // Elementwise.
        var judged = 0, failing = 0, nonFinite = 0
        var worst: VerdictElement?
        var candidateNorm = ScaledNorm(), ulpNorm = ScaledNorm(), magnitudeNorm = ScaledNorm()
        for e in 0..<n {
            let allowance: Double, ratio: Double, failure: VerdictElement.Failure?
            switch oracle.classes[e] {
            case .undefined:
                continue
            case .overflow:
                allowance = .infinity
                if overflowsConsistently(candidate[e], oracle: oracle.oracle[e], format: format) {
                    ratio = 0; failure = nil
                } else {
                    ratio = .infinity; failure = .missedOverflow
                }
            case .finite:
                let m = magnitude[e]
                candidateNorm.add(error[e])
                ulpNorm.add(oracle.ulp[e])
                magnitudeNorm.add(m)
                let scaled = (beta == 0 || m == 0) ? 0 : beta * m
                allowance = factor * Swift.max(pointwise[e] ?? 0, scaled) + slack(ulp: oracle.ulp[e], magnitude: m, format: format)
                if !candidate[e].isFinite {
                    ratio = .infinity; failure = .nonFinite; nonFinite += 1
                } else {
                    ratio = allowance == 0 ? (error[e] == 0 ? 0 : .infinity) : error[e] / allowance
                    failure = error[e] <= allowance ? nil : .exceedsAllowance
                }
            }
            judged += 1
            if failure != nil { failing += 1 }
            if worst == nil || ratio > worst!.ratio {
                worst = VerdictElement(index: TensorShape.index(ofOffset: e, in: shape), offset: e,
                                       candidate: candidate[e], oracle: oracle.oracle[e],
                                       absoluteError: oracle.classes[e] == .finite ? error[e]
                                           : (candidate[e] == oracle.oracle[e] ? 0 : Swift.abs(candidate[e] - oracle.oracle[e])),
                                       baselineError: pointwise[e], magnitude: magnitude[e],
                                       allowance: allowance, ratio: ratio, failure: failure)
            }
        }

        // Normwise.
        let candidateError = candidateNorm.value
        let baselineError = baselineNorms.map(\.value).max() ?? 0
        let normSlack = ulpAllowance * ulpNorm.value
            + (boundFactor == 0 ? 0 : boundFactor * format.unitRoundoff * magnitudeNorm.value)
        let normAllowance = factor * baselineError + normSlack
        let normwise = NormwiseCheck(candidateError: candidateError, baselineError: baselineError, slack: normSlack,
                                     allowance: normAllowance,
                                     passed: candidateError.isFinite && candidateError <= normAllowance)

        var verdict = Verdict(passed: failing == 0 && normwise.passed, policy: self, format: format.rawValue,
                              elementCount: n, judgedCount: judged, failingCount: failing, nonFiniteCount: nonFinite,
                              baselineCount: baselines.count, baselineBackwardError: beta,
                              baselineNonFiniteCount: baselineNonFinite, normwise: normwise, worst: worst, reason: "")
        verdict.reason = verdict.describe()
        return verdict
    }

    /// Whether `candidate` is what a correct kernel returns for an oracle value
    /// that overflows `format`: ±∞ of the oracle's sign, a saturated
    /// ±greatestFinite of that sign, or NaN in a format without infinities.
    private func overflowsConsistently(_ candidate: Double, oracle: Double, format: NumberFormat) -> Bool {
        if candidate.isNaN { return !format.hasInfinities }
        return candidate.sign == oracle.sign && Swift.abs(candidate) >= format.greatestFiniteMagnitude
    }
}

extension Verdict {
    /// The one-line summary stored in `reason`.
    func describe() -> String {
        let n = NumberText.significant
        var parts: [String] = []
        if failingCount > 0, let worst {
            var line = "FAIL: \(failingCount) of \(judgedCount) elements exceed their allowance"
            if nonFiniteCount > 0 { line += " (\(nonFiniteCount) NaN/Inf)" }
            line += "; worst at \(NumberText.index(worst.index)): "
            switch worst.failure {
            case .nonFinite:
                line += "candidate \(n(worst.candidate, 3)) where the oracle is \(n(worst.oracle, 6))"
            case .missedOverflow:
                line += "candidate \(n(worst.candidate, 3)) where the oracle \(n(worst.oracle, 6)) overflows \(format)"
            case .exceedsAllowance, nil:
                line += "|err| \(n(worst.absoluteError, 3)) > allowed \(n(worst.allowance, 3))"
                    + " (\(n(worst.ratio, 3))x; candidate \(n(worst.candidate, 6)), oracle \(n(worst.oracle, 6))"
                    + ", baseline err \(worst.baselineError.map { n($0, 3) } ?? "-")"
                    + ", magnitude \(n(worst.magnitude, 3)))"
            }
            parts.append(line)
        }
        let normText = "normwise \(n(normwise.candidateError, 3)) vs allowed \(n(normwise.allowance, 3))"
            + " (\(n(policy.factor, 3)) x baseline \(n(normwise.baselineError, 3)) + slack \(n(normwise.slack, 3)))"
        if !normwise.passed {
            parts.append((parts.isEmpty ? "FAIL: " : "") + normText)
        }
        if passed {
            var line = "pass: \(judgedCount) of \(elementCount) elements within allowance"
            if let worst, worst.ratio > 0 {
                line += " (closest \(n(worst.ratio, 2)) of it at \(NumberText.index(worst.index)))"
            }
            return line + "; " + normText
        }
        if failingCount == 0 { parts.append("every element within its allowance") }
        return parts.joined(separator: "; ")
    }
}
