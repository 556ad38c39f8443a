/// The Euclidean norm `‖x‖₂ = (Σ xᵢ²)^½` accumulated without overflow or
/// harmful underflow, as LAPACK's `dnrm2` does: the sum is kept as
/// `scale² · sumOfSquares` with `scale = max |xᵢ|` so far and every added
/// square at most 1 after scaling.
///
/// The result is finite whenever every term is finite (the norm of
/// `[1e300, 1e300]` is `1.414e300`, not ∞; the norm of `[1e-300]` is not 0).
/// Relative error about `(n/2 + 2)·2⁻⁵³` for `n` terms. An infinite term makes
/// the norm +∞; NaN terms must not be added (the callers map them to +∞ first).
struct ScaledNorm {
    private var scale = 0.0
    private var sumOfSquares = 1.0
    private var infinite = false

    mutating func add(_ x: Double) {
        let a = Swift.abs(x)
        if a == 0 { return }
        if a.isInfinite { infinite = true; return }
        if scale < a {
            let r = scale / a
            sumOfSquares = 1 + sumOfSquares * r * r
            scale = a
        } else {
            let r = a / scale
            sumOfSquares += r * r
        }
    }

    var value: Double {
        if infinite { return .infinity }
        return scale == 0 ? 0 : scale * sumOfSquares.squareRoot()
    }
}

/// `numerator / denominator` for two norms: 0 when both are 0, +∞ when only the
/// denominator is 0 (an error against an all-zero reference has no relative size).
func normRatio(_ numerator: Double, _ denominator: Double) -> Double {
    if denominator == 0 { return numerator == 0 ? 0 : .infinity }
    return numerator / denominator
}
