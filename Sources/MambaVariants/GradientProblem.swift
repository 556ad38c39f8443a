import MambaPrecision

/// A core problem (docs/MATH.md §1) together with the upstream gradient `dO` of its
/// output: the input of a backward pass. The scalar whose gradient is taken
/// is `ℓ = Σ_{b,h,i,c} O_bhic · dO_bhic`, so `∂ℓ/∂O = dO`.
///
/// Like the forward inputs, `dO` is stored as `Double` so that Float32,
/// Float16 and bfloat16 upstream gradients are held exactly.
public struct GradientProblem: Sendable {
    /// The forward problem (q, k, v, decay, scale, optional initial state).
    public var core: CoreProblem
    /// Upstream gradient `∂ℓ/∂O`, `[B, H, N, dv]`.
    public var dO: [Double]

    public init(core: CoreProblem, dO: [Double]) {
        self.core = core
        self.dO = dO
    }

    /// Checks the forward problem and the shape of `dO`; returns a message
    /// naming the first problem, or nil.
    public func validationError() -> String? {
        if let m = core.validationError() { return m }
        let expected = core.sequences * core.length * core.valueDim
        if dO.count != expected {
            return "dO: expected \(expected) elements [B,H,N,dv], found \(dO.count)"
        }
        if let bad = dO.firstIndex(where: { !$0.isFinite }) { return "dO: element \(bad) is not finite" }
        return nil
    }

    /// `core` with a seeded upstream gradient `dO ~ N(0, std²)`, each entry
    /// rounded to `storage` (the generator is independent of the one that
    /// drew `core`, so the same seed may be reused).
    public static func random(core: CoreProblem, std: Double = 0.5, storage: InputStorage = .float32,
                              seed: UInt64) -> GradientProblem {
        var g = SeededGenerator(seed: seed ^ 0xD0_D0_D0_D0_D0_D0_D0_D0)
        let count = core.sequences * core.length * core.valueDim
        let dO = (0..<count).map { _ in storage.round(g.normal(std: std)) }
        return GradientProblem(core: core, dO: dO)
    }
}

/// The gradients of `ℓ = Σ O ⊙ dO` as every producer reports them — the
/// kernels (`CoreGradients`), the oracle (`ReferenceGradients`) and the
/// certified oracle (`CertifiedGradients`) — with one naming and order
/// (`named`), so that comparisons pair the same tensors.
public protocol GradientTensors {
    associatedtype Tensor
    /// `∂ℓ/∂q`, `[B, H, N, dk]`.
    var dq: Tensor { get }
    /// `∂ℓ/∂k`, `[B, H, N, dk]`.
    var dk: Tensor { get }
    /// `∂ℓ/∂v`, `[B, H, N, dv]`.
    var dv: Tensor { get }
    /// With respect to the prefix sums `L`, nil without decay.
    var dL: Tensor? { get }
    /// With respect to the per-step log-decays `a`, nil without decay.
    var da: Tensor? { get }
    /// `∂ℓ/∂S₀`, when an initial state was given.
    var dInitialState: Tensor? { get }
    /// `∂ℓ/∂z₀`, when an initial state was given to a sum-normalised core.
    var dInitialStateZ: Tensor? { get }
}

extension GradientTensors {
    /// The tensors present, by name (`dq`, `dk`, `dv`, `dL`, `da`,
    /// `dInitialState`, `dInitialStateZ`), in that order.
    public var named: [(name: String, values: Tensor)] {
        var r: [(String, Tensor)] = [("dq", dq), ("dk", dk), ("dv", dv)]
        if let dL { r.append(("dL", dL)) }
        if let da { r.append(("da", da)) }
        if let dInitialState { r.append(("dInitialState", dInitialState)) }
        if let dInitialStateZ { r.append(("dInitialStateZ", dInitialStateZ)) }
        return r
    }
}
