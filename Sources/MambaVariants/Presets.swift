/// The named presets of docs/MATH.md §2 and the paper's ablation tables.
///
/// A preset name is a base (`softmax`, `linear`, `linear-outnorm`, `mamba2`,
/// `mamba2s`, `2mamba`, `2mamba-dt`, `2mamba-e`, `squared-outnorm`) optionally
/// followed by `+component` modifiers applied left to right:
/// `+conv2|+conv3|+conv4`, `+original|+softplus` (decay), `+dt` (values ⊙ dt),
/// `+silu|+relu` (activation on Q,K), `+d` (D residual), `+z` (Z gate).
/// Every single-component ablation and build-up row of the paper's Tables 1–3
/// is listed in `VariantSpec.ablations`; any other combination also parses.
extension VariantSpec {
    public static let softmax = VariantSpec(name: "softmax", score: .exponential, normalization: .sum)
    public static let linear = VariantSpec(name: "linear", score: .reluLinear, normalization: .sum)
    public static let linearOutNorm = VariantSpec(name: "linear-outnorm", score: .linear, normalization: .none)
    /// Paper Alg. 3: conv 4 (Mamba-2's default), original decay with dt bias,
    /// dt on V, D, Z gate without bias, SiLU on the convolved Q, K and V.
    public static let mamba2 = VariantSpec(
        name: "mamba2", score: .linear, decay: .original, normalization: .none, convWindow: 4,
        dtOnValues: true, dtBias: true, dResidual: true, zGate: true, zGateBias: false,
        activation: .silu, activationOnValues: true)
    /// Paper Alg. 4.
    public static let mamba2s = VariantSpec(
        name: "mamba2s", score: .linear, decay: .softplus, normalization: .none, convWindow: 2, dtOnValues: true)
    /// Paper Alg. 5.
    public static let twoMamba = VariantSpec(
        name: "2mamba", score: .squared, decay: .softplus, normalization: .sum, convWindow: 2)
    public static let twoMambaDt = VariantSpec(
        name: "2mamba-dt", score: .squared, decay: .softplus, normalization: .sum, convWindow: 2, dtOnValues: true)
    public static let twoMambaE = VariantSpec(
        name: "2mamba-e", score: .exponential, decay: .softplus, normalization: .sum, convWindow: 2)
    public static let squaredOutNorm = VariantSpec(
        name: "squared-outnorm", score: .squared, decay: .softplus, normalization: .none, convWindow: 2, dtOnValues: true)

    /// The base presets of docs/MATH.md §2's table.
    public static let bases: [VariantSpec] = [
        softmax, linear, linearOutNorm, mamba2, mamba2s, twoMamba, twoMambaDt, twoMambaE, squaredOutNorm,
    ]

    /// Single-component ablations on `linear-outnorm` (Tables 1–2) and the
    /// build-up rows (Table 3), by stable name.
    public static let ablationNames: [String] = {
        var names: [String] = []
        for w in 2...4 {
            names.append("linear-outnorm+conv\(w)")
            names.append("linear-outnorm+conv\(w)+silu")
        }
        names += ["linear-outnorm+d", "linear-outnorm+z", "linear-outnorm+dt",
                  "linear-outnorm+original", "linear-outnorm+softplus"]
        var row = "linear-outnorm+conv2"
        names.append(row + "+original")
        for step in ["+softplus", "+dt", "+silu", "+d", "+z"] {
            row += step
            names.append(row)
        }
        return names
    }()

    public static var ablations: [VariantSpec] { ablationNames.map { VariantSpec(named: $0)! } }

    /// Every named preset: the bases, then the ablations.
    public static var presets: [VariantSpec] { bases + ablations }

    /// Parses a preset name (see the type's documentation); nil when unknown.
    public init?(named name: String) {
        let parts = name.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        guard let baseName = parts.first, var spec = VariantSpec.bases.first(where: { $0.name == baseName }) else {
            return nil
        }
        for modifier in parts.dropFirst() {
            switch modifier {
            case "conv2": spec.convWindow = 2
            case "conv3": spec.convWindow = 3
            case "conv4": spec.convWindow = 4
            case "original": spec.decay = .original
            case "softplus": spec.decay = .softplus
            case "dt": spec.dtOnValues = true
            case "silu": spec.activation = .silu
            case "relu": spec.activation = .relu
            case "d": spec.dResidual = true
            case "z": spec.zGate = true
            default: return nil
            }
        }
        spec.name = name
        self = spec
    }
}
