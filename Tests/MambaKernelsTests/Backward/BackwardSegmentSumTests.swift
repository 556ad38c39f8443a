import Testing
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
import MambaVerification

/// Regression: the quadratic and tiled backward forms build their decay
/// exponents `D_ij = a_{j+1} + … + a_i` as segment sums (`DecayExponents`,
/// as the forward forms do), not as `L_i − L_j` of global Float32 prefix
/// sums (docs/MATH.md §6, Proofs/T8 Lemma 2).
@Suite("Backward kernels: segment-sum decay exponents")
struct BackwardSegmentSumTests {
    /// With strong decays (`a_t = −softplus(N(1, 1))`, `|L_i| ≈ 1.4·i`) at
    /// N = 2048, exponents formed as `L_i − L_j` of Float32 prefix sums carry
    /// an absolute error up to `(|L_i| + |L_j|)·2⁻²⁴ ≈ 3·10⁻⁴` — a relative
    /// error of that size on every decayed weight, hence on every gradient —
    /// whereas segment sums carry `γ_{i−j}·|D_ij|` (a few `2⁻²⁴` on the
    /// weights that are not negligible), as do the chunk-local sums of the
    /// chunked backward (chunks of 64: `|ℓ| ≲ 90`). Measured against the MPFR
    /// gradient oracle (precision 64: its own error, `O(N·2⁻⁶⁴)` times the
    /// condition, is far below Float32's) as the normwise relative error
    /// `‖ĝ − g‖₂ / ‖g‖₂` of each of dq, dk, dv, dL, worst tensor taken. (`da`
    /// is printed but not judged: it is the suffix sum `Σ_{u≥t} dL_u`, whose
    /// cancellation gives every form ≈ 4·10⁻⁶…1.5·10⁻⁵ and hides the effect.)
    ///
    /// Measured (seed 4096), worst of dq, dk, dv, dL:
    /// chunked 1.5·10⁻⁶ (linear-decay-none) / 1.3·10⁻⁶ (squared-decay-sum);
    /// quadratic and tiled with segment sums ≤ 4·10⁻⁷ (≤ 0.31× chunked);
    /// with global prefix sums (the pre-change behaviour, also what
    /// `KernelOptions.globalPrefixSums` restores) 4.8·10⁻⁵ / 2.7·10⁻⁵
    /// (21–31× chunked). Tolerances, with margin on both sides: segment sums
    /// `≤ 2×` chunked (6× above the measured 0.31, 10× below the pre-change
    /// 21), global prefix sums `≥ 10×` chunked (so the test provably detects
    /// the hazard; 2× below the measured 21).
    @Test(arguments: [CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                      CoreSpec(score: .squared, hasDecay: true, normalization: .sum)])
    func longStrongDecayGradients(_ spec: CoreSpec) throws {
        let n = 2048
        let core = CoreProblem.random(spec: spec, length: n, keyDim: 2, valueDim: 2, distribution: .strongDecay,
                                      seed: 4096)
        let g = GradientProblem.random(core: core, seed: 4096)
        let oracle = try Reference.gradients(g, precision: 64)
        func normwise(_ x: [Double], _ y: [BigFloat]) -> Double {
            var e = 0.0, r = 0.0
            for i in x.indices {
                let yi = y[i].doubleValue
                let d = x[i] - yi
                e += d.isNaN ? .infinity : d * d
                r += yi * yi
            }
            return r == 0 ? (e == 0 ? 0 : .infinity) : (e / r).squareRoot()
        }
        func error(_ form: KernelForm, global: Bool = false) throws -> Double {
            let out = try CoreBackward.run(g, form: form, mode: .float32, options: KernelOptions(globalPrefixSums: global))
            #expect(out.diagnostics.isEmpty, "\(spec.name) \(form): \(out.diagnostics)")
            let errors = [normwise(out.dq, oracle.dq), normwise(out.dk, oracle.dk), normwise(out.dv, oracle.dv),
                          normwise(out.dL!, oracle.dL!)]
            print("\(spec.name) \(form) global \(global) normwise [dq, dk, dv, dL]: \(errors), da: \(normwise(out.da!, oracle.da!))")
            return errors.max()!
        }
        let chunked = try error(.chunked)
        #expect(chunked < 1e-5, "\(spec.name) chunked: \(chunked)")
        #expect(try error(.chunked, global: true) == chunked) // chunk-local sums: the option does not apply
        for form in [KernelForm.quadratic, .tiled] {
            let segment = try error(form), global = try error(form, global: true)
            print("\(spec.name) backward \(form): normwise error segment sums \(segment), global prefix sums \(global), chunked \(chunked)")
            #expect(segment <= 2 * chunked, "\(spec.name) \(form): \(segment) vs chunked \(chunked)")
            #expect(global >= 10 * chunked, "\(spec.name) \(form): global prefix sums only \(global)")
        }
    }
}
