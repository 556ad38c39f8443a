import MambaPrecision
import MambaVariants

/// Gradients of `ℓ = Σ O ⊙ dO` with respect to every input of a core, as
/// arbitrary-precision numbers (all at one working precision).
///
/// Layouts follow the inputs: `[B, H, N, d]` for q, k, v; `[B, H, N]` for the
/// decay; `[B, H, F, dv]` and `[B, H, F]` for the initial state (FLA
/// convention, docs/MATH.md §3). Entries of a sequence that has a row with a zero
/// normaliser are NaN (see `zeroDenominatorRows`).
public struct ReferenceGradients: @unchecked Sendable, GradientTensors {
    /// Working precision (bits) of every operation.
    public var precision: Int
    /// `∂ℓ/∂q`, `[B, H, N, dk]`. For relu-linear this is with respect to the
    /// raw q (before ReLU), with ReLU'(0) = 0.
    public var dq: [BigFloat]
    /// `∂ℓ/∂k`, `[B, H, N, dk]` (raw k, as for dq).
    public var dk: [BigFloat]
    /// `∂ℓ/∂v`, `[B, H, N, dv]`.
    public var dv: [BigFloat]
    /// `∂ℓ/∂L_t` with respect to the inclusive prefix sums `L` (`[B, H, N]`),
    /// nil without decay.
    public var dL: [BigFloat]?
    /// `∂ℓ/∂a_t = Σ_{u ≥ t} ∂ℓ/∂L_u` with respect to the per-step log-decays
    /// (`[B, H, N]`), nil without decay. Given either decay input, both are
    /// reported: `da` is the gradient a kernel taking `a` must return.
    public var da: [BigFloat]?
    /// `∂ℓ/∂S₀`, `[B, H, F, dv]`, when an initial state was given.
    public var dInitialState: [BigFloat]?
    /// `∂ℓ/∂z₀`, `[B, H, F]`, when an initial state was given to a
    /// sum-normalised core.
    public var dInitialStateZ: [BigFloat]?
    /// Flat indices `seq·N + i` of rows whose normaliser `Σ_j w_ij (+ state)`
    /// is exactly zero (sum normalisation only). The output of such a row is
    /// 0/0 and every gradient of its sequence that depends on it is NaN: the
    /// oracle reports it rather than adding an epsilon.
    public var zeroDenominatorRows: [Int]

    public init(precision: Int, dq: [BigFloat], dk: [BigFloat], dv: [BigFloat], dL: [BigFloat]?, da: [BigFloat]?,
                dInitialState: [BigFloat]?, dInitialStateZ: [BigFloat]?, zeroDenominatorRows: [Int] = []) {
        self.precision = precision
        self.dq = dq
        self.dk = dk
        self.dv = dv
        self.dL = dL
        self.da = da
        self.dInitialState = dInitialState
        self.dInitialStateZ = dInitialStateZ
        self.zeroDenominatorRows = zeroDenominatorRows
    }
}
