import CMPFR
import MambaPrecision
import MambaVariants

/// Which formula the analytic backward pass uses for the decay gradient.
enum DecayGradientFormula {
    /// SPEC §5 (verified against central differences).
    case corrected
    /// The paper's Appendix C.5 read literally (a named negative example).
    case paperC5Literal
}

extension Reference {
    /// The analytic gradient oracle (SPEC §5): every gradient of
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
    ///   (column). SPEC §5 writes `w ⊙ G` as `f(X) ⊙ E` with
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
    /// ReLU'(x) = 1 for x > 0 and 0 for x ≤ 0 — the choice of PyTorch and
    /// every framework kernel, so an input exactly at 0 receives no gradient
    /// (the function has no derivative there; a central difference across
    /// the kink would give the average 1/2 of the one-sided slopes).
    ///
    /// Accuracy: every MPFR operation is correctly rounded to `precision`
    /// bits (prefix-sum differences at `precision + 64`), so each result has
    /// relative error `O(N·2^−p)` times its condition number with respect to
    /// the inputs; `Reference.finiteDifferenceGradients` checks the formulas
    /// independently. Cost `O(N²·(dk + dv))` time and `O(N²)` MPFR numbers
    /// per sequence. A sum-normalised row with a zero normaliser makes the
    /// gradients of its sequence NaN and is listed in `zeroDenominatorRows`.
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

    static func analyticSequence(_ c: ReferenceSequence, dO: ArraySlice<Double>,
                                 decayFormula: DecayGradientFormula) -> SequenceGradientBuffers {
        let n = c.n, dk = c.dk, dv = c.dv, p = c.precision
        let isSum = c.spec.normalization == .sum
        let isExp = c.spec.score == .exponential
        let L = c.prefix
        @inline(__always) func tri(_ i: Int, _ j: Int) -> Int { i * (i + 1) / 2 + j }
        let pairs = n * (n + 1) / 2

        let dOM = MPFRBuffer(count: n * dv, precision: 53)
        dOM.setAll(dO)
        let w = MPFRBuffer(count: pairs, precision: p)   // w_ij = f(X_ij)·Γ_ij
        let fg = MPFRBuffer(count: pairs, precision: p)  // f'(X_ij)·Γ_ij
        let gm = MPFRBuffer(count: pairs, precision: p)  // G_ij, then dW_ij = ∂ℓ/∂w_ij
        // Γ_ij and G_ij kept on their own, only for the literal C.5 formula.
        let literal = decayFormula == .paperC5Literal && L != nil
        let gammaOnly = literal ? MPFRBuffer(count: pairs, precision: p) : nil
        let gOnly = literal ? MPFRBuffer(count: pairs, precision: p) : nil
        let scratch = ReferenceScratch(precision: p)
        let t = MPFRBuffer(count: 4, precision: p)
        let x = t[0], gam = t[1], tmp = t[2], tmp2 = t[3]
        let diff = MPFRBuffer(count: 1, precision: c.decayPrecision)

        // 1. Pairwise quantities.
        for i in 0..<n {
            for j in 0...i {
                let ij = tri(i, j)
                c.dot(x, i, j, scratch)
                mc_mul(x, x, c.scale[0], MPFR_RNDN)
                if let L {
                    mc_sub(diff[0], L[i], L[j], MPFR_RNDN)
                    if let gammaOnly { mc_exp(gammaOnly[ij], diff[0], MPFR_RNDN) }
                }
                if isExp {
                    // w = exp(s·x + L_i − L_j) as one exponential; f'(X)Γ = w.
                    if L != nil {
                        mc_add(diff[0], diff[0], x, MPFR_RNDN)
                        mc_exp(w[ij], diff[0], MPFR_RNDN)
                    } else {
                        mc_exp(w[ij], x, MPFR_RNDN)
                    }
                    mc_set(fg[ij], w[ij], MPFR_RNDN)
                } else {
                    if L != nil { mc_exp(gam, diff[0], MPFR_RNDN) } else { mc_set_ui(gam, 1, MPFR_RNDN) }
                    if c.spec.score == .squared {
                        mc_sqr(tmp, x, MPFR_RNDN)             // f = x²
                        mc_mul(w[ij], tmp, gam, MPFR_RNDN)
                        mc_mul_2si(tmp, x, 1, MPFR_RNDN)      // f' = 2x
                        mc_mul(fg[ij], tmp, gam, MPFR_RNDN)
                    } else {
                        mc_mul(w[ij], x, gam, MPFR_RNDN)      // f = x
                        mc_set(fg[ij], gam, MPFR_RNDN)        // f' = 1
                    }
                }
                // G_ij = dO_i · v_j (products of doubles are exact in 106 bits).
                mc_set_zero(gm[ij], 1)
                for col in 0..<dv { mc_fma(gm[ij], dOM[i * dv + col], c.vM[j * dv + col], gm[ij], MPFR_RNDN) }
                if let gOnly { mc_set(gOnly[ij], gm[ij], MPFR_RNDN) }
            }
        }

        // 2. Initial-state features σ_i = c·e^{L_i}·φ(q̃_i) and the factor c·e^{L_i}.
        let f = c.featureDim ?? 0
        let s0 = c.s0, z0 = c.z0
        let sqrt2 = MPFRBuffer(count: 1, precision: p + 8)
        mc_set_ui(sqrt2[0], 2, MPFR_RNDN); mc_sqrt(sqrt2[0], sqrt2[0], MPFR_RNDN)
        let sigma = s0 != nil ? MPFRBuffer(count: n * f, precision: p) : nil
        let ce = s0 != nil ? MPFRBuffer(count: n, precision: p) : nil
        if let sigma, let ce {
            let feat = MPFRBuffer(count: f, precision: p)
            let cq = MPFRBuffer(count: 1, precision: p)
            c.queryConstant(cq[0])
            for i in 0..<n {
                if let L { mc_exp(tmp, L[i], MPFR_RNDN); mc_mul(ce[i], tmp, cq[0], MPFR_RNDN) } else {
                    mc_set(ce[i], cq[0], MPFR_RNDN)
                }
                c.features(of: c.qM, row: i, into: feat, sqrt2: sqrt2[0])
                for a in 0..<f { mc_mul(sigma[i * f + a], feat[a], ce[i], MPFR_RNDN) }
            }
        }

        // 3. Row pass: normaliser, δ, dW = ∂ℓ/∂w, ∂ℓ/∂σ, dV, dS₀, dz₀.
        let dvB = MPFRBuffer(count: n * dv, precision: p)
        let dS0 = s0 != nil ? MPFRBuffer(count: f * dv, precision: p) : nil
        let dz0 = (s0 != nil && isSum) ? MPFRBuffer(count: f, precision: p) : nil
        let gSigma = s0 != nil ? MPFRBuffer(count: n * f, precision: p) : nil
        let den = MPFRBuffer(count: n, precision: p)
        let delta = MPFRBuffer(count: n, precision: p)
        let num = MPFRBuffer(count: dv, precision: p)
        let yv = MPFRBuffer(count: 1, precision: p)
        var zeroRows: [Int] = []
        for i in 0..<n {
            if isSum {
                mc_set_zero(den[i], 1); num.zero()
                for j in 0...i {
                    mc_add(den[i], den[i], w[tri(i, j)], MPFR_RNDN)
                    for col in 0..<dv { mc_fma(num[col], w[tri(i, j)], c.vM[j * dv + col], num[col], MPFR_RNDN) }
                }
                if let sigma, let s0, let z0 {
                    for a in 0..<f {
                        mc_fma(den[i], sigma[i * f + a], z0[a], den[i], MPFR_RNDN)
                        for col in 0..<dv { mc_fma(num[col], sigma[i * f + a], s0[a * dv + col], num[col], MPFR_RNDN) }
                    }
                }
                if mc_zero_p(den[i]) != 0 { zeroRows.append(i) }
                // δ_i = O_i · dO_i (0/0 = NaN on a zero row, propagated on purpose)
                mc_set_zero(delta[i], 1)
                for col in 0..<dv {
                    mc_div(yv[0], num[col], den[i], MPFR_RNDN)
                    mc_fma(delta[i], yv[0], dOM[i * dv + col], delta[i], MPFR_RNDN)
                }
            } else {
                mc_set_ui(den[i], 1, MPFR_RNDN)
                mc_set_zero(delta[i], 1)
            }
            // dW_ij = (G_ij − δ_i)/D_i; dv_j += (w_ij/D_i)·dO_i
            for j in 0...i {
                let ij = tri(i, j)
                if isSum {
                    mc_sub(tmp, gm[ij], delta[i], MPFR_RNDN)
                    mc_div(gm[ij], tmp, den[i], MPFR_RNDN)
                    mc_div(tmp, w[ij], den[i], MPFR_RNDN)
                } else {
                    mc_set(tmp, w[ij], MPFR_RNDN)
                }
                for col in 0..<dv { mc_fma(dvB[j * dv + col], tmp, dOM[i * dv + col], dvB[j * dv + col], MPFR_RNDN) }
            }
            // ∂ℓ/∂σ_i = (S₀dO_i − δ_i z₀)/D_i; dS₀ += σ_i dO_iᵀ/D_i; dz₀ −= σ_i δ_i/D_i
            if let sigma, let gSigma, let s0, let dS0 {
                for a in 0..<f {
                    let g = gSigma[i * f + a]
                    mc_set_zero(g, 1)
                    for col in 0..<dv { mc_fma(g, s0[a * dv + col], dOM[i * dv + col], g, MPFR_RNDN) }
                    if isSum, let z0 {
                        mc_mul(tmp, delta[i], z0[a], MPFR_RNDN)
                        mc_sub(g, g, tmp, MPFR_RNDN)
                        mc_div(g, g, den[i], MPFR_RNDN)
                    }
                    if isSum { mc_div(tmp2, sigma[i * f + a], den[i], MPFR_RNDN) } else { mc_set(tmp2, sigma[i * f + a], MPFR_RNDN) }
                    for col in 0..<dv {
                        mc_fma(dS0[a * dv + col], tmp2, dOM[i * dv + col], dS0[a * dv + col], MPFR_RNDN)
                    }
                    if let dz0 {
                        mc_mul(tmp, tmp2, delta[i], MPFR_RNDN)
                        mc_sub(dz0[a], dz0[a], tmp, MPFR_RNDN)
                    }
                }
            }
        }

        // 4. Decay: dL from ∂ℓ/∂w (and the state term of un-normalised rows).
        var dLB: MPFRBuffer? = nil
        if L != nil {
            let dL = MPFRBuffer(count: n, precision: p)
            switch decayFormula {
            case .corrected:
                for i in 0..<n {
                    for j in 0...i {
                        let ij = tri(i, j)
                        mc_mul(tmp, w[ij], gm[ij], MPFR_RNDN)   // w_ij·dW_ij
                        mc_sub(dL[j], dL[j], tmp, MPFR_RNDN)    // column
                        if !isSum { mc_add(dL[i], dL[i], tmp, MPFR_RNDN) }  // row (zero under sum)
                    }
                    if !isSum, let sigma, let gSigma {
                        for a in 0..<f { mc_fma(dL[i], sigma[i * f + a], gSigma[i * f + a], dL[i], MPFR_RNDN) }
                    }
                }
            case .paperC5Literal:
                // D = Y ⊙ (G ⊙ Γ ⊙ M − δ) with G' = G⊙Γ⊙M; dL = rowsum(D) − colsum(D).
                let gamma = gammaOnly!, gRaw = gOnly!
                for i in 0..<n {
                    for j in 0...i {
                        let ij = tri(i, j)
                        mc_mul(tmp, gRaw[ij], gamma[ij], MPFR_RNDN)  // G'_ij = G_ij·Γ_ij
                        mc_sub(tmp, tmp, delta[i], MPFR_RNDN)
                        mc_mul(tmp, tmp, w[ij], MPFR_RNDN)
                        mc_div(tmp, tmp, den[i], MPFR_RNDN)     // Y_ij (Γ_ij G_ij − δ_i)
                        mc_add(dL[i], dL[i], tmp, MPFR_RNDN)
                        mc_sub(dL[j], dL[j], tmp, MPFR_RNDN)
                    }
                }
            }
            dLB = dL
        }

        // 5. dX = f'(X)Γ ⊙ dW; dQ̃ = s·dX·K̃, dK̃ = s·dXᵀ·Q̃.
        let dqB = MPFRBuffer(count: n * dk, precision: p)
        let dkB = MPFRBuffer(count: n * dk, precision: p)
        for i in 0..<n {
            for j in 0...i {
                let ij = tri(i, j)
                mc_mul(tmp, fg[ij], gm[ij], MPFR_RNDN)
                mc_mul(tmp, tmp, c.scale[0], MPFR_RNDN)
                for d in 0..<dk {
                    mc_fma(dqB[i * dk + d], tmp, c.kM[j * dk + d], dqB[i * dk + d], MPFR_RNDN)
                    mc_fma(dkB[j * dk + d], tmp, c.qM[i * dk + d], dkB[j * dk + d], MPFR_RNDN)
                }
            }
        }
        // State term: dq̃_i += J_φ(q̃_i)ᵀ (c·e^{L_i}·∂ℓ/∂σ_i).
        if let gSigma, let ce {
            let gphi = MPFRBuffer(count: f, precision: p)
            for i in 0..<n {
                for a in 0..<f { mc_mul(gphi[a], gSigma[i * f + a], ce[i], MPFR_RNDN) }
                featureVJP(c.spec.score, x: c.qM, row: i, dim: dk, cotangent: gphi, into: dqB, sqrt2: sqrt2[0],
                           tmp: tmp)
            }
        }
        // relu-linear: ReLU'(x) = 0 for x ≤ 0. q̃ = max(q, 0) is zero exactly there.
        if c.spec.score == .reluLinear {
            for e in 0..<(n * dk) {
                if mc_sgn(c.qM[e]) <= 0 { mc_set_zero(dqB[e], 1) }
                if mc_sgn(c.kM[e]) <= 0 { mc_set_zero(dkB[e], 1) }
            }
        }
        return SequenceGradientBuffers(dq: dqB, dk: dkB, dv: dvB, dL: dLB, dS0: dS0, dz0: dz0, zeroRows: zeroRows)
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
