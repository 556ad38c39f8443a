import CMPFR
import Dispatch
import MambaPrecision
import MambaVariants

/// Which formula the analytic backward pass uses for the decay gradient.
enum DecayGradientFormula {
    /// docs/MATH.md §5 (verified against central differences).
    case corrected
    /// The paper's Appendix C.5 read literally (a named negative example).
    case paperC5Literal
}

extension Reference {
    /// The analytic gradient oracle (docs/MATH.md §5): every gradient of
    /// `ℓ = Σ O ⊙ dO` for the core of `problem.core`, in MPFR, at `precision`
    /// bits, from the quadratic form.
    ///
    /// Per (batch, head) sequence, with `X = s·Q̃·K̃ᵀ` (`Q̃, K̃` after ReLU for
    /// relu-linear), `Γ_ij = exp(L_i − L_j)`, mask `M` (`i ≥ j`),
    /// `w = f(X) ⊙ Γ ⊙ M`, `G = dO·Vᵀ` and the initial-state feature
    /// `σ_i = c·e^{L_i}·φ(q̃_i)` (`c = s`, or `s²` for squared):
    ///
    /// - `none`: `O_i = Σ_j w_ij v_j + σ_iᵀS₀`.
    ///   `dV = wᵀ·dO`; `dX = f'(X) ⊙ Γ ⊙ G ⊙ M`; `dS₀ = Σ_i σ_i dO_iᵀ`;
    ///   `dL_i += Σ_j w_ij G_ij + σ_iᵀS₀dO_i` (row), `dL_j −= Σ_i w_ij G_ij`
    ///   (column). docs/MATH.md §5 writes `w ⊙ G` as `f(X) ⊙ E` with
    ///   `E = G ⊙ Γ ⊙ M`, which is the same matrix: `w_ij` depends on the
    ///   decay only through `L_i − L_j`, so `∂ℓ/∂L_i` collects `+w_ij G_ij` from
    ///   row `i` and `∂ℓ/∂L_j` collects `−w_ij G_ij` from column `j` (the
    ///   diagonal cancels, as it must: `a_0` never matters).
    /// - `sum`: `D_i = Σ_j w_ij + σ_iᵀz₀`, `O_i = (Σ_j w_ij v_j + σ_iᵀS₀)/D_i`,
    ///   `Y = w/D`, `δ_i = O_i·dO_i`, `dW_ij = (G_ij − δ_i)/D_i`.
    ///   `dV = Yᵀ·dO`; `dX = f'(X) ⊙ Γ ⊙ dW`; `dS₀ = Σ_i σ_i dO_iᵀ/D_i`,
    ///   `dz₀ = −Σ_i σ_i δ_i/D_i`; `dL_j = −Σ_i Y_ij (G_ij − δ_i)` (column
    ///   only). The query-side part `Σ_j Y_ij(G_ij − δ_i) + σ_iᵀ(S₀dO_i −
    ///   δ_i z₀)/D_i = O_i·dO_i − δ_i` is identically zero (scaling all of row
    ///   i's weights, state included, leaves `O_i` unchanged) and is not added.
    /// - Both: `dQ̃ = s·dX·K̃ + J_φ(Q̃)ᵀ(c·e^{L}⊙∂ℓ/∂σ)`, `dK̃ = s·dXᵀ·Q̃`, with
    ///   `∂ℓ/∂σ_i = S₀dO_i` (none) or `(S₀dO_i − δ_i z₀)/D_i` (sum);
    ///   `da_t = Σ_{u≥t} dL_u`.
    ///
    /// relu-linear: the gradient is with respect to the raw `q`, `k`, using
    /// ReLU'(x) = 1 for x > 0 and 0 for x ≤ 0 — PyTorch's convention
    /// (`relu` backward passes the gradient only where x > 0), so an input
    /// exactly at 0 receives no gradient. The function has no derivative
    /// there; a central difference across the kink would return the average
    /// of the one-sided slopes instead.
    ///
    /// Accuracy: every MPFR operation is correctly rounded to `precision`
    /// bits (prefix-sum differences at `precision + 64`), so each result has
    /// relative error `O(N·2^−p)` times its condition number with respect to
    /// the inputs; `Reference.finiteDifferenceGradients` checks the formulas
    /// independently. Cost per sequence: `O(N²·(dk + dv) + N·F·dv)` time
    /// (rows, then columns, split over the processors: the pair terms are
    /// computed twice, once per sweep) and `O(N·(dk + dv + F))` MPFR numbers
    /// (nothing of size N² is stored, `analyticSequence`). A
    /// sum-normalised row with a zero normaliser (0/0 output) makes every
    /// gradient that depends on it NaN and is listed in `zeroDenominatorRows`.
    public static func gradients(_ problem: GradientProblem,
                                 precision: Int = BigFloat.defaultPrecision) throws -> ReferenceGradients {
        try analyticGradients(problem, precision: precision, decayFormula: .corrected)
    }

    static func analyticGradients(_ g: GradientProblem, precision: Int,
                                  decayFormula: DecayGradientFormula) throws -> ReferenceGradients {
        if let m = g.validationError() { throw ReferenceError.invalidProblem(m) }
        guard precision >= 2 else { throw ReferenceError.invalidProblem("precision must be at least 2 bits") }
        let p = g.core, n = p.length, dv = p.valueDim
        var dq: [BigFloat] = [], dk: [BigFloat] = [], dvOut: [BigFloat] = []
        var dL: [BigFloat]? = p.spec.hasDecay ? [] : nil
        var da: [BigFloat]? = p.spec.hasDecay ? [] : nil
        var dS: [BigFloat]? = nil, dZ: [BigFloat]? = nil
        var zeroRows: [Int] = []
        for seq in 0..<p.sequences {
            let c = ReferenceSequence(problem: p, sequence: seq, precision: precision)
            let r = analyticSequence(c, dO: g.dO[seq * n * dv ..< (seq + 1) * n * dv], decayFormula: decayFormula)
            dq += r.dq.values(); dk += r.dk.values(); dvOut += r.dv.values()
            if let l = r.dL {
                dL! += l.values()
                da! += suffixSums(l, precision: precision).values()
            }
            if let s = r.dS0 { dS = (dS ?? []) + s.values() }
            if let z = r.dz0 { dZ = (dZ ?? []) + z.values() }
            zeroRows += r.zeroRows.map { seq * n + $0 }
        }
        return ReferenceGradients(precision: precision, dq: dq, dk: dk, dv: dvOut, dL: dL, da: da,
                                  dInitialState: dS, dInitialStateZ: dZ, zeroDenominatorRows: zeroRows)
    }

    /// `da_t = Σ_{u≥t} dL_u`, accumulated with 64 guard bits and rounded once per entry.
    static func suffixSums(_ dL: MPFRBuffer, precision: Int) -> MPFRBuffer {
        let out = MPFRBuffer(count: dL.count, precision: precision)
        let acc = MPFRBuffer(count: 1, precision: precision + 64)
        for t in stride(from: dL.count - 1, through: 0, by: -1) {
            mc_add(acc[0], acc[0], dL[t], MPFR_RNDN)
            mc_set(out[t], acc[0], MPFR_RNDN)
        }
        return out
    }

    /// Gradients of one sequence (MPFR buffers at the sequence's precision).
    struct SequenceGradientBuffers {
        let dq: MPFRBuffer, dk: MPFRBuffer, dv: MPFRBuffer
        let dL: MPFRBuffer?
        let dS0: MPFRBuffer?, dz0: MPFRBuffer?
        let zeroRows: [Int]
    }

    /// The pair terms of one sequence's p-bit gradients, recomputed by each
    /// sweep that needs them instead of stored (issue #12). One per worker,
    /// with its scratch numbers at fixed precisions, so that a pair `(i, j)`
    /// gets the same MPFR values in the row sweep and in the column sweep.
    final class AnalyticPairTerms {
        let c: ReferenceSequence, dOM: MPFRBuffer
        let isExp: Bool, isSum: Bool
        let scratch: ReferenceScratch
        let t: MPFRBuffer      // 0 x, 1 Γ, 2 tmp (at p)
        let diff: MPFRBuffer   // L_i − L_j at the decay precision

        init(_ c: ReferenceSequence, dOM: MPFRBuffer) {
            self.c = c; self.dOM = dOM
            isExp = c.spec.score == .exponential; isSum = c.spec.normalization == .sum
            scratch = ReferenceScratch(precision: c.precision)
            t = MPFRBuffer(count: 3, precision: c.precision)
            diff = MPFRBuffer(count: 1, precision: c.decayPrecision)
        }

        /// `w_ij = f(X_ij)·Γ_ij`, `fg = f′(X_ij)·Γ_ij`, `g = G_ij = dO_i·v_j`; with
        /// `gamma`/`gOnly` (the literal C.5 formula) also `Γ_ij` and `G_ij` on their own.
        @inline(__always)
        func terms(_ i: Int, _ j: Int, w: MPFRPointer, fg: MPFRPointer, g: MPFRPointer,
                   gamma: MPFRPointer?, gOnly: MPFRPointer?) {
            let x = t[0], gam = t[1], tmp = t[2], dv = c.dv
            c.dot(x, i, j, scratch)
            mc_mul(x, x, c.scale[0], MPFR_RNDN)
            if let L = c.prefix {
                mc_sub(diff[0], L[i], L[j], MPFR_RNDN)
                if let gamma { mc_exp(gamma, diff[0], MPFR_RNDN) }
            }
            if isExp {
                // w = exp(s·x + L_i − L_j) as one exponential; f'(X)Γ = w.
                if c.prefix != nil {
                    mc_add(diff[0], diff[0], x, MPFR_RNDN)
                    mc_exp(w, diff[0], MPFR_RNDN)
                } else {
                    mc_exp(w, x, MPFR_RNDN)
                }
                mc_set(fg, w, MPFR_RNDN)
            } else {
                if c.prefix != nil { mc_exp(gam, diff[0], MPFR_RNDN) } else { mc_set_ui(gam, 1, MPFR_RNDN) }
                c.spec.score.applyPolynomial(tmp, x)             // f(x)
                mc_mul(w, tmp, gam, MPFR_RNDN)
                c.spec.score.applyPolynomialDerivative(tmp, x)   // f'(x)
                mc_mul(fg, tmp, gam, MPFR_RNDN)
            }
            // G_ij = dO_i · v_j
            mc_set_zero(g, 1)
            for col in 0..<dv { mc_fma(g, dOM[i * dv + col], c.vM[j * dv + col], g, MPFR_RNDN) }
            if let gOnly { mc_set(gOnly, g, MPFR_RNDN) }
        }

        /// `G_ij → dW_ij = (G_ij − δ_i)/D_i` (sum; none keeps `dW_ij = G_ij`).
        @inline(__always)
        func finish(_ g: MPFRPointer, den: MPFRPointer, delta: MPFRPointer) {
            guard isSum else { return }
            mc_sub(t[2], g, delta, MPFR_RNDN)
            mc_div(g, t[2], den, MPFR_RNDN)
        }
    }

    /// Gradients of one sequence in two sweeps that recompute the pair terms
    /// (`AnalyticPairTerms`) instead of storing `w`, `f′Γ`, `G`/`dW` as
    /// lower-triangular matrices: memory `O(N·(dk + dv) + N·F)` numbers.
    ///
    /// Row sweep, rows i: the terms of row i, `σ_i`, `D_i`, `δ_i`, `dW_i·`,
    /// `∂ℓ/∂σ_i`, then `dq_i` and the row part of `dL_i`. Column sweep, columns
    /// j: the terms of `(i, j)`, `i ≥ j`, with the stored `D_i`, `δ_i`; `dv_j`,
    /// `dk_j` and the rest of `dL_j`. Every result goes through the same
    /// operations in the same order as in the stored-triangle algorithm
    /// (bit-identical, `GradientSweepIdentityTests`).
    static func analyticSequence(_ c: ReferenceSequence, dO: ArraySlice<Double>,
                                 decayFormula: DecayGradientFormula) -> SequenceGradientBuffers {
        let n = c.n, dk = c.dk, dv = c.dv, p = c.precision
        let isSum = c.spec.normalization == .sum
        let L = c.prefix
        let f = c.featureDim ?? 0
        let s0 = c.s0, z0 = c.z0
        let hasState = s0 != nil
        let literal = decayFormula == .paperC5Literal && L != nil

        let dOM = MPFRBuffer(count: n * dv, precision: 53)
        dOM.setAll(dO)
        let sigma = hasState ? MPFRBuffer(count: n * f, precision: p) : nil   // σ_i = c·e^{L_i}·φ(q̃_i)
        let gSigma = hasState ? MPFRBuffer(count: n * f, precision: p) : nil  // ∂ℓ/∂σ_i
        let den = MPFRBuffer(count: n, precision: p)    // D_i (1 for none)
        let delta = MPFRBuffer(count: n, precision: p)  // δ_i = O_i·dO_i (0 for none)
        let sqrt2 = MPFRBuffer(count: 1, precision: p + 8)
        mc_set_ui(sqrt2[0], 2, MPFR_RNDN); mc_sqrt(sqrt2[0], sqrt2[0], MPFR_RNDN)
        let cq = MPFRBuffer(count: 1, precision: p)
        c.queryConstant(cq[0])
        let dqB = MPFRBuffer(count: n * dk, precision: p)
        let dkB = MPFRBuffer(count: n * dk, precision: p)
        let dvB = MPFRBuffer(count: n * dv, precision: p)
        let dLB = L != nil ? MPFRBuffer(count: n, precision: p) : nil

        /// `e ← ` the contribution of pair `(i, j)` to `∂ℓ/∂(L_i − L_j)`, from its
        /// terms at index `r` of the worker's buffers.
        @Sendable func decayEntry(_ e: MPFRPointer, i: Int, r: Int, w: MPFRBuffer, gm: MPFRBuffer, gOnly: MPFRBuffer?,
                        gamma: MPFRBuffer?) {
            switch decayFormula {
            case .corrected:
                // w_ij·dW_ij (its row sums vanish under sum normalisation, state included)
                mc_mul(e, w[r], gm[r], MPFR_RNDN)
            case .paperC5Literal:
                // Y_ij·(Γ_ij·G_ij − δ_i): C.5's G' = G ⊙ Γ ⊙ M, decay counted twice
                mc_mul(e, gOnly![r], gamma![r], MPFR_RNDN)
                mc_sub(e, e, delta[i], MPFR_RNDN)
                mc_mul(e, e, w[r], MPFR_RNDN)
                mc_div(e, e, den[i], MPFR_RNDN)
            }
        }

        // Row sweep, one row i at a time (rows are independent): the row's
        // pair terms, σ_i, D_i, δ_i, dW_i·, ∂ℓ/∂σ_i; dq_i and the row part of dL_i.
        parallelRows(n) { rows in
            let pt = AnalyticPairTerms(c, dOM: dOM)
            let w = MPFRBuffer(count: n, precision: p)    // w_ij
            let fg = MPFRBuffer(count: n, precision: p)   // f'(X_ij)·Γ_ij
            let gm = MPFRBuffer(count: n, precision: p)   // G_ij, then dW_ij
            let gamma = literal ? MPFRBuffer(count: n, precision: p) : nil
            let gOnly = literal ? MPFRBuffer(count: n, precision: p) : nil
            let t = MPFRBuffer(count: 4, precision: p)
            let tmp = t[2], yv = t[3]
            let ce = MPFRBuffer(count: 1, precision: p)   // c·e^{L_i}
            let num = MPFRBuffer(count: dv, precision: p)
            let feat = MPFRBuffer(count: Swift.max(f, 1), precision: p)
            let tb = MPFRBuffer(count: 3, precision: p)
            let gphi = MPFRBuffer(count: Swift.max(f, 1), precision: p)
            for i in rows {
                for j in 0...i { pt.terms(i, j, w: w[j], fg: fg[j], g: gm[j], gamma: gamma?[j], gOnly: gOnly?[j]) }
                if let sigma {
                    if let L { mc_exp(tmp, L[i], MPFR_RNDN); mc_mul(ce[0], tmp, cq[0], MPFR_RNDN) } else {
                        mc_set(ce[0], cq[0], MPFR_RNDN)
                    }
                    c.features(of: c.qM, row: i, into: feat, sqrt2: sqrt2[0])
                    for a in 0..<f { mc_mul(sigma[i * f + a], feat[a], ce[0], MPFR_RNDN) }
                }
                if isSum {
                    mc_set_zero(den[i], 1); num.zero()
                    for j in 0...i {
                        mc_add(den[i], den[i], w[j], MPFR_RNDN)
                        for col in 0..<dv { mc_fma(num[col], w[j], c.vM[j * dv + col], num[col], MPFR_RNDN) }
                    }
                    if let sigma, let s0, let z0 {
                        for a in 0..<f {
                            mc_fma(den[i], sigma[i * f + a], z0[a], den[i], MPFR_RNDN)
                            for col in 0..<dv { mc_fma(num[col], sigma[i * f + a], s0[a * dv + col], num[col], MPFR_RNDN) }
                        }
                    }
                    // δ_i = O_i · dO_i (0/0 = NaN on a zero row, propagated on purpose)
                    mc_set_zero(delta[i], 1)
                    for col in 0..<dv {
                        mc_div(yv, num[col], den[i], MPFR_RNDN)
                        mc_fma(delta[i], yv, dOM[i * dv + col], delta[i], MPFR_RNDN)
                    }
                    // dW_ij = (G_ij − δ_i)/D_i
                    for j in 0...i { pt.finish(gm[j], den: den[i], delta: delta[i]) }
                } else {
                    mc_set_ui(den[i], 1, MPFR_RNDN)
                    mc_set_zero(delta[i], 1)   // dW_ij = G_ij
                }
                // ∂ℓ/∂σ_i = S₀dO_i (none) or (S₀dO_i − δ_i z₀)/D_i (sum)
                if let gSigma, let s0 {
                    for a in 0..<f {
                        let g = gSigma[i * f + a]
                        mc_set_zero(g, 1)
                        for col in 0..<dv { mc_fma(g, s0[a * dv + col], dOM[i * dv + col], g, MPFR_RNDN) }
                        if isSum, let z0 {
                            mc_mul(tmp, delta[i], z0[a], MPFR_RNDN)
                            mc_sub(g, g, tmp, MPFR_RNDN)
                            mc_div(g, g, den[i], MPFR_RNDN)
                        }
                    }
                }
                // dq̃_i = s·Σ_j f'Γ_ij dW_ij k̃_j + J_φ(q̃_i)ᵀ(c·e^{L_i}·∂ℓ/∂σ_i).
                let b = tb[0]
                for j in 0...i {
                    mc_mul(b, fg[j], gm[j], MPFR_RNDN)
                    mc_mul(b, b, c.scale[0], MPFR_RNDN)
                    for d in 0..<dk { mc_fma(dqB[i * dk + d], b, c.kM[j * dk + d], dqB[i * dk + d], MPFR_RNDN) }
                }
                if let gSigma {
                    for a in 0..<f { mc_mul(gphi[a], gSigma[i * f + a], ce[0], MPFR_RNDN) }
                    featureVJP(c.spec.score, x: c.qM, row: i, dim: dk, cotangent: gphi, into: dqB, sqrt2: sqrt2[0],
                               tmp: b)
                }
                // dL_i, row part: + row i of the matrix of ∂ℓ/∂(L_i − L_j) contributions.
                guard let dL = dLB else { continue }
                mc_set_zero(dL[i], 1)
                if !(isSum && decayFormula == .corrected) {
                    for j in 0...i {
                        decayEntry(tb[2], i: i, r: j, w: w, gm: gm, gOnly: gOnly, gamma: gamma)
                        mc_add(dL[i], dL[i], tb[2], MPFR_RNDN)
                    }
                }
            }
        }
        let zeroRows = isSum ? (0..<n).filter { mc_zero_p(den[$0]) != 0 } : []

        // Column sweep, one column j at a time: dv_j, dk_j and the column part of dL_j.
        parallelRows(n) { columns in
            let pt = AnalyticPairTerms(c, dOM: dOM)
            let w = MPFRBuffer(count: n, precision: p), fg = MPFRBuffer(count: n, precision: p)
            let gm = MPFRBuffer(count: n, precision: p)
            let gamma = literal ? MPFRBuffer(count: n, precision: p) : nil
            let gOnly = literal ? MPFRBuffer(count: n, precision: p) : nil
            let t = MPFRBuffer(count: 3, precision: p)
            let tmp = t[0], y = t[1], e = t[2]
            for j in columns {
                for i in j..<n {
                    let r = i - j
                    pt.terms(i, j, w: w[r], fg: fg[r], g: gm[r], gamma: gamma?[r], gOnly: gOnly?[r])
                    pt.finish(gm[r], den: den[i], delta: delta[i])
                }
                // dv_j = Σ_i (w_ij/D_i)·dO_i, dk̃_j = s·Σ_i f'Γ_ij dW_ij q̃_i.
                for i in j..<n {
                    let r = i - j
                    if isSum { mc_div(y, w[r], den[i], MPFR_RNDN) } else { mc_set(y, w[r], MPFR_RNDN) }
                    for col in 0..<dv { mc_fma(dvB[j * dv + col], y, dOM[i * dv + col], dvB[j * dv + col], MPFR_RNDN) }
                    mc_mul(tmp, fg[r], gm[r], MPFR_RNDN)
                    mc_mul(tmp, tmp, c.scale[0], MPFR_RNDN)
                    for d in 0..<dk { mc_fma(dkB[j * dk + d], tmp, c.qM[i * dk + d], dkB[j * dk + d], MPFR_RNDN) }
                }
                // dL_j: − column j.
                guard let dL = dLB else { continue }
                for i in j..<n {
                    decayEntry(e, i: i, r: i - j, w: w, gm: gm, gOnly: gOnly, gamma: gamma)
                    mc_sub(dL[j], dL[j], e, MPFR_RNDN)
                }
                if !isSum, decayFormula == .corrected, let sigma, let gSigma {
                    // state term of an un-normalised row: ∂/∂L_j of c·e^{L_j}·φ(q̃_j)ᵀS₀dO_j
                    for a in 0..<f { mc_fma(dL[j], sigma[j * f + a], gSigma[j * f + a], dL[j], MPFR_RNDN) }
                }
            }
        }

        // relu-linear: ReLU'(x) = 0 for x ≤ 0; q̃ = max(q, 0) is zero exactly there.
        if c.spec.score.traits.reluOnInputs {
            for e in 0..<(n * dk) {
                if mc_sgn(c.qM[e]) <= 0 { mc_set_zero(dqB[e], 1) }
                if mc_sgn(c.kM[e]) <= 0 { mc_set_zero(dkB[e], 1) }
            }
        }

        // Initial state: dS₀ = Σ_i σ_i dO_iᵀ/D_i, dz₀ = −Σ_i σ_i δ_i/D_i (O(N·F·dv), serial).
        var dS0: MPFRBuffer? = nil, dz0: MPFRBuffer? = nil
        if let sigma {
            let s = MPFRBuffer(count: f * dv, precision: p)
            let z = isSum ? MPFRBuffer(count: f, precision: p) : nil
            let t = MPFRBuffer(count: 2, precision: p)
            for i in 0..<n {
                for a in 0..<f {
                    mc_div(t[0], sigma[i * f + a], den[i], MPFR_RNDN)
                    for col in 0..<dv { mc_fma(s[a * dv + col], t[0], dOM[i * dv + col], s[a * dv + col], MPFR_RNDN) }
                    if let z {
                        mc_mul(t[1], t[0], delta[i], MPFR_RNDN)
                        mc_sub(z[a], z[a], t[1], MPFR_RNDN)
                    }
                }
            }
            dS0 = s; dz0 = z
        }
        return SequenceGradientBuffers(dq: dqB, dk: dkB, dv: dvB, dL: dLB, dS0: dS0, dz0: dz0, zeroRows: zeroRows)
    }

    /// Index of the pair `(i, j)`, `j ≤ i`, in a row-major lower triangle.
    @inline(__always)
    static func triangleIndex(_ i: Int, _ j: Int) -> Int { i * (i + 1) / 2 + j }

    /// Runs `body` on disjoint strided index sets covering `0..<n`, one per
    /// worker (strides balance the triangular row costs).
    static func parallelRows(_ n: Int, _ body: @Sendable (StrideTo<Int>) -> Void) {
        let workers = Swift.max(1, Swift.min(n, ProcessInfoLite.activeProcessorCount))
        if workers == 1 { body(stride(from: 0, to: n, by: 1)); return }
        DispatchQueue.concurrentPerform(iterations: workers) { k in body(stride(from: k, to: n, by: workers)) }
    }

    /// `out[row] += J_φ(x_row)ᵀ · g`: the vector–Jacobian product of the
    /// feature map (identity for first-order scores; for the packed
    /// second-order map, `∂φ_(a,a)/∂x_a = 2x_a`, `∂φ_(a,b)/∂x_a = √2·x_b`,
    /// `∂φ_(a,b)/∂x_b = √2·x_a`).
    static func featureVJP(_ score: Score, x: MPFRBuffer, row: Int, dim dk: Int, cotangent g: MPFRBuffer,
                           into out: MPFRBuffer, sqrt2: UnsafeMutablePointer<__mpfr_struct>,
                           tmp: UnsafeMutablePointer<__mpfr_struct>) {
        let base = row * dk
        switch score {
        case .linear, .reluLinear:
            for d in 0..<dk { mc_add(out[base + d], out[base + d], g[d], MPFR_RNDN) }
        case .squared:
            var idx = 0
            for a in 0..<dk {
                mc_mul_2si(tmp, x[base + a], 1, MPFR_RNDN)
                mc_fma(out[base + a], tmp, g[idx], out[base + a], MPFR_RNDN)
                idx += 1
                for b in (a + 1)..<Swift.max(dk, a + 1) where b < dk {
                    mc_mul(tmp, g[idx], sqrt2, MPFR_RNDN)
                    mc_fma(out[base + a], tmp, x[base + b], out[base + a], MPFR_RNDN)
                    mc_fma(out[base + b], tmp, x[base + a], out[base + b], MPFR_RNDN)
                    idx += 1
                }
            }
        case .exponential:
            preconditionFailure("no feature map")
        }
    }
}
