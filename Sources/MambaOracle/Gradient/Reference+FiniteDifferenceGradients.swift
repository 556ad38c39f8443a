import CMPFR
import MambaPrecision
import MambaVariants

extension Reference {
    /// The derivative-free gradient oracle: central differences of the loss
    /// `ℓ = Σ O ⊙ dO`, each input perturbed in turn by `±h` with
    /// `h = 2^stepExponent`, at `precision` bits:
    /// `∂ℓ/∂x ≈ (ℓ(x + h) − ℓ(x − h)) / 2h`.
    ///
    /// It shares no formula with `Reference.gradients`: the loss comes from a
    /// separate minimal evaluation of docs/MATH.md §1 (quadratic form plus the
    /// initial-state term) on inputs held as MPFR numbers of `precision` bits,
    /// so that `x ± h` is exact. `dL` perturbs each prefix sum `L_u` alone;
    /// `da` perturbs `a_t`, i.e. shifts `L_u` for every `u ≥ t`.
    ///
    /// Error: truncation `h²/6·|∂³ℓ/∂x³|` (2^−200 times a modest constant for
    /// the default `h = 2^−100` and inputs of order one) plus rounding
    /// `≈ κ·N·2^−precision·|ℓ|/h` (2^−400 for the default 512 bits). Both
    /// are far below the ~2^−100 relative agreement the tests demand of
    /// `Reference.gradients` at 256 bits. The defaults assume inputs and
    /// gradients of order one; for very large or tiny inputs scale `h` with
    /// them. relu-linear inputs must not sit within `h` of the kink at 0,
    /// where the central difference averages the one-sided slopes; rows with
    /// a zero normaliser give NaN.
    ///
    /// Cost: `2·(2N·dk + N·dv + 2N + F·dv + F)` loss evaluations of
    /// `O(N²·(dk + dv))` each per sequence — for small problems only.
    public static func finiteDifferenceGradients(_ problem: GradientProblem, precision: Int = 512,
                                                 stepExponent: Int = -100) throws -> ReferenceGradients {
        if let m = problem.validationError() { throw ReferenceError.invalidProblem(m) }
        guard precision > -stepExponent + 64 else {
            throw ReferenceError.invalidProblem("precision \(precision) leaves no bits below the step 2^\(stepExponent)")
        }
        let p = problem.core
        var dq: [BigFloat] = [], dk: [BigFloat] = [], dv: [BigFloat] = []
        var dL: [BigFloat]? = p.spec.hasDecay ? [] : nil, da: [BigFloat]? = p.spec.hasDecay ? [] : nil
        var dS: [BigFloat]? = nil, dZ: [BigFloat]? = nil
        for seq in 0..<p.sequences {
            let e = GradientLossEvaluator(problem, sequence: seq, precision: precision)
            let d = CentralDifference(evaluator: e, stepExponent: stepExponent)
            dq += d.gradient(of: e.q); dk += d.gradient(of: e.k); dv += d.gradient(of: e.v)
            if let L = e.L {
                dL! += d.gradient(of: L)
                da! += (0..<e.n).map { t in d.derivative(shifting: L, indices: t..<e.n) }
            }
            if let s0 = e.s0 { dS = (dS ?? []) + d.gradient(of: s0) }
            if let z0 = e.z0 { dZ = (dZ ?? []) + d.gradient(of: z0) }
        }
        return ReferenceGradients(precision: precision, dq: dq, dk: dk, dv: dv, dL: dL, da: da,
                                  dInitialState: dS, dInitialStateZ: dZ, zeroDenominatorRows: [])
    }

    /// The scalar `ℓ = Σ O ⊙ dO` at `precision` bits, from the same minimal
    /// forward the finite differences use (for checking that forward against
    /// `Reference.quadratic`).
    public static func gradientLoss(_ problem: GradientProblem, precision: Int = 256) throws -> BigFloat {
        if let m = problem.validationError() { throw ReferenceError.invalidProblem(m) }
        let total = BigFloat(0, precision: precision)
        let part = MPFRBuffer(count: 1, precision: precision)
        for seq in 0..<problem.core.sequences {
            GradientLossEvaluator(problem, sequence: seq, precision: precision).loss(into: part[0])
            total.withUnsafeMPFR { _ = mc_add($0, $0, part[0], MPFR_RNDN) }
        }
        return total
    }
}

/// Central differences of one sequence's loss with respect to the elements
/// of the evaluator's input buffers (which are perturbed and restored in place).
struct CentralDifference {
    let evaluator: GradientLossEvaluator
    let stepExponent: Int
    private let t: MPFRBuffer

    init(evaluator: GradientLossEvaluator, stepExponent: Int) {
        self.evaluator = evaluator
        self.stepExponent = stepExponent
        t = MPFRBuffer(count: 3, precision: evaluator.precision)
    }

    /// `∂ℓ/∂x_e` for every element `e` of `buffer`.
    func gradient(of buffer: MPFRBuffer) -> [BigFloat] {
        (0..<buffer.count).map { derivative(shifting: buffer, indices: $0..<($0 + 1)) }
    }

    /// The derivative of ℓ along the direction that adds the same amount to
    /// `buffer[indices]`: `(ℓ(+h) − ℓ(−h)) / 2h`. Exact restoration: the
    /// originals are copied out and back, never re-derived by subtraction.
    func derivative(shifting buffer: MPFRBuffer, indices: Range<Int>) -> BigFloat {
        let saved = MPFRBuffer(count: indices.count, precision: buffer.precision)
        for (s, e) in indices.enumerated() { mc_set(saved[s], buffer[e], MPFR_RNDN) }
        let h = t[2]
        mc_set_ui(h, 1, MPFR_RNDN); mc_mul_2si(h, h, stepExponent, MPFR_RNDN)
        for (s, e) in indices.enumerated() { mc_add(buffer[e], saved[s], h, MPFR_RNDN) }
        evaluator.loss(into: t[0])
        for (s, e) in indices.enumerated() { mc_sub(buffer[e], saved[s], h, MPFR_RNDN) }
        evaluator.loss(into: t[1])
        for (s, e) in indices.enumerated() { mc_set(buffer[e], saved[s], MPFR_RNDN) }
        let r = BigFloat(precision: evaluator.precision)
        r.withUnsafeMPFR { r in
            mc_sub(r, t[0], t[1], MPFR_RNDN)
            mc_mul_2si(r, r, -(stepExponent + 1), MPFR_RNDN)  // ÷ 2h
        }
        return r
    }
}
