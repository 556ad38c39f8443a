/// Per-token log-decay parameterisation of the block (docs/MATH.md §2 step 5).
public enum DecayKind: String, CaseIterable, Sendable, Codable {
    case none
    /// `a_t = −exp(A_log)·dt_t`, `A_log = log U[1,16]` per head (Mamba-2).
    case original
    /// `a_t = −softplus(x_t·W_A)` (Mamba-2S, 2Mamba); `exp(a_t) = σ(−x_t·W_A)`.
    case softplus
}

/// Activation applied to Q and K (and V for `mamba2`) after the convolution.
public enum Activation: String, CaseIterable, Sendable, Codable {
    case none, silu, relu
}

/// A variant of the attention family as data: every component of docs/MATH.md §1–2.
///
/// The block computes, per token (docs/MATH.md §2): `u = x·W_qkv` → causal depthwise
/// conv (window `convWindow`, with bias) → split Q, K, V → `dt` → log-decay →
/// D residual → `V ⊙ dt` → activation → core → `+r`, `⊙ SiLU(z)` → merge heads
/// → RMSNorm (un-normalised cores) → `·W_o`. Every form and every kernel reads
/// the same specification; a variant is not a class hierarchy.
public struct VariantSpec: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Stable name users type (`2mamba`, `linear-outnorm+conv2+silu`, …).
    public var name: String
    public var score: Score
    public var decay: DecayKind
    public var normalization: Normalization
    /// Causal depthwise convolution window, 1 (none) … 4.
    public var convWindow: Int
    /// `V ← V ⊙ dt` (value discretisation).
    public var dtOnValues: Bool
    /// `dt = softplus(x·W_dt + dt_bias)` (Mamba-2) instead of `softplus(x·W_dt)`.
    public var dtBias: Bool
    /// `y ← y + V ⊙ D`, with `r` taken before the discretisation.
    public var dResidual: Bool
    /// `y ← y ⊙ SiLU(x·W_z [+ b_z])`.
    public var zGate: Bool
    /// Whether the Z gate's linear map has a bias (Mamba-2's has none).
    public var zGateBias: Bool
    /// Activation on Q and K after the convolution.
    public var activation: Activation
    /// Mamba-2 applies the activation to the convolved V too (before D).
    public var activationOnValues: Bool
    /// Score scale `s`; nil means `1/√dh`.
    public var scale: Double?

    public init(name: String, score: Score, decay: DecayKind = .none, normalization: Normalization,
                convWindow: Int = 1, dtOnValues: Bool = false, dtBias: Bool = false, dResidual: Bool = false,
                zGate: Bool = false, zGateBias: Bool = true, activation: Activation = .none,
                activationOnValues: Bool = false, scale: Double? = nil) {
        precondition((1...4).contains(convWindow), "convolution window must be 1…4")
        self.name = name
        self.score = score
        self.decay = decay
        self.normalization = normalization
        self.convWindow = convWindow
        self.dtOnValues = dtOnValues
        self.dtBias = dtBias
        self.dResidual = dResidual
        self.zGate = zGate
        self.zGateBias = zGateBias
        self.activation = activation
        self.activationOnValues = activationOnValues
        self.scale = scale
    }

    /// The kernel-level operator inside the block.
    public var core: CoreSpec { CoreSpec(score: score, hasDecay: decay != .none, normalization: normalization) }
    /// Un-normalised cores are followed by an RMSNorm over all `H·dh` channels.
    public var outputNorm: Bool { normalization == .none }
    /// Whether the block computes `dt` at all.
    public var needsDt: Bool { dtOnValues || decay == .original }
    /// The score scale for head width `dh`.
    public func scale(headDim dh: Int) -> Double { scale ?? 1 / Double(dh).squareRoot() }

    public var description: String { name }

    /// One-line summary of the components, as `mambacheck variants` prints it.
    public var components: String {
        var parts = ["score=\(score.rawValue)", "norm=\(normalization == .sum ? "sum" : "rmsnorm")"]
        parts.append("conv=\(convWindow == 1 ? "-" : String(convWindow))")
        parts.append("decay=\(decay.rawValue)")
        if needsDt { parts.append("dt\(dtBias ? "+bias" : "")") }
        if dtOnValues { parts.append("V⊙dt") }
        if dResidual { parts.append("D") }
        if zGate { parts.append("Z\(zGateBias ? "" : "(no bias)")") }
        if activation != .none { parts.append("act=\(activation.rawValue) on Q,K\(activationOnValues ? ",V" : "")") }
        return parts.joined(separator: " ")
    }
}
