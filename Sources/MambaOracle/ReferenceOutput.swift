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
    /// evaluation's *storage* roundings are measured (Proofs/T7):
    /// `Σ_j |w_ij v_jc|` (none) or `Σ_j |w_ij| (|v_jc| + |y_ic|) / D_i` (sum),
    /// including the initial-state term. Rounding every term (weights,
    /// values, state) once to a format with unit roundoff `u` moves `y_ic` by
    /// at most about `u·magnitude`; `magnitude/|y|` is the element's condition number.
    public var magnitude: [Double]
    /// The extra sensitivity of each output to rounding *the score's factors*
    /// — `q·k` formed at finite precision, or, equivalently for the
    /// state-based forms, the features `φ(q)`, `φ(k)` and the state `S` stored
    /// in a narrow format: the same sums as `magnitude` with `|w_ij|`
    /// replaced by `w̃_ij − |w_ij|`, where, with `a_ij = s·Σ_d |q_id k_jd|`,
    /// `w̃ = a·Γ` (linear, relu-linear), `a²·Γ` (squared: what evaluating
    /// `(q·k)²` through φ₂ loses when `q·k ≈ 0`), `|w|(1 + a)` (exponential).
    /// Incurred at the accumulation precision by a kernel that forms `q·k`
    /// in Float32; the rounding of a *stored* state is measured separately
    /// (`KernelComparison.stateMagnitude`). Empty for results of the recurrent and chunked oracle forms.
    public var accumulationMagnitude: [Double]
    /// The sensitivity to forming each decay exponent, the segment sum
    /// `x = L_i − L_j = Σ_{t=j+1}^{i} a_t`, to working accuracy
    /// (`exp(x(1+δ)) = exp(x)(1 + xδ)`): the sums of `magnitude` with `|w_ij|`
    /// replaced by `|w_ij|·|L_i − L_j|`. A kernel that forms it as the
    /// difference of two large global prefix sums loses `(|L_i|+|L_j|)u`
    /// instead — the prefix-sum hazard of docs/MATH.md §6 — and is flagged.
    public var decayMagnitude: [Double]

    /// Storage, score and decay magnitudes combined for a kernel with storage
    /// unit roundoff `u_s` and accumulation unit roundoff `u_a`:
    /// `m + (u_a/u_s)·g·(m + m̃ + m_decay)` (Proofs/T9).
    public func effectiveMagnitude(accumulationRatio ratio: Double, growth g: Double = 1) -> [Double] {
        guard accumulationMagnitude.count == magnitude.count, decayMagnitude.count == magnitude.count else {
            return magnitude.map { $0 + ratio * g * $0 }
        }
        return (0..<magnitude.count).map { i in
            magnitude[i] + ratio * g * (magnitude[i] + accumulationMagnitude[i] + decayMagnitude[i])
        }
    }

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
