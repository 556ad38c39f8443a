import CMPFR

// MARK: - Activation and gate functions, correctly rounded
//
// softplus, sigmoid, SiLU and the inverse of softplus, as used by Mamba's
// Δ = softplus(dt + dt_bias), gates and dt_bias initialisation. Each is
// *correctly rounded*: the result is the exact mathematical value rounded
// once, to nearest with ties to even, to the destination's precision (the
// argument's precision unless another is given). See
// BigFloat+CorrectRounding.swift for how: evaluation at a working precision
// with guard bits, an error bound, and `mpfr_can_round`, retried with more
// bits when the bound cannot decide.
//
// Caveat, honestly stated: "correctly rounded" holds within MPFR's exponent
// range (|x| < 2^1073741823 by default). A result below MPFR's smallest
// positive number (e.g. sigmoid(−1e9) ≈ e^(−1e9)) underflows to +0 or to that
// smallest number, as MPFR's own exp does.
//
// The in-place forms (`setSoftplus` …) write into an existing value but
// allocate working-precision temporaries internally.

extension BigFloat {
    /// self ← softplus(x) = log(1 + eˣ), correctly rounded to self's precision.
    ///
    /// Evaluated as log1p(eˣ) for x ≤ 0 (no cancellation; ≈ eˣ for very
    /// negative x) and as x + log1p(e^(−x)) for x > 0 (no overflow; ≈ x for
    /// large x). softplus(x) > 0 for every finite x; softplus(0) = log 2.
    /// NaN → NaN, +∞ → +∞, −∞ → +0.
    public func setSoftplus(_ x: BigFloat) {
        if x.isNaN { set(x); return }
        if x.isInfinite { x.sign == .plus ? set(x) : withUnsafeMPFR { mc_set_zero($0, 1) }; return }
        if x.signum > 0 {
            if x >= BigFloat(BigFloat.nudgeBits(x, precision)) {
                // softplus(x) = x + τ, 0 < τ < e^(−x) < 2^(EXP(x) − k).
                BigFloat.roundNudged(x, direction: +1, into: self)
                return
            }
            BigFloat.correctlyRounded(into: self) { y in
                let t = BigFloat(precision: y.precision)
                t.setProduct(x, BigFloat(-1, precision: 2))
                t.setExp(t)                     // e^(−x)(1 + δ₁)
                t.setLogOnePlus(t)              // log1p(e^(−x))(1 + θ), |θ| ≤ 2.01·2^−w
                y.setSum(x, t)                  // (x + log1p(e^(−x)))(1 + θ'), |θ'| ≤ 3.02·2^−w
                return y.precision - 3
            }
        } else {
            BigFloat.correctlyRounded(into: self) { y in
                y.setExp(x)                     // eˣ(1 + δ₁)
                if y.isAtUnderflowThreshold { return nil }
                y.setLogOnePlus(y)              // log1p(eˣ)(1 + θ), |θ| ≤ 2.01·2^−w
                return y.precision - 3
            }
        }
    }

    /// self ← σ(x) = 1/(1 + e^(−x)), correctly rounded to self's precision.
    ///
    /// Evaluated as 1/(1 + e^(−x)) for x ≥ 0 and eˣ/(1 + eˣ) for x < 0, so
    /// neither exponential overflows and the tiny values of σ at very negative
    /// x keep full relative accuracy (σ(−1000) ≈ 5.08e−435 to the last bit).
    /// σ(±0) = ½ exactly; 0 < σ(x) < 1 for finite x, though it rounds to 1 for
    /// large x. NaN → NaN, +∞ → 1, −∞ → +0.
    public func setSigmoid(_ x: BigFloat) {
        if x.isNaN { set(x); return }
        if x.isInfinite { x.sign == .plus ? set(1) : withUnsafeMPFR { mc_set_zero($0, 1) }; return }
        if x.isZero { set(BigFloat(mantissa: 1, exponent: -1, precision: 2)); return }
        let p = precision
        let half = BigFloat(mantissa: 1, exponent: -1, precision: 2)
        if x.exponent <= 2 - BigFloat.nudgeBits(half, p) {
            // σ(x) = ½ + τ with τ = tanh(x/2)/2 of x's sign, |τ| ≤ |x|/4 < 2^(−k).
            BigFloat.roundNudged(half, direction: x.signum, into: self)
            return
        }
        let one = BigFloat(1, precision: 2)
        if x >= BigFloat(BigFloat.nudgeBits(one, p)) {
            // σ(x) = 1 − τ, 0 < τ < e^(−x) < 2^(1 − k).
            BigFloat.roundNudged(one, direction: -1, into: self)
            return
        }
        BigFloat.correctlyRounded(into: self) { y in
            let k = BigFloat.sigmoidApproximation(x, into: y)
            return k
        }
    }

    /// y ← an approximation of σ(x) at y's precision w with relative error
    /// ≤ 4.02 · 2^−w; returns the `correctlyRounded` bound w − 4, or nil at
    /// MPFR's underflow threshold. `x` finite and nonzero.
    static func sigmoidApproximation(_ x: BigFloat, into y: BigFloat) -> Int? {
        let t = BigFloat(precision: y.precision)
        if x.signum > 0 {
            t.setProduct(x, BigFloat(-1, precision: 2))
            t.setExp(t)                               // e^(−x)(1 + δ₁) ≤ 1
            t.add(BigFloat(1, precision: 2))          // (1 + e^(−x))(1 + θ), |θ| ≤ 2.01·2^−w
            y.setQuotient(BigFloat(1, precision: 2), t)   // relative error ≤ 3.02·2^−w
        } else {
            t.setExp(x)                               // eˣ(1 + δ₁)
            if t.isAtUnderflowThreshold { y.set(t); return nil }
            y.setSum(t, BigFloat(1, precision: 2))    // (1 + eˣ)(1 + θ)
            y.setQuotient(t, y)                       // relative error ≤ 4.02·2^−w
        }
        return y.precision - 4
    }

    /// self ← SiLU(x) = x · σ(x) (also "swish"), correctly rounded to self's precision.
    ///
    /// SiLU(±0) = ±0; SiLU(x) ≈ x for large x and ≈ x·eˣ (tiny, negative) for
    /// very negative x; its minimum ≈ −0.278 is at x ≈ −1.278.
    /// NaN → NaN, +∞ → +∞, −∞ → −0 (the limit of x·σ(x), approached from below).
    public func setSiLU(_ x: BigFloat) {
        if x.isNaN { set(x); return }
        if x.isInfinite { x.sign == .plus ? set(x) : withUnsafeMPFR { mc_set_zero($0, -1) }; return }
        if x.isZero { set(x); return }
        let k = BigFloat.nudgeBits(x, precision)
        if x.signum > 0 && x >= BigFloat(k) {
            // SiLU(x) = x − τ, 0 < τ = x·e^(−x)/(1 + e^(−x)) < 2^(EXP(x) − k).
            BigFloat.roundNudged(x, direction: -1, into: self)
            return
        }
        if x.exponent <= 1 - k {
            // SiLU(x) = x/2 + τ, 0 < τ = x·tanh(x/2)/2 ≤ x²/4 < 2^(EXP(x/2) − k).
            let halfX = BigFloat(x)
            halfX.multiply(byPowerOfTwo: -1)
            BigFloat.roundNudged(halfX, direction: +1, into: self)
            return
        }
        BigFloat.correctlyRounded(into: self) { y in
            let s = BigFloat(precision: y.precision)
            guard BigFloat.sigmoidApproximation(x, into: s) != nil else {
                y.setProduct(x, s); return nil
            }
            y.setProduct(x, s)                        // relative error ≤ 5.03·2^−w
            return y.precision - 5
        }
    }

    /// self ← softplus⁻¹(y) = log(e^y − 1) = log(expm1(y)), correctly rounded
    /// to self's precision: the x with softplus(x) = y, as used to initialise
    /// Mamba's dt_bias so that softplus(dt_bias) is a chosen Δ.
    ///
    /// Defined for y > 0: evaluated as log(expm1(y)) for y ≤ 1 (≈ log y for
    /// tiny y) and as y + log1p(−e^(−y)) for y > 1 (≈ y for large y, no
    /// overflow). Zero at y = log 2. ±0 → −∞, y < 0 → NaN, +∞ → +∞, NaN → NaN.
    public func setInverseSoftplus(_ y: BigFloat) {
        if y.isNaN { set(y); return }
        if y.isZero { withUnsafeMPFR { mc_set_inf($0, -1) }; return }
        if y.signum < 0 { withUnsafeMPFR { mc_set_nan($0) }; return }
        if y.isInfinite { set(y); return }
        let k = BigFloat.nudgeBits(y, precision)
        if y >= BigFloat(k + 1) {
            // y + log1p(−e^(−y)) = y − τ, 0 < τ ≤ 1.01·e^(−y) < 2^(EXP(y) − k).
            BigFloat.roundNudged(y, direction: -1, into: self)
            return
        }
        let one = BigFloat(1, precision: 2)
        if y > one {
            BigFloat.correctlyRounded(into: self) { r in
                let t = BigFloat(precision: r.precision)
                t.setProduct(y, BigFloat(-1, precision: 2))
                t.setExp(t)                               // e^(−y)(1 + δ₁) ≤ e^(−1)
                t.negate()
                t.setLogOnePlus(t)                        // relative error ≤ 2.6·2^−w
                r.setSum(y, t)                            // |t| ≤ 0.86·r: relative error ≤ 3.3·2^−w
                return r.precision - 4
            }
        } else {
            BigFloat.correctlyRounded(into: self) { r in
                let a = BigFloat(precision: r.precision)
                a.setExpMinusOne(y)                       // expm1(y)(1 + δ₁)
                r.setLog(a)                               // absolute error ≤ 1.01·2^−w + ½ulp(r)
                // Near y = log 2 the result is tiny and the absolute bound is what
                // counts: |r − f| ≤ 2^(max(0, EXP(r)) − w + 1). A zero r is undecided.
                if r.isZero { return 0 }
                return r.precision - 2 + Swift.min(r.exponent, 0)
            }
        }
    }

    /// self ← eˣ − 1, correctly rounded (accurate for small x).
    public func setExpMinusOne(_ x: BigFloat) { apply1(x, mc_expm1) }

    /// self ← log(1 + x), correctly rounded (accurate for small x).
    public func setLogOnePlus(_ x: BigFloat) { apply1(x, mc_log1p) }
}

// MARK: - Functional forms

extension BigFloat {
    /// softplus(x) = log(1 + eˣ), correctly rounded to `precision` bits (default:
    /// x's precision). See `setSoftplus(_:)` for the method and special values.
    public static func softplus(_ x: BigFloat, precision: Int? = nil) -> BigFloat {
        let r = BigFloat(precision: precision ?? x.precision)
        r.setSoftplus(x)
        return r
    }

    /// σ(x) = 1/(1 + e^(−x)), correctly rounded to `precision` bits (default:
    /// x's precision). See `setSigmoid(_:)`.
    public static func sigmoid(_ x: BigFloat, precision: Int? = nil) -> BigFloat {
        let r = BigFloat(precision: precision ?? x.precision)
        r.setSigmoid(x)
        return r
    }

    /// SiLU(x) = x·σ(x), correctly rounded to `precision` bits (default: x's
    /// precision). See `setSiLU(_:)`.
    public static func silu(_ x: BigFloat, precision: Int? = nil) -> BigFloat {
        let r = BigFloat(precision: precision ?? x.precision)
        r.setSiLU(x)
        return r
    }

    /// softplus⁻¹(y) = log(expm1(y)), correctly rounded to `precision` bits
    /// (default: y's precision). See `setInverseSoftplus(_:)`.
    public static func inverseSoftplus(_ y: BigFloat, precision: Int? = nil) -> BigFloat {
        let r = BigFloat(precision: precision ?? y.precision)
        r.setInverseSoftplus(y)
        return r
    }
}
