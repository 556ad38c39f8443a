/// The score function `f` of docs/MATH.md §1, applied to `x = s·q_i·k_j`.
public enum Score: String, CaseIterable, Sendable, Codable {
    /// `f(x) = x`.
    case linear
    /// ReLU on every entry of `q` and `k`, then `f(x) = x`.
    case reluLinear = "relu-linear"
    /// `f(x) = x²`; its feature map is the packed second-order map φ₂ (docs/MATH.md §4).
    case squared
    /// `f(x) = eˣ`; no finite feature map (softmax-like).
    case exponential

    /// True when `f(x) ≥ 0` for every input, as sum normalisation requires.
    public var isNonNegative: Bool { traits.nonNegative }
    /// True when the score has a finite feature map `φ` with `f(s q·k) = c·φ(q)·φ(k)`.
    public var hasFeatureMap: Bool { traits.featureMap != nil }
}

/// Row normalisation of docs/MATH.md §1.
public enum Normalization: String, CaseIterable, Sendable, Codable {
    /// `y_i = Σ_j w_ij v_j`.
    case none
    /// `y_i = Σ_j w_ij v_j / Σ_j w_ij`.
    case sum
}

/// The attention core (kernel level, docs/MATH.md §1): what a GPU kernel computes per
/// batch element and head. `w_ij = f(s·q_i·k_j)·Γ_ij·M_ij` with
/// `Γ_ij = exp(L_i − L_j)` when `hasDecay`, else 1.
public struct CoreSpec: Hashable, Sendable, Codable, CustomStringConvertible {
    public var score: Score
    public var hasDecay: Bool
    public var normalization: Normalization

    public init(score: Score, hasDecay: Bool, normalization: Normalization) {
        self.score = score
        self.hasDecay = hasDecay
        self.normalization = normalization
    }

    /// Feature dimension `F` of the recurrent state for key width `dk`:
    /// `dk` for first-order scores, `dk(dk+1)/2` (packed, docs/MATH.md §4) for `squared`
    /// (`dk²` with `fullSecondOrder`, the unpacked state some kernels keep),
    /// nil for `exponential` (no finite state). See `FeatureMapKind.dimension`.
    public func featureDimension(keyDim dk: Int, fullSecondOrder: Bool = false) -> Int? {
        score.traits.featureCount(keyDim: dk, fullSecondOrder: fullSecondOrder)
    }

    /// Every core of docs/MATH.md §1: 4 scores × decay/no decay × 2 normalisations,
    /// except the invalid `linear` + `sum` (a signed score has no safe normaliser).
    public static let all: [CoreSpec] = Score.allCases.flatMap { s in
        [false, true].flatMap { d in
            Normalization.allCases.compactMap { n in
                (!s.isNonNegative && n == .sum) ? nil : CoreSpec(score: s, hasDecay: d, normalization: n)
            }
        }
    }

    /// A stable name such as `squared-decay-sum`.
    public var name: String { "\(score.rawValue)-\(hasDecay ? "decay" : "nodecay")-\(normalization.rawValue)" }
    public var description: String { name }

    /// Parses `name` (`score-decay|nodecay-none|sum`).
    public init?(name: String) {
        guard let c = CoreSpec.all.first(where: { $0.name == name }) else { return nil }
        self = c
    }
}
