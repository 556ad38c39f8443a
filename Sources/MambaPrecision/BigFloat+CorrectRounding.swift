import CMPFR

// MARK: - Correct rounding of composite functions (Ziv's strategy)
//
// MPFR rounds each elementary function correctly, but a composition such as
// log1p(exp(x)) rounds twice. To round the *composite* correctly we evaluate
// it with w > p bits, bound the error of that evaluation, and ask
// `mpfr_can_round` whether every value within the bound rounds to the same
// p-bit number; if not, we retry with more bits. This terminates whenever the
// exact result is not itself a p-bit number or a midpoint between two,
// which holds for the transcendental results computed here except at a few
// special arguments handled before the loop.
//
// One family of arguments would make the loop slow rather than wrong: results
// of the form  b ± τ  with b exactly representable and 0 < τ astronomically
// small (softplus(1000) = 1000 + 5e−435). Those are rounded directly with
// `roundNudged`, which needs only the sign of τ and an upper bound on it.

extension BigFloat {
    /// Bits beyond the target precision at which `correctlyRounded` stops
    /// refining and accepts its approximation (never reached by the functions
    /// of this module; a guard against an unforeseen exact case).
    static let zivMaximumExtraBits = 1 << 16

    /// Sets `result` to f rounded once, to nearest-even, to `result.precision` bits.
    ///
    /// `approximate(y)` writes into `y` (precision w, chosen here) an
    /// approximation of f and returns k such that |y − f| ≤ 2^(EXP(y) − k),
    /// EXP(y) being MPFR's exponent (|y| < 2^EXP(y)); or returns nil when `y`
    /// is to be used as it is (an exact value, or a result at MPFR's own
    /// overflow/underflow threshold where no better can be done).
    ///
    /// The test is `mpfr_can_round(y, k, RNDN, RNDZ, p + 1)`: if truncation to
    /// p + 1 bits is the same for every value within the bound, no p-bit number
    /// or midpoint lies in it, so rounding y to nearest at p bits is rounding f.
    /// The working precision starts at p + 32 and grows by half each retry.
    static func correctlyRounded(into result: BigFloat, _ approximate: (BigFloat) -> Int?) {
        let p = result.precision
        var w = p + 32
        while true {
            let y = BigFloat(precision: w)
            guard let k = approximate(y) else { result.set(y); return }
            let decided = withExtendedLifetime(y) { mpfr_can_round(y.ptr, k, MPFR_RNDN, MPFR_RNDZ, p + 1) != 0 }
            if decided || w > p + zivMaximumExtraBits { result.set(y); return }
            w += Swift.max(32, w / 2)
        }
    }

    /// The k of `roundNudged(_:direction:into:)`: max(precision of base, p) + 3.
    static func nudgeBits(_ base: BigFloat, _ p: Int) -> Int { Swift.max(base.precision, p) + 3 }

    /// Sets `result` to RN(base + direction · τ) at `result.precision` = p bits,
    /// valid for *every* τ with 0 < τ < 2^(EXP(base) − k), k = `nudgeBits(base, p)`.
    ///
    /// The p-bit numbers together with the midpoints between them form the
    /// (p+1)-bit grid. Near `base` (also just below a power of two) that grid
    /// has spacing ≥ 2^(EXP(base) − p − 2) ≥ 2^(EXP(base) − k + 1), and `base`,
    /// having at most k − 3 significant bits, is either a grid point or at
    /// least 2^(EXP(base) − k + 3) away from every grid point. So the open
    /// interval from `base` to base ± 2^(EXP(base) − k) holds no grid point and
    /// everything in it rounds alike: we round base ± 2^(EXP(base) − k − 1),
    /// formed exactly with k + 1 bits. `base` must be finite and nonzero;
    /// `direction` is ±1.
    static func roundNudged(_ base: BigFloat, direction: Int, into result: BigFloat) {
        let k = nudgeBits(base, result.precision)
        let sum = BigFloat(base, precision: k + 1)                                   // exact
        sum.add(BigFloat(mantissa: direction, exponent: base.exponent - k - 1, precision: 2)) // exact
        result.set(sum)
    }

    /// True for zero and for finite values within a factor 4 of MPFR's smallest
    /// positive number, where an `exp` may have underflowed.
    var isAtUnderflowThreshold: Bool { isZero || (isFinite && exponent <= mc_get_emin() + 1) }
}
