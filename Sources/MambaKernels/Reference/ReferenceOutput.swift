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
    /// Per output element, the magnitude a backward-stable evaluation is
    /// measured against: `Σ_j |w_ij v_jc|` (none) or
    /// `Σ_j w_ij (|v_jc| + |y_ic|) / D_i` (sum), including the initial-state
    /// term. Its ratio to `|y_ic|` is the element's condition number with
    /// respect to relative perturbations of the weights and values.
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
