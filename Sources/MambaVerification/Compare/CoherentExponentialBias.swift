import Foundation
import MambaKernels
import MambaVariants

/// A GPU exponential's coherent bias, compounded over per-step decays, as a
/// direction the Float32 verdict judges modulo.
///
/// A recurrent kernel multiplies its state by `exp(a_t)` every token. If every
/// factor carries the same relative bias `δ` (Triton's `tl.exp` is
/// `ex2.approx`: measured 0.32 ulp per step on an H100, FLA's
/// `fused_recurrent_simple_gla`), the weight of token `j` in output `i` is off
/// by `(1 + δ)^(i−j)`, and the output error is, to first order,
///
///     e_i ≈ γ·d_i,   d = ∂y/∂σ · log(1 − 2⁻²⁵),
///
/// `∂y/∂σ` the derivative of the output with respect to one shift `σ` added to
/// every negative log-decay, `γ` the bias in units of `2⁻²⁵` per step
/// (`KernelComparison.exponentialBias`). Such an error is legitimate, and it is
/// nearly a scale error: as a yardstick (`exponentialBiasProblem`) it made a
/// chunked kernel's uniform error of 8x its own indistinguishable from a
/// correct recurrent kernel (FLA's chunk_simple_gla, IEEE fp32, N = 1000: the
/// biased baseline's error 1.86e-6 against 2.3e-7 for every chunked one).
///
/// So in Float32 the verdict measures every error — the candidate's and each
/// baseline's — after removing its least-squares component along `d`, per
/// `(batch, head)` sequence, with `|γ| ≤ maxUnits`. A bug keeps whatever part
/// of it is not along `d` (a uniform scale error is 70% correlated with `d`
/// under weak decays, measured on FLA's inputs: 71% of its norm remains), and no more than `maxUnits`
/// of the modelled bias is ever removed (Proofs/T9, "A coherent exponential bias").
public enum CoherentExponentialBias {
    /// The largest bias removed, in units of `2⁻²⁵` per step: 3x the H100's
    /// measured 0.32 ulp of `[1/2, 1)` (γ = 0.64), the verdict's own margin.
    public static let maxUnits = 2.0

    /// The shift `σ` of the finite difference that measures `∂y/∂σ`: large
    /// enough that the Float32 kernels' rounding (≈ 2⁻²³ relative) is
    /// ≤ 0.3% of the difference even when each output remembers one token,
    /// small enough that the second-order term `σ·(i−j)/2` stays ≤ 3% at
    /// `i − j = 1000`.
    static let probeShift = -0x1p-14

    /// `d` for the outputs and the final state (`s` nil without a state), or
    /// nil when the problem has no negative per-step log-decay.
    public struct Direction: Sendable {
        public var o: [Double]
        public var s: [Double]?
    }

    /// The direction `d` of `problem` (two Float32 chunked runs).
    public static func direction(_ problem: CoreProblem, options: KernelOptions) -> Direction? {
        guard case .perStep(let a) = problem.decay, a.contains(where: { $0 < 0 }) else { return nil }
        var shifted = problem
        shifted.decay = .perStep(a.map { $0 < 0 ? $0 + probeShift : $0 })
        var o = options
        o.roundOutput = false
        guard let y0 = try? CoreKernels.run(problem, form: .chunked, mode: .float32, options: o),
              let y1 = try? CoreKernels.run(shifted, form: .chunked, mode: .float32, options: o)
        else { return nil }
        let unit = log1p(-KernelComparison.exponentialBias) / probeShift
        func diff(_ x: [Double], _ y: [Double]) -> [Double] { zip(x, y).map { ($0.0 - $0.1) * unit } }
        var s: [Double]? = nil
        if let s0 = y0.finalState?.s, let s1 = y1.finalState?.s, s0.count == s1.count { s = diff(s1, s0) }
        return Direction(o: diff(y1.o, y0.o), s: s)
    }

    /// `d` for each gradient of `problem` (two Float32 chunked backward runs),
    /// the same finite difference as `direction`; nil as there.
    public static func gradientDirections(_ problem: GradientProblem, options: KernelOptions) -> CoreGradients? {
        guard case .perStep(let a) = problem.core.decay, a.contains(where: { $0 < 0 }) else { return nil }
        var shifted = problem
        shifted.core.decay = .perStep(a.map { $0 < 0 ? $0 + probeShift : $0 })
        guard let g0 = try? CoreBackward.run(problem, form: .chunked, mode: .float32, options: options),
              let g1 = try? CoreBackward.run(shifted, form: .chunked, mode: .float32, options: options)
        else { return nil }
        let unit = log1p(-KernelComparison.exponentialBias) / probeShift
        func diff(_ x: [Double]?, _ y: [Double]?) -> [Double]? {
            guard let x, let y, x.count == y.count else { return nil }
            return zip(x, y).map { ($0.0 - $0.1) * unit }
        }
        var d = g0
        d.dq = diff(g1.dq, g0.dq) ?? []
        d.dk = diff(g1.dk, g0.dk) ?? []
        d.dv = diff(g1.dv, g0.dv) ?? []
        d.dL = diff(g1.dL, g0.dL)
        d.da = diff(g1.da, g0.da)
        d.dInitialState = diff(g1.dInitialState, g0.dInitialState)
        d.dInitialStateZ = diff(g1.dInitialStateZ, g0.dInitialStateZ)
        return d
    }

    /// The candidate's and every baseline's values with their components along
    /// `d` removed (`remove`), and the candidate's coefficients; unchanged
    /// without a direction (or one of another length).
    public static func judgedModulo(candidate: [Double], baselines: [[Double]], oracle: [Double],
                                    direction d: [Double]?, groups: Int)
        -> (candidate: [Double], baselines: [[Double]], gamma: [Double]) {
        guard let d, d.count == candidate.count, oracle.count == d.count else { return (candidate, baselines, []) }
        let c = remove(from: candidate, oracle: oracle, direction: d, groups: groups)
        let b = baselines.map { $0.count == d.count ? remove(from: $0, oracle: oracle, direction: d, groups: groups).values : $0 }
        return (c.values, b, c.gamma)
    }

    /// `verdict` with a note saying how much bias was removed (unchanged when none was).
    public static func noted(_ verdict: Verdict, gamma: [Double]) -> Verdict {
        guard let g = gamma.map({ Swift.abs($0) }).max(), g > 0 else { return verdict }
        var v = verdict
        v.removedExponentialBias = g
        v.note = "judged modulo a coherent exponential bias (up to \(NumberText.fixed(g, digits: 2))"
            + " x 2^-25 per step removed, at most \(NumberText.fixed(maxUnits, digits: 0)))"
        v.reason = v.describe()
        return v
    }

    /// `values − γ_g·d` for each of `groups` equal contiguous groups, `γ_g` the
    /// least-squares coefficient of `values − oracle` on `d` over the elements
    /// where all three are finite, clamped to `±maxUnits`. Returns the values
    /// and the coefficients.
    public static func remove(from values: [Double], oracle: [Double], direction d: [Double],
                              groups: Int) -> (values: [Double], gamma: [Double]) {
        guard groups > 0, values.count == d.count, oracle.count == d.count, values.count % groups == 0
        else { return (values, []) }
        let width = values.count / groups
        var out = values
        var gammas: [Double] = []
        for g in 0..<groups {
            var num = 0.0, den = 0.0
            for e in (g * width)..<((g + 1) * width) {
                let err = values[e] - oracle[e]
                guard err.isFinite, d[e].isFinite else { continue }
                num += err * d[e]
                den += d[e] * d[e]
            }
            let gamma = den > 0 ? Swift.min(Swift.max(num / den, -maxUnits), maxUnits) : 0
            gammas.append(gamma)
            guard gamma != 0 else { continue }
            for e in (g * width)..<((g + 1) * width) where d[e].isFinite { out[e] = values[e] - gamma * d[e] }
        }
        return (out, gammas)
    }
}
