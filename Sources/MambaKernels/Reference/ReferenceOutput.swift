import MambaPrecision
import MambaVariants

/// The oracle's answer for one core problem, at `precision` bits.
public struct ReferenceOutput: @unchecked Sendable {
    /// Working precision (bits) of every operation.
    public var precision: Int
    /// `[B, H, N, dv]`
    public var o: [BigFloat]
    /// Row normalisers `D_i = Σ_j w_ij` (`[B, H, N]`), sum-normalised cores only.
    public var denominators: [BigFloat]?
    /// Final state (FLA convention) when requested and finite.
    public var finalStateS: [BigFloat]?
    public var finalStateZ: [BigFloat]?
    /// Per output element, the scale against which a correct (backward-stable)
    /// evaluation's error is measured (Proofs/T7):
    /// `Σ_j w̃_ij |v_jc|` (none) or `Σ_j w̃_ij (|v_jc| + |y_ic|) / D_i` (sum),
    /// including the initial-state term, where `w̃_ij ≥ |w_ij|` is the weight's
    /// own sensitivity to rounding its inputs: with `a_ij = s·Σ_d |q_id k_jd|`,
    /// `w̃ = a·Γ` (linear, relu-linear), `a²·Γ` (squared: what evaluating
    /// `(q·k)²` through φ₂ loses when `q·k ≈ 0`), `|w|·(1 + a)` (exponential),
    /// plus `|w|·(|L_i| + |L_j|)` with a decay (forming `L_i − L_j`).
    /// A kernel with unit roundoff `u` has errors of order `u·magnitude`;
    /// `magnitude/|y|` is the element's condition number.
    public var magnitude: [Double]

    /// Outputs rounded to Double.
    public var oDouble: [Double] { o.map(\.doubleValue) }

    /// Relative condition of each output element: `magnitude / |y|` (∞ where `y = 0`).
    public var condition: [Double] {
        zip(magnitude, o).map { m, y in
            let a = Swift.abs(y.doubleValue)
            return a == 0 ? (m == 0 ? 1 : .infinity) : Swift.max(1, m / a)
        }
    }
}

/// Errors the oracle reports instead of guessing.
public enum ReferenceError: Error, CustomStringConvertible, Equatable {
    case invalidProblem(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .invalidProblem(let m): return "invalid problem: \(m)"
        case .unsupported(let m): return "unsupported: \(m)"
        }
    }
}
