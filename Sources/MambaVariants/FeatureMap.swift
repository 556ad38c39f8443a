/// Feature maps `φ` of the first- and second-order cores (docs/MATH.md §3–4), in Double.
///
/// `f(s·q·k) = c·φ(q)·φ(k)` with `c = s` (linear, relu-linear) or `c = s²` (squared).
public enum FeatureMap {
    /// Index of the pair `(i, j)`, `i ≤ j`, in the packed row-major upper
    /// triangle of a `d × d` matrix: `i·d − i(i−1)/2 + (j − i)`.
    @inlinable
    public static func packedIndex(_ i: Int, _ j: Int, dim d: Int) -> Int {
        i * d - i * (i - 1) / 2 + (j - i)
    }

    /// `φ(x)`: identity, ReLU, or the packed second-order map
    /// `φ₂(x)_(i,j) = c_ij x_i x_j` with `c_ii = 1`, `c_ij = √2` (i < j), so that
    /// `⟨φ₂(q), φ₂(k)⟩ = (q·k)²`. Not defined for the exponential score.
    public static func apply(_ score: Score, _ x: [Double]) -> [Double] {
        switch score {
        case .linear: return x
        case .reluLinear: return x.map { max($0, 0) }
        case .squared:
            let d = x.count
            var out = [Double](repeating: 0, count: d * (d + 1) / 2)
            let r2 = 2.0.squareRoot()
            var idx = 0
            for i in 0..<d {
                out[idx] = x[i] * x[i]; idx += 1
                for j in (i + 1)..<max(d, i + 1) where j < d { out[idx] = r2 * x[i] * x[j]; idx += 1 }
            }
            return out
        case .exponential:
            preconditionFailure("the exponential score has no finite feature map")
        }
    }
}
