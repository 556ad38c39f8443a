import MambaPrecision

/// The parameters of the conditioning-aware verdict (`Verdict`), after
/// FlashAttention-3's test model: a low-precision kernel is correct when its
/// error against an exact reference is at most `factor` times the error of a
/// trusted implementation *in the same precision* on the same inputs, plus a
/// small allowance for what no implementation in that precision can avoid.
///
/// With `ŷ` the candidate, `y` the oracle, `b⁽¹⁾ … b⁽ᴷ⁾` the baselines
/// (MambaCheck's own kernels in the candidate's precision mode, same inputs),
/// `m_e` the oracle's magnitude of element `e` (`ReferenceOutput.magnitude`:
/// `Σ_j |w_ij v_jc|`, or `Σ_j w_ij (|v_jc| + |y_ic|)/D_i` for sum-normalised
/// cores — the size of the terms the output is made of), `u_F = 2⁻ᵖ` the unit
/// roundoff and `ulp_F(y_e)` the spacing of the candidate's format `F`:
///
///     slack_e = ulpAllowance · ulp_F(y_e) + boundFactor · u_F · m_e
///
/// enters both the elementwise and the normwise criterion (see `Verdict`).
///
/// **factor = 2** is FlashAttention-3's: a candidate may be up to twice as
/// inaccurate as the baseline; a different but sound summation order or
/// blocking is typically within a small factor of it, and a bug is not.
///
/// **ulpAllowance = 2** covers the output rounding (½ ulp of the candidate's
/// own binade, which may be one binade above `y`'s, so up to 1 ulp of `y`)
/// twice over. It matters only where `m_e` is tiny: at and below the
/// subnormal range, where ulps are no longer proportional to values.
///
/// **boundFactor = 8** (default; override per run). `u_F · m_e` is, to first
/// order, the largest change in `y_e` caused by rounding every term
/// `w_ij v_jc` (and, for sum normalisation, every weight in the denominator)
/// once to `F` — one rounding *stage*. A correct kernel rounds to `F` at a
/// handful of stages between its inputs and its output (the scores or
/// weights `P` before the `PV` product, a chunk's carried state, the
/// normaliser, the output), so its error is bounded by a few `u_F·m_e`;
/// 8 is four stages with a factor two of headroom for second-order terms,
/// and it is the term that keeps the verdict quiet on a correct kernel that
/// happens to be less accurate than the baseline on some element (per
/// element, two correct kernels' errors are uncorrelated: without this floor
/// a pointwise `factor·|b_e − y_e|` alone would fail about 30% of the
/// elements of a kernel exactly as good as the baseline). It stays far below
/// a bug's error: a bug changes some weight or value by O(1) relative (an
/// off-by-one decay scales terms by `exp(a_t)`, a missing √2 halves the cross
/// terms of the second-order state, a scale applied twice multiplies by `s`,
/// a leaked future token adds a whole term, a dropped last chunk zeroes
/// outputs), so its error is O(|y|) or O(m_e) on every affected element,
/// while `8 u_F` is 0.39% in binary16, 3.1% in bfloat16 and 4.8e−7 in binary32.
/// Because the allowance is proportional to `m_e`, ill-conditioned elements
/// (`m_e ≫ |y_e|`, where cancellation makes any finite-precision result
/// inaccurate relative to `|y_e|`) get a proportionally larger allowance and
/// well-conditioned ones (`m_e ≈ |y_e|`) do not.
///
/// All three parameters must be finite and non-negative. Decoding a policy
/// from JSON fills absent keys with the defaults, so a policy file may
/// override just one of them.
public struct VerdictPolicy: Codable, Sendable, Equatable, Hashable {
    /// How many times the baseline's error the candidate may have. Default 2.
    public var factor: Double
    /// Ulps of the format at `y_e` always allowed. Default 2.
    public var ulpAllowance: Double
    /// Multiple of `u_F · m_e` always allowed. Default 8.
    public var boundFactor: Double

    public init(factor: Double = 2, ulpAllowance: Double = 2, boundFactor: Double = 8) {
        self.factor = factor
        self.ulpAllowance = ulpAllowance
        self.boundFactor = boundFactor
    }

    /// The defaults: factor 2, 2 ulps, 8 `u_F·m`.
    public static let standard = VerdictPolicy()

    /// Throws `VerificationError.invalidPolicy` unless every parameter is finite and ≥ 0.
    public func validate() throws {
        for (name, value) in [("factor", factor), ("ulpAllowance", ulpAllowance), ("boundFactor", boundFactor)] {
            guard value.isFinite, value >= 0 else {
                throw VerificationError.invalidPolicy("\(name) is \(value); it must be finite and non-negative")
            }
        }
    }

    /// `slack_e = ulpAllowance · ulp + boundFactor · u_F · magnitude`
    /// (+∞ for an infinite magnitude; a zero coefficient contributes 0 even
    /// against an infinite magnitude).
    public func slack(ulp: Double, magnitude: Double, format: NumberFormat) -> Double {
        let bound = boundFactor == 0 ? 0 : boundFactor * format.unitRoundoff * magnitude
        return ulpAllowance * ulp + bound
    }

    private enum CodingKeys: String, CodingKey { case factor, ulpAllowance, boundFactor }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let standard = VerdictPolicy.standard
        factor = try container.decodeIfPresent(Double.self, forKey: .factor) ?? standard.factor
        ulpAllowance = try container.decodeIfPresent(Double.self, forKey: .ulpAllowance) ?? standard.ulpAllowance
        boundFactor = try container.decodeIfPresent(Double.self, forKey: .boundFactor) ?? standard.boundFactor
    }
}
