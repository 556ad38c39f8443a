/// The feature map `φ` of a score with a finite state (docs/MATH.md §3.2, §4).
public enum FeatureMapKind: String, CaseIterable, Sendable, Codable {
    /// `φ(x) = x`.
    case identity
    /// `φ(x) = max(x, 0)`, entrywise.
    case relu
    /// The packed second-order map `φ₂` (docs/MATH.md §4): `x_i²` on the
    /// diagonal, `√2·x_i x_j` for `i < j`, `⟨φ₂(q), φ₂(k)⟩ = (q·k)²`.
    case packedSecondOrder

    /// `F`, the number of features for key width `dk`: `dk` (first order),
    /// `dk(dk+1)/2` (packed second order) or `dk²` (`fullSecondOrder`: the
    /// unpacked `dk × dk` state some kernels keep). Nil when `F` overflows
    /// `Int` (only for dimensions read from a hostile file).
    ///
    /// This is the one place the feature dimension is computed.
    public func dimension(keyDim dk: Int, fullSecondOrder: Bool = false) -> Int? {
        switch self {
        case .identity, .relu:
            return dk
        case .packedSecondOrder:
            let (sq, o1) = dk.multipliedReportingOverflow(by: dk)
            if o1 { return nil }
            if fullSecondOrder { return sq }
            let (sum, o2) = sq.addingReportingOverflow(dk)
            return o2 ? nil : sum / 2
        }
    }
}

/// What the forms, the oracle and the verdict need to know about a score
/// function (docs/MATH.md §1, §3.2, §4), as data. `Score.traits` is the table:
/// one exhaustive `switch`, so a new score does not compile until its row is
/// written.
public struct ScoreTraits: Sendable, Equatable {
    /// `p` with `f(x) = xᵖ` for the polynomial scores (1 or 2); also the power
    /// of the feature-side constant `c = sᵖ` of `f(s·q·k) = c·φ(q)·φ(k)`. Nil
    /// for the exponential score.
    public var power: Int?
    /// Entries of `q` and `k` go through ReLU before the score (`relu-linear`).
    public var reluOnInputs: Bool
    /// `f(x) ≥ 0` for every input, as sum normalisation requires.
    public var nonNegative: Bool
    /// The feature map, nil when the score has none (exponential: a KV cache,
    /// no finite state).
    public var featureMap: FeatureMapKind?
    /// Cross weights `(query, key)` of the exact rational split of the
    /// feature map (docs/MATH.md §4): off-diagonal entries are
    /// `query·x_i x_j` for queries and `key·x_i x_j` for keys, with
    /// `query·key = 2`, so `⟨φ_q(q), φ_k(k)⟩ = f(q·k)` without `√2`. `(1, 1)`
    /// for first-order maps (no off-diagonal entries); nil for the
    /// exponential score (not rational).
    public var exactSplitCrossWeights: (query: Int, key: Int)?

    public static func == (a: ScoreTraits, b: ScoreTraits) -> Bool {
        a.power == b.power && a.reluOnInputs == b.reluOnInputs && a.nonNegative == b.nonNegative
            && a.featureMap == b.featureMap
            && a.exactSplitCrossWeights?.query == b.exactSplitCrossWeights?.query
            && a.exactSplitCrossWeights?.key == b.exactSplitCrossWeights?.key
    }

    /// `F` for key width `dk` (see `FeatureMapKind.dimension`), nil without
    /// a feature map.
    public func featureCount(keyDim dk: Int, fullSecondOrder: Bool = false) -> Int? {
        featureMap?.dimension(keyDim: dk, fullSecondOrder: fullSecondOrder)
    }

    /// `c = sᵖ`, the constant of `f(s·q·k) = c·φ(q)·φ(k)`, in Double (`s`
    /// for the exponential score, which has no feature map).
    public func featureConstant(_ s: Double) -> Double {
        (1..<Swift.max(power ?? 1, 1)).reduce(s) { c, _ in c * s }
    }
}

extension Score {
    /// This score's row of the trait table.
    public var traits: ScoreTraits {
        switch self {
        case .linear:
            ScoreTraits(power: 1, reluOnInputs: false, nonNegative: false, featureMap: .identity, exactSplitCrossWeights: (1, 1))
        case .reluLinear:
            ScoreTraits(power: 1, reluOnInputs: true, nonNegative: true, featureMap: .relu, exactSplitCrossWeights: (1, 1))
        case .squared:
            ScoreTraits(power: 2, reluOnInputs: false, nonNegative: true, featureMap: .packedSecondOrder, exactSplitCrossWeights: (2, 1))
        case .exponential:
            ScoreTraits(power: nil, reluOnInputs: false, nonNegative: true, featureMap: nil, exactSplitCrossWeights: nil)
        }
    }
}
