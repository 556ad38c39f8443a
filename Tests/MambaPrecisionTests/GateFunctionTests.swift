import Testing
import Foundation
import MambaPrecision

@Suite("softplus, sigmoid, SiLU, inverse softplus")
struct GateFunctionTests {
    @Test func specialValues() {
        let nan = BigFloat.nan(), inf = BigFloat.infinity(), minusInf = BigFloat.infinity(sign: .minus)
        let zero = BigFloat.zero(), minusZero = BigFloat.zero(sign: .minus)
        #expect(BigFloat.softplus(nan).isNaN && BigFloat.sigmoid(nan).isNaN)
        #expect(BigFloat.silu(nan).isNaN && BigFloat.inverseSoftplus(nan).isNaN)
        #expect(identical(BigFloat.softplus(inf), inf))
        #expect(identical(BigFloat.softplus(minusInf), zero))
        #expect(BigFloat.softplus(zero) == BigFloat.log(BigFloat(2)))
        #expect(BigFloat.sigmoid(inf) == BigFloat(1))
        #expect(identical(BigFloat.sigmoid(minusInf), zero))
        #expect(BigFloat.sigmoid(zero) == BigFloat(0.5) && BigFloat.sigmoid(minusZero) == BigFloat(0.5))
        #expect(identical(BigFloat.silu(inf), inf))
        #expect(identical(BigFloat.silu(minusInf), minusZero))
        #expect(identical(BigFloat.silu(zero), zero) && identical(BigFloat.silu(minusZero), minusZero))
        #expect(identical(BigFloat.inverseSoftplus(inf), inf))
        #expect(identical(BigFloat.inverseSoftplus(zero), minusInf))
        #expect(identical(BigFloat.inverseSoftplus(minusZero), minusInf))
        #expect(BigFloat.inverseSoftplus(BigFloat(-1)).isNaN)
    }

    /// Results of the form b ± τ with τ far below the last bit: the sign of τ
    /// must still break a tie. x = 2⁶⁰ + 2⁷ (64 bits) is a midpoint at 53 bits
    /// between 2⁶⁰ and 2⁶⁰ + 2⁸; rounding x itself ties to 2⁶⁰ (even).
    @Test func tinyCorrectionsBreakTies() {
        let x = BigFloat(mantissa: (1 << 53) + 1, exponent: 7, precision: 64)      // 2⁶⁰ + 2⁷
        #expect(BigFloat(x, precision: 53) == BigFloat(pow2(60)))                   // plain rounding: down
        #expect(BigFloat.softplus(x, precision: 53) == BigFloat(pow2(60) + 256))    // x + τ: up
        #expect(BigFloat.silu(x, precision: 53) == BigFloat(pow2(60)))              // x − τ: down
        let y = BigFloat(mantissa: (1 << 53) + 3, exponent: 7, precision: 64)      // 2⁶⁰ + 3·2⁷
        #expect(BigFloat(y, precision: 53) == BigFloat(pow2(60) + 512))             // ties up to even
        #expect(BigFloat.silu(y, precision: 53) == BigFloat(pow2(60) + 256))        // y − τ: down
        #expect(BigFloat.inverseSoftplus(y, precision: 53) == BigFloat(pow2(60) + 256))
        #expect(BigFloat.softplus(y, precision: 53) == BigFloat(pow2(60) + 512))
        // σ near ½ at 2 bits: ½ + τ with the sign of x
        let small = BigFloat(mantissa: 1, exponent: -200, precision: 53)
        #expect(BigFloat.sigmoid(small, precision: 53) == BigFloat(0.5))
        #expect(BigFloat.sigmoid(small, precision: 1) == BigFloat(0.5))
        // SiLU near 0: x/2 + τ, τ > 0 for both signs
        #expect(BigFloat.silu(small) == BigFloat(mantissa: 1, exponent: -201))
        // 1 − τ at 1 bit: the values are 1/2, 1, 2 …; midpoint 0.75 is far, so 1
        #expect(BigFloat.sigmoid(BigFloat(40), precision: 1) == BigFloat(1))
    }

    /// A case the first working precision (p + 32 bits) cannot decide, so the
    /// result is only right if the refinement loop runs: x = 55.5 + 2⁻⁴⁸ is a
    /// 53-bit midpoint and softplus(x) = x + τ with τ = log1p(e^(−x)) ≈ 2^−80.07,
    /// less than half an ulp of x at 85 bits; an 85-bit evaluation returns x
    /// itself, which ties down to 55.5. The right answer is the upper neighbour.
    @Test func refinementDecidesNearMidpoints() {
        let x = BigFloat(BigFloat(55.5) + BigFloat(mantissa: 1, exponent: -48), precision: 64)
        #expect(x > BigFloat(55.5))
        #expect(BigFloat(x, precision: 53) == BigFloat(55.5))         // a tie, down to even
        #expect(BigFloat.softplus(x, precision: 85) == x)            // what the first pass sees
        #expect(BigFloat.softplus(x, precision: 53) == BigFloat(55.5 + pow2(-47)))
    }

    /// Huge arguments are answered by the shortcuts without million-bit work.
    @Test func hugeArgumentsAreCheap() {
        let big = BigFloat(1e6, precision: 128)
        #expect(BigFloat.softplus(big) == big)
        #expect(BigFloat.silu(big) == big)
        #expect(BigFloat.inverseSoftplus(big) == big)
        #expect(BigFloat.sigmoid(big) == BigFloat(1))
        #expect(BigFloat.sigmoid(-big) > BigFloat(0))
        let reallyTiny = BigFloat("1e-100000", precision: 128)!
        #expect(BigFloat.sigmoid(reallyTiny) == BigFloat(0.5))
        #expect(BigFloat.silu(reallyTiny) == reallyTiny / BigFloat(2))
    }

    /// Random arguments over many scales at 53 bits, against the same function
    /// evaluated at 300 bits and rounded to 53: they agree unless the exact
    /// value lies within 2⁻²⁴⁰ (relative) of a 53-bit midpoint, which for these
    /// fixed seeds does not happen. Includes the shortcut thresholds (x ≈ 56).
    @Test func randomArgumentsAgreeWithHighPrecision() {
        var rng = SplitMix64(seed: 0x51_6D01D)
        print("gate function random test seed: 0x51_6D01D")
        for i in 0..<3000 {
            let x: Double
            switch i % 3 {
            case 0: x = Double.random(in: -60...60, using: &rng)
            case 1: x = randomDouble(exponents: -80...12, using: &rng)
            default: x = Double(Int.random(in: -70...70, using: &rng)) + Double.random(in: -1e-3...1e-3, using: &rng)
            }
            let v = BigFloat(x, precision: 53), wide = BigFloat(x, precision: 300)
            func check(_ name: String, _ f: (BigFloat, Int?) -> BigFloat) {
                let narrow = f(v, 53)
                let reference = BigFloat(f(wide, 300), precision: 53)
                #expect(identical(narrow, reference), "\(name)(\(x)): \(narrow) vs \(reference)")
            }
            check("softplus", BigFloat.softplus)
            check("sigmoid", BigFloat.sigmoid)
            check("silu", BigFloat.silu)
            if x > 0 { check("inverseSoftplus", BigFloat.inverseSoftplus) }
        }
    }

    @Test func inverseSoftplusInvertsSoftplus() {
        for x in [-30.0, -5, -1, -0.25, 1e-8, 0.5, 2, 10, 40] {
            let v = BigFloat(x, precision: 128)
            let back = BigFloat.inverseSoftplus(BigFloat.softplus(v))
            // Both roundings are ≤ 2⁻¹²⁸ relative; the one of softplus(x) is amplified
            // by the slope of the inverse, 1 + e^(−x).
            let softplus = log1p(exp(-abs(x))) + max(x, 0)
            let tolerance = BigFloat((abs(x) + softplus) * (1 + exp(-x)) * pow2(-120), precision: 128)
            #expect(BigFloat.abs(back - v) <= tolerance, "x = \(x)")
        }
        // dt_bias initialisation: softplus(inverseSoftplus(Δ)) = Δ
        for dt in [1e-3, 1e-2, 0.1] {
            let delta = BigFloat(dt, precision: 128)
            let bias = BigFloat.inverseSoftplus(delta)
            let relative = BigFloat.abs(BigFloat.softplus(bias) - delta) / delta
            #expect(relative < BigFloat(pow2(-120)))
        }
        #expect(BigFloat.inverseSoftplus(BigFloat.log(BigFloat(2, precision: 200))).isZero == false)
    }

    @Test func inPlaceFormsMatchAndMayAlias() {
        let x = BigFloat(0.75, precision: 96)
        let r = BigFloat(precision: 96)
        r.setSoftplus(x)
        #expect(r == BigFloat.softplus(x))
        let y = BigFloat(x)
        y.setSigmoid(y)
        #expect(y == BigFloat.sigmoid(x))
        y.set(x); y.setSiLU(y)
        #expect(y == BigFloat.silu(x))
        y.set(x); y.setInverseSoftplus(y)
        #expect(y == BigFloat.inverseSoftplus(x))
        y.setExpMinusOne(x)
        #expect(y == BigFloat.expm1(x))
        y.setLogOnePlus(x)
        #expect(y == BigFloat.log1p(x))
    }
}
