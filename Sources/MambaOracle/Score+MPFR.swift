import CMPFR
import MambaVariants

/// The score-dependent MPFR operations of the oracle (docs/MATH.md §1, §4),
/// one exhaustive `switch` each: a new `Score` does not compile until the
/// oracle knows how to evaluate it. Every operation is correctly rounded
/// (round to nearest) unless it says otherwise.
extension Score {
    /// `r ← f(x)` for the polynomial scores: `x` (linear, relu-linear) or
    /// `x²` (squared). `r` may be `x`.
    @inline(__always)
    func applyPolynomial(_ r: UnsafeMutablePointer<__mpfr_struct>, _ x: UnsafeMutablePointer<__mpfr_struct>) {
        switch self {
        case .linear, .reluLinear: if r != x { mc_set(r, x, MPFR_RNDN) }
        case .squared: mc_sqr(r, x, MPFR_RNDN)
        case .exponential: preconditionFailure("the exponential score is not a polynomial")
        }
    }

    /// `r ← f'(x)` for the polynomial scores: 1 or `2x` (exact). `r` may be `x`.
    @inline(__always)
    func applyPolynomialDerivative(_ r: UnsafeMutablePointer<__mpfr_struct>, _ x: UnsafeMutablePointer<__mpfr_struct>) {
        switch self {
        case .linear, .reluLinear: mc_set_ui(r, 1, MPFR_RNDN)
        case .squared: mc_mul_2si(r, x, 1, MPFR_RNDN)
        case .exponential: preconditionFailure("the exponential score is not a polynomial")
        }
    }

    /// `r ← c`, the feature-side constant of `f(s·q·k) = c·φ(q)·φ(k)`: `s`
    /// (first order; also the exponential score's bare scale) or `s²`.
    @inline(__always)
    func featureConstant(_ r: UnsafeMutablePointer<__mpfr_struct>, scale s: UnsafeMutablePointer<__mpfr_struct>) {
        switch self {
        case .linear, .reluLinear, .exponential: mc_set(r, s, MPFR_RNDN)
        case .squared: mc_sqr(r, s, MPFR_RNDN)
        }
    }

    /// `[rlo, rhi] ⊇ f([lo, hi])` for the polynomial scores (directed rounding).
    @inline(__always)
    func enclosePolynomial(_ rlo: MPFRPointer, _ rhi: MPFRPointer, _ lo: MPFRPointer, _ hi: MPFRPointer,
                           tmp: MPFRPointer) {
        switch self {
        case .linear, .reluLinear: mc_set(rlo, lo, MPFR_RNDN); mc_set(rhi, hi, MPFR_RNDN)
        case .squared: Interval.sqr(rlo, rhi, lo, hi, tmp: tmp)
        case .exponential: preconditionFailure("the exponential score is not a polynomial")
        }
    }
}
