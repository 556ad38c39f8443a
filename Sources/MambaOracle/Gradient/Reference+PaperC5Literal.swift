import MambaPrecision
import MambaVariants

extension Reference {
    /// A named NEGATIVE example: the decay gradient of the paper's Appendix
    /// C.5 (arXiv 2602.17363) read literally, for sum-normalised decayed
    /// cores. It is wrong; the suite keeps it to show that its gradient
    /// checks catch the error (docs/MATH.md §5).
    ///
    /// C.5 folds the decay and mask into the upstream product,
    /// `G' = (dO·Vᵀ) ⊙ Γ ⊙ M`, and then forms the decay gradient from
    /// `Y ⊙ G'`, where `Y = w / D` already contains `Γ`. Implemented here as
    /// `D_ij = Y_ij·(G'_ij − δ_i)` on the mask (`δ_i = O_i·dO_i`) and
    /// `dL = rowsum(D) − colsum(D)`, `da_t = Σ_{u≥t} dL_u`; the initial-state
    /// term (which C.5 does not have) is left out. The decay is counted
    /// twice: the correct matrix is `Y ⊙ (G − δ)`, whose row sums vanish
    /// (see `Reference.gradients`). The two agree only where `Γ ≡ 1` on the
    /// mask (all decays zero) — the error is of the order of `1 − Γ`, i.e.
    /// of order one for typical decays.
    ///
    /// Only `dL` and `da` follow C.5; `dq`, `dk`, `dv` and the initial-state
    /// gradients returned are the corrected oracle's, so a comparison
    /// against `Reference.gradients` isolates the decay error.
    ///
    /// - Throws: `ReferenceError.unsupported` unless the core is decayed and
    ///   sum-normalised.
    public static func gradientsPaperC5Literal(_ problem: GradientProblem,
                                               precision: Int = BigFloat.defaultPrecision) throws -> ReferenceGradients {
        let spec = problem.core.spec
        guard spec.hasDecay, spec.normalization == .sum else {
            throw ReferenceError.unsupported("the C.5 literal decay gradient is defined for decayed, sum-normalised cores; \(spec.name) is not")
        }
        return try analyticGradients(problem, precision: precision, decayFormula: .paperC5Literal)
    }
}
