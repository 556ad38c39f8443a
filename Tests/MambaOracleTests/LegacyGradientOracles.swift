import CMPFR
import Dispatch
@testable import MambaOracle
import MambaPrecision
import MambaVariants

// The gradient oracles as they were before the two-sweep restructuring (issue #12):
// every pair term (w, f′Γ, G/dW) stored in three lower-triangular MPFR matrices,
// O(N²) memory. Kept verbatim (renamed) as the yardstick of
// `GradientSweepIdentityTests`: the streaming oracles must reproduce them bit for bit.

extension Reference {
    /// Copy of the stored-triangle `enclosedGradients` (certified gradients).
    /// Enclosures of every gradient of one sequence at its precision p.
    static func legacyEnclosedGradients(_ e: EnclosedSequence, dO: ValueRows, fault: EnclosureFault) -> GradientEnclosures {
        let c = e.base
        let n = c.n, dk = c.dk, dv = c.dv, p = c.precision, dp = c.decayPrecision
        let isSum = c.spec.normalization == .sum, isExp = c.spec.score == .exponential
        let f = c.featureDim ?? 0
        let hasState = e.s0 != nil, hasDecay = e.lLo != nil
        let pairs = n * (n + 1) / 2
        // Pair quantities: w_ij; f′(X)Γ_ij, then t_ij = s·f′(X)Γ_ij·dW_ij; G_ij, then w_ij·dW_ij.
        let w = EnclosedTensor(count: pairs, precision: p)
        let t = EnclosedTensor(count: pairs, precision: p)
        let gw = EnclosedTensor(count: pairs, precision: p)
        let den = EnclosedTensor(count: n, precision: p), delta = EnclosedTensor(count: n, precision: p)
        let sigma = EnclosedTensor(count: hasState ? n * f : 0, precision: p)   // σ_ia = c·e^{L_i}·φ_a(q̃_i)
        let ce = EnclosedTensor(count: hasState ? n : 0, precision: p)          // c·e^{L_i}
        let gSigma = EnclosedTensor(count: hasState ? n * f : 0, precision: p)  // ∂ℓ/∂σ_ia
        let status = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: Swift.max(n, 1))
        status.initialize(repeating: 0)
        defer { status.deallocate() }
        let statusPtr = UnsafeMutableSendable(status.baseAddress!)
        let qRows = ValueRows(mpfr: c.qM, abs: c.qAbs, integer: c.qRows, width: dk)
        let kRows = ValueRows(mpfr: c.kM, abs: c.kAbs, integer: c.kRows, width: dk)
        let values = e.values

        // Pass A, rows i: pair quantities, σ_i, D_i, δ_i, ∂ℓ/∂σ_i, t_i·, (w·dW)_i·.
        parallelRows(n) { rows in
            let scratch = ReferenceScratch(precision: p)
            let xb = MPFRBuffer(count: 2, precision: Swift.max(p, 128))
            let tm = MPFRBuffer(count: 12, precision: p)
            let d = MPFRBuffer(count: 4, precision: dp)
            let phiLo = MPFRBuffer(count: f, precision: p), phiHi = MPFRBuffer(count: f, precision: p)
            let hLo = MPFRBuffer(count: f, precision: p), hHi = MPFRBuffer(count: f, precision: p)
            let acc = MPFRBuffer(count: 2, precision: p)
            let xLo = xb[0], xHi = xb[1], yLo = tm[0], yHi = tm[1], gLo = tm[2], gHi = tm[3], tmp = tm[4]
            let aLo = tm[5], aHi = tm[6], s3 = tm[7]  // s3...s3+2: scratch of addProduct / features
            for i in rows {
                for j in 0...i {
                    let ij = triangleIndex(i, j)
                    e.dot(xLo, xHi, i, j, scratch)
                    Interval.mul(yLo, yHi, e.sLo[0], e.sHi[0], xLo, xHi, tmp: tmp)  // X_ij = s·x_ij
                    let wl = w.lo[ij], wh = w.hi[ij], fl = t.lo[ij], fh = t.hi[ij]
                    if isExp {
                        if let lLo = e.lLo, let lHi = e.lHi {
                            mc_add(d[0], yLo, lLo[i], MPFR_RNDD); mc_sub(d[0], d[0], lHi[j], MPFR_RNDD)
                            mc_add(d[1], yHi, lHi[i], MPFR_RNDU); mc_sub(d[1], d[1], lLo[j], MPFR_RNDU)
                            Interval.exp(wl, wh, d[0], d[1])
                        } else {
                            Interval.exp(wl, wh, yLo, yHi)
                        }
                        if fault == .upperEndRoundedDown { mc_set(wh, wl, MPFR_RNDN) }
                        mc_set(fl, wl, MPFR_RNDN); mc_set(fh, wh, MPFR_RNDN)  // f′(X)Γ = w
                    } else {
                        // Γ_ij ∈ [gLo, gHi]
                        if let eLo = e.eLo, let eHi = e.eHi, let fLo = e.fLo, let fHi = e.fHi {
                            mc_mul(gLo, fLo[i], eLo[j], MPFR_RNDD); mc_mul(gHi, fHi[i], eHi[j], MPFR_RNDU)  // positive factors
                        } else if let lLo = e.lLo, let lHi = e.lHi {
                            Interval.sub(d[0], d[1], lLo[i], lHi[i], lLo[j], lHi[j])
                            Interval.exp(d[2], d[3], d[0], d[1])
                            mc_set(gLo, d[2], MPFR_RNDD); mc_set(gHi, d[3], MPFR_RNDU)
                        } else {
                            mc_set_ui(gLo, 1, MPFR_RNDN); mc_set_ui(gHi, 1, MPFR_RNDN)
                        }
                        if c.spec.score == .squared {
                            Interval.sqr(aLo, aHi, yLo, yHi, tmp: tmp)                 // f = X²
                            Interval.mul(wl, wh, aLo, aHi, gLo, gHi, tmp: tmp)
                            mc_mul_2si(aLo, yLo, 1, MPFR_RNDD); mc_mul_2si(aHi, yHi, 1, MPFR_RNDU)  // f′ = 2X
                            Interval.mul(fl, fh, aLo, aHi, gLo, gHi, tmp: tmp)
                        } else {
                            Interval.mul(wl, wh, yLo, yHi, gLo, gHi, tmp: tmp)         // f = X
                            mc_set(fl, gLo, MPFR_RNDD); mc_set(fh, gHi, MPFR_RNDU)     // f′ = 1
                        }
                        if fault == .upperEndRoundedDown { mc_set(wh, wl, MPFR_RNDN) }
                    }
                    // G_ij = dO_i·v_j
                    EnclosedSequence.dot(gw.lo[ij], gw.hi[ij], dO.dotRow(i), values.dotRow(j), dO.mpfr[i * dv],
                                         c.vM[j * dv], length: dv, scratch)
                }
                if hasState, let s0 = e.s0 {
                    // c·e^{L_i}, σ_i = c·e^{L_i}·φ(q̃_i), h_ia = S₀_a·dO_i
                    if let fLo = e.fLo, let fHi = e.fHi {
                        Interval.mul(ce.lo[i], ce.hi[i], e.queryConstant[0], e.queryConstant[1], fLo[i], fHi[i], tmp: tmp)
                    } else {
                        mc_set(ce.lo[i], e.queryConstant[0], MPFR_RNDD); mc_set(ce.hi[i], e.queryConstant[1], MPFR_RNDU)
                    }
                    Interval.features(c.spec.score, dim: dk, x: c.qM[i * dk], lo: phiLo[0], hi: phiHi[0],
                                      sqrt2: e.sqrt2[0], e.sqrt2[1], t: s3)
                    for a in 0..<f {
                        Interval.mul(sigma.lo[i * f + a], sigma.hi[i * f + a], phiLo[a], phiHi[a], ce.lo[i], ce.hi[i], tmp: tmp)
                        EnclosedSequence.dot(hLo[a], hHi[a], s0.dotRow(a), dO.dotRow(i), s0.mpfr[a * dv], dO.mpfr[i * dv],
                                             length: dv, scratch)
                    }
                }
                let dl = den.lo[i], dh = den.hi[i], el = delta.lo[i], eh = delta.hi[i]
                var usable = true
                if isSum {
                    // D_i = Σ_j w_ij + σ_iᵀz₀; δ_i = (Σ_j w_ij G_ij + σ_iᵀh_i)/D_i
                    mc_set_zero(dl, 1); mc_set_zero(dh, 1); mc_set_zero(acc[0], 1); mc_set_zero(acc[1], 1)
                    for j in 0...i {
                        let ij = triangleIndex(i, j)
                        mc_add(dl, dl, w.lo[ij], MPFR_RNDD); mc_add(dh, dh, w.hi[ij], MPFR_RNDU)
                        Interval.addProduct(acc[0], acc[1], w.lo[ij], w.hi[ij], gw.lo[ij], gw.hi[ij], t: s3)
                    }
                    if hasState {
                        for a in 0..<f {
                            let sl = sigma.lo[i * f + a], sh = sigma.hi[i * f + a]
                            if let z0 = e.z0 { Interval.addProduct(dl, dh, sl, sh, z0[a], z0[a], t: s3) }
                            Interval.addProduct(acc[0], acc[1], sl, sh, hLo[a], hHi[a], t: s3)
                        }
                    }
                    if mc_zero_p(dl) != 0 && mc_zero_p(dh) != 0 {
                        statusPtr.pointer[i] = 2; usable = false
                    } else if !Interval.excludesZero(dl, dh) {
                        statusPtr.pointer[i] = 1; usable = false
                    }
                    if usable && i == 0 && !hasState {
                        // Row 0 has the single weight w_00: δ_0 = G_00 exactly (and dW_00 = 0 below), an
                        // identity interval division would blur into an enclosure of 0 that never decides.
                        mc_set(el, gw.lo[0], MPFR_RNDD); mc_set(eh, gw.hi[0], MPFR_RNDU)
                    } else if usable {
                        Interval.div(el, eh, acc[0], acc[1], dl, dh, tmp: tmp, tmp2: aLo)
                    } else {
                        mc_set_inf(el, -1); mc_set_inf(eh, 1)
                    }
                } else {
                    mc_set_ui(dl, 1, MPFR_RNDN); mc_set_ui(dh, 1, MPFR_RNDN)
                    mc_set_zero(el, 1); mc_set_zero(eh, 1)
                }
                // ∂ℓ/∂σ_ia = h_ia (none) or (h_ia − δ_i z₀_a)/D_i (sum)
                if hasState {
                    for a in 0..<f {
                        let gl = gSigma.lo[i * f + a], gh = gSigma.hi[i * f + a]
                        if !isSum { mc_set(gl, hLo[a], MPFR_RNDD); mc_set(gh, hHi[a], MPFR_RNDU); continue }
                        if !usable { mc_set_inf(gl, -1); mc_set_inf(gh, 1); continue }
                        if let z0 = e.z0 {
                            Interval.mul(aLo, aHi, el, eh, z0[a], z0[a], tmp: tmp)
                            Interval.sub(yLo, yHi, hLo[a], hHi[a], aLo, aHi)
                        } else {
                            mc_set(yLo, hLo[a], MPFR_RNDD); mc_set(yHi, hHi[a], MPFR_RNDU)
                        }
                        Interval.div(gl, gh, yLo, yHi, dl, dh, tmp: tmp, tmp2: aLo)
                    }
                }
                // dW_ij = (G_ij − δ_i)/D_i or G_ij; t_ij = s·f′Γ_ij·dW_ij; (w·dW)_ij
                for j in 0...i {
                    let ij = triangleIndex(i, j)
                    if isSum {
                        if usable && i == 0 && !hasState {
                            mc_set_zero(gLo, 1); mc_set_zero(gHi, 1)  // G_00 − δ_0 = 0 exactly
                        } else if usable {
                            Interval.sub(yLo, yHi, gw.lo[ij], gw.hi[ij], el, eh)
                            Interval.div(gLo, gHi, yLo, yHi, dl, dh, tmp: tmp, tmp2: aLo)
                        } else {
                            mc_set_inf(gLo, -1); mc_set_inf(gHi, 1)
                        }
                    } else {
                        mc_set(gLo, gw.lo[ij], MPFR_RNDD); mc_set(gHi, gw.hi[ij], MPFR_RNDU)
                    }
                    Interval.mul(yLo, yHi, t.lo[ij], t.hi[ij], gLo, gHi, tmp: tmp)
                    Interval.mul(t.lo[ij], t.hi[ij], yLo, yHi, e.sLo[0], e.sHi[0], tmp: tmp)
                    if hasDecay { Interval.mul(gw.lo[ij], gw.hi[ij], w.lo[ij], w.hi[ij], gLo, gHi, tmp: tmp) }
                }
            }
        }
        let zeroRows = (0..<n).filter { statusPtr.pointer[$0] == 2 }

        // Pass B, index u: row u gives dq_u; column u gives dk_u, dv_u and dL_u.
        let dq = EnclosedTensor(count: n * dk, precision: p), dkT = EnclosedTensor(count: n * dk, precision: p)
        let dvT = EnclosedTensor(count: n * dv, precision: p)
        let dL = hasDecay ? EnclosedTensor(count: n, precision: p) : nil
        parallelRows(n) { indices in
            let ws = WeightedSumWorkspace(terms: n, width: Swift.max(dk, dv), precision: p)
            let yLo = MPFRBuffer(count: n, precision: p), yHi = MPFRBuffer(count: n, precision: p)
            let gLo = MPFRBuffer(count: f, precision: p), gHi = MPFRBuffer(count: f, precision: p)
            let tm = MPFRBuffer(count: 8, precision: p)
            let x2 = MPFRBuffer(count: 1, precision: 64)
            for u in indices {
                // dq̃_u = Σ_j t_uj k̃_j + J_φ(q̃_u)ᵀ(c·e^{L_u}·∂ℓ/∂σ_u)
                let i = u, rowBase = triangleIndex(i, 0)
                encloseWeightedSums(count: i + 1, lo: { t.lo[rowBase + $0] }, hi: { t.hi[rowBase + $0] }, values: kRows,
                                    first: 0, into: dq.lo[i * dk], dq.hi[i * dk], workspace: ws, fault: fault)
                if hasState {
                    for a in 0..<f {
                        Interval.mul(gLo[a], gHi[a], gSigma.lo[i * f + a], gSigma.hi[i * f + a], ce.lo[i], ce.hi[i], tmp: tm[0])
                    }
                    let ql = dq.lo.base + i * dk, qh = dq.hi.base + i * dk, x = c.qM.base + i * dk
                    if c.spec.score == .squared {
                        // ∂φ_(a,a)/∂x_a = 2x_a, ∂φ_(a,b)/∂x_a = √2·x_b, ∂φ_(a,b)/∂x_b = √2·x_a
                        var idx = 0
                        for a in 0..<dk {
                            mc_mul_2si(x2[0], x + a, 1, MPFR_RNDN)  // exact
                            Interval.addProduct(ql + a, qh + a, gLo[idx], gHi[idx], x2[0], x2[0], t: tm[2])
                            idx += 1
                            for b in (a + 1)..<Swift.max(dk, a + 1) where b < dk {
                                Interval.mul(tm[0], tm[1], gLo[idx], gHi[idx], e.sqrt2[0], e.sqrt2[1], tmp: tm[2])
                                Interval.addProduct(ql + a, qh + a, tm[0], tm[1], x + b, x + b, t: tm[2])
                                Interval.addProduct(ql + b, qh + b, tm[0], tm[1], x + a, x + a, t: tm[2])
                                idx += 1
                            }
                        }
                    } else {
                        for a in 0..<dk {
                            mc_add(ql + a, ql + a, gLo[a], MPFR_RNDD); mc_add(qh + a, qh + a, gHi[a], MPFR_RNDU)
                        }
                    }
                }
                // dk̃_u = Σ_{i≥u} t_iu q̃_i; dv_u = Σ_{i≥u} (w_iu/D_i) dO_i
                let j = u, m = n - j
                encloseWeightedSums(count: m, lo: { t.lo[triangleIndex(j + $0, j)] }, hi: { t.hi[triangleIndex(j + $0, j)] },
                                    values: qRows, first: j, into: dkT.lo[j * dk], dkT.hi[j * dk], workspace: ws, fault: fault)
                for r in 0..<m {
                    let i = j + r, ij = triangleIndex(i, j)
                    if !isSum {
                        mc_set(yLo[r], w.lo[ij], MPFR_RNDD); mc_set(yHi[r], w.hi[ij], MPFR_RNDU)
                    } else if statusPtr.pointer[i] == 0 {
                        Interval.div(yLo[r], yHi[r], w.lo[ij], w.hi[ij], den.lo[i], den.hi[i], tmp: tm[0], tmp2: tm[1])
                    } else {
                        mc_set_inf(yLo[r], -1); mc_set_inf(yHi[r], 1)
                    }
                }
                encloseWeightedSums(count: m, lo: { yLo[$0] }, hi: { yHi[$0] }, values: dO, first: j,
                                    into: dvT.lo[j * dv], dvT.hi[j * dv], workspace: ws, fault: fault)
                // dL_u = [Σ_{j≤u} (w·dW)_uj (none)] − Σ_{i≥u} (w·dW)_iu [+ σ_uᵀ∂ℓ/∂σ_u (none)]
                guard let dL else { continue }
                let ll = dL.lo[u], lh = dL.hi[u]
                mc_set_zero(ll, 1); mc_set_zero(lh, 1)
                if !isSum {
                    for jj in 0...u {
                        let uj = triangleIndex(u, jj)
                        mc_add(ll, ll, gw.lo[uj], MPFR_RNDD); mc_add(lh, lh, gw.hi[uj], MPFR_RNDU)
                    }
                    if hasState {
                        for a in 0..<f {
                            Interval.addProduct(ll, lh, sigma.lo[u * f + a], sigma.hi[u * f + a],
                                                gSigma.lo[u * f + a], gSigma.hi[u * f + a], t: tm[2])
                        }
                    }
                }
                for i in u..<n {
                    let iu = triangleIndex(i, u)
                    mc_sub(ll, ll, gw.hi[iu], MPFR_RNDD); mc_sub(lh, lh, gw.lo[iu], MPFR_RNDU)
                }
            }
        }
        // relu-linear: ReLU′(x) = 0 for x ≤ 0 (q̃ = max(q, 0) is exactly 0 there): the gradient is exactly 0.
        if c.spec.score == .reluLinear {
            for x in 0..<(n * dk) {
                if mc_sgn(c.qM[x]) <= 0 { mc_set_zero(dq.lo[x], 1); mc_set_zero(dq.hi[x], 1) }
                if mc_sgn(c.kM[x]) <= 0 { mc_set_zero(dkT.lo[x], 1); mc_set_zero(dkT.hi[x], 1) }
            }
        }
        // da_t = Σ_{u≥t} dL_u, summed down and up. Without an initial state a_0 never enters ℓ
        // (docs/MATH.md §1.2), so where ℓ is defined (every normaliser bounded away from 0)
        // da_0 = Σ_u dL_u = 0 exactly: written as the point 0, which no enclosure of the sum could decide.
        var da: EnclosedTensor? = nil
        if let dL {
            let a = EnclosedTensor(count: n, precision: p)
            for u in stride(from: n - 1, through: 0, by: -1) {
                if u == n - 1 { mc_set(a.lo[u], dL.lo[u], MPFR_RNDD); mc_set(a.hi[u], dL.hi[u], MPFR_RNDU); continue }
                mc_add(a.lo[u], a.lo[u + 1], dL.lo[u], MPFR_RNDD); mc_add(a.hi[u], a.hi[u + 1], dL.hi[u], MPFR_RNDU)
            }
            if !hasState && n > 0 && (0..<n).allSatisfy({ statusPtr.pointer[$0] == 0 }) {
                mc_set_zero(a.lo[0], 1); mc_set_zero(a.hi[0], 1)
            }
            da = a
        }
        // Initial state: dS₀_a = Σ_i (σ_ia/D_i) dO_i, dz₀_a = −Σ_i (σ_ia/D_i) δ_i.
        var dS0: EnclosedTensor? = nil, dz0: EnclosedTensor? = nil
        if hasState {
            let s = EnclosedTensor(count: f * dv, precision: p)
            let z = isSum ? EnclosedTensor(count: f, precision: p) : nil
            parallelRows(f) { features in
                let ws = WeightedSumWorkspace(terms: n, width: dv, precision: p)
                let rLo = MPFRBuffer(count: n, precision: p), rHi = MPFRBuffer(count: n, precision: p)
                let tm = MPFRBuffer(count: 5, precision: p)
                for a in features {
                    for i in 0..<n {
                        let sl = sigma.lo[i * f + a], sh = sigma.hi[i * f + a]
                        if !isSum {
                            mc_set(rLo[i], sl, MPFR_RNDD); mc_set(rHi[i], sh, MPFR_RNDU)
                        } else if statusPtr.pointer[i] == 0 {
                            Interval.div(rLo[i], rHi[i], sl, sh, den.lo[i], den.hi[i], tmp: tm[0], tmp2: tm[1])
                        } else {
                            mc_set_inf(rLo[i], -1); mc_set_inf(rHi[i], 1)
                        }
                    }
                    encloseWeightedSums(count: n, lo: { rLo[$0] }, hi: { rHi[$0] }, values: dO, first: 0,
                                        into: s.lo[a * dv], s.hi[a * dv], workspace: ws, fault: fault)
                    if let z {
                        // Σ_i r_i δ_i into [tm3, tm4], then negated (exact) with the ends swapped.
                        mc_set_zero(tm[3], 1); mc_set_zero(tm[4], 1)
                        for i in 0..<n {
                            Interval.addProduct(tm[3], tm[4], rLo[i], rHi[i], delta.lo[i], delta.hi[i], t: tm[0])
                        }
                        mc_neg(z.lo[a], tm[4], MPFR_RNDD); mc_neg(z.hi[a], tm[3], MPFR_RNDU)
                    }
                }
            }
            dS0 = s; dz0 = z
        }
        return GradientEnclosures(dq: dq, dk: dkT, dv: dvT, dL: dL, da: da, dS0: dS0, dz0: dz0, zeroRows: zeroRows)
    }

    /// Copy of the stored-triangle `analyticSequence` (the p-bit gradient oracle).
    static func legacyAnalyticSequence(_ c: ReferenceSequence, dO: ArraySlice<Double>,
                                 decayFormula: DecayGradientFormula) -> SequenceGradientBuffers {
        let n = c.n, dk = c.dk, dv = c.dv, p = c.precision
        let isSum = c.spec.normalization == .sum
        let isExp = c.spec.score == .exponential
        let L = c.prefix
        let pairs = n * (n + 1) / 2
        let f = c.featureDim ?? 0
        let s0 = c.s0, z0 = c.z0
        let hasState = s0 != nil

        let dOM = MPFRBuffer(count: n * dv, precision: 53)
        dOM.setAll(dO)
        let w = MPFRBuffer(count: pairs, precision: p)   // w_ij = f(X_ij)·Γ_ij
        let fg = MPFRBuffer(count: pairs, precision: p)  // f'(X_ij)·Γ_ij
        let gm = MPFRBuffer(count: pairs, precision: p)  // G_ij, then dW_ij = ∂ℓ/∂w_ij
        // Γ_ij and G_ij kept on their own, only for the literal C.5 formula.
        let literal = decayFormula == .paperC5Literal && L != nil
        let gammaOnly = literal ? MPFRBuffer(count: pairs, precision: p) : nil
        let gOnly = literal ? MPFRBuffer(count: pairs, precision: p) : nil
        let sigma = hasState ? MPFRBuffer(count: n * f, precision: p) : nil   // σ_i = c·e^{L_i}·φ(q̃_i)
        let ce = hasState ? MPFRBuffer(count: n, precision: p) : nil          // c·e^{L_i}
        let gSigma = hasState ? MPFRBuffer(count: n * f, precision: p) : nil  // ∂ℓ/∂σ_i
        let den = MPFRBuffer(count: n, precision: p)    // D_i (1 for none)
        let delta = MPFRBuffer(count: n, precision: p)  // δ_i = O_i·dO_i (0 for none)
        let sqrt2 = MPFRBuffer(count: 1, precision: p + 8)
        mc_set_ui(sqrt2[0], 2, MPFR_RNDN); mc_sqrt(sqrt2[0], sqrt2[0], MPFR_RNDN)
        let cq = MPFRBuffer(count: 1, precision: p)
        c.queryConstant(cq[0])

        // Pass A, one row i at a time (rows are independent): the pairwise
        // quantities, σ_i, D_i, δ_i, dW_i· and ∂ℓ/∂σ_i.
        parallelRows(n) { rows in
            let scratch = ReferenceScratch(precision: p)
            let t = MPFRBuffer(count: 4, precision: p)
            let x = t[0], gam = t[1], tmp = t[2], yv = t[3]
            let diff = MPFRBuffer(count: 1, precision: c.decayPrecision)
            let num = MPFRBuffer(count: dv, precision: p)
            let feat = MPFRBuffer(count: Swift.max(f, 1), precision: p)
            for i in rows {
                for j in 0...i {
                    let ij = triangleIndex(i, j)
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
                        c.spec.score.applyPolynomial(tmp, x)             // f(x)
                        mc_mul(w[ij], tmp, gam, MPFR_RNDN)
                        c.spec.score.applyPolynomialDerivative(tmp, x)   // f'(x)
                        mc_mul(fg[ij], tmp, gam, MPFR_RNDN)
                    }
                    // G_ij = dO_i · v_j
                    mc_set_zero(gm[ij], 1)
                    for col in 0..<dv { mc_fma(gm[ij], dOM[i * dv + col], c.vM[j * dv + col], gm[ij], MPFR_RNDN) }
                    if let gOnly { mc_set(gOnly[ij], gm[ij], MPFR_RNDN) }
                }
                if let sigma, let ce {
                    if let L { mc_exp(tmp, L[i], MPFR_RNDN); mc_mul(ce[i], tmp, cq[0], MPFR_RNDN) } else {
                        mc_set(ce[i], cq[0], MPFR_RNDN)
                    }
                    c.features(of: c.qM, row: i, into: feat, sqrt2: sqrt2[0])
                    for a in 0..<f { mc_mul(sigma[i * f + a], feat[a], ce[i], MPFR_RNDN) }
                }
                if isSum {
                    mc_set_zero(den[i], 1); num.zero()
                    for j in 0...i {
                        let ij = triangleIndex(i, j)
                        mc_add(den[i], den[i], w[ij], MPFR_RNDN)
                        for col in 0..<dv { mc_fma(num[col], w[ij], c.vM[j * dv + col], num[col], MPFR_RNDN) }
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
                    for j in 0...i {
                        let ij = triangleIndex(i, j)
                        mc_sub(tmp, gm[ij], delta[i], MPFR_RNDN)
                        mc_div(gm[ij], tmp, den[i], MPFR_RNDN)
                    }
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
            }
        }
        let zeroRows = isSum ? (0..<n).filter { mc_zero_p(den[$0]) != 0 } : []

        // Pass B, one index t at a time: row t gives dq_t (and the row part of
        // dL_t), column t gives dv_t, dk_t (and the column part of dL_t).
        let dqB = MPFRBuffer(count: n * dk, precision: p)
        let dkB = MPFRBuffer(count: n * dk, precision: p)
        let dvB = MPFRBuffer(count: n * dv, precision: p)
        let dLB = L != nil ? MPFRBuffer(count: n, precision: p) : nil
        parallelRows(n) { indices in
            let t = MPFRBuffer(count: 3, precision: p)
            let tmp = t[0], y = t[1], e = t[2]
            let gphi = MPFRBuffer(count: Swift.max(f, 1), precision: p)
            for idx in indices {
                // Row idx: dq̃_i = s·Σ_j f'Γ_ij dW_ij k̃_j + J_φ(q̃_i)ᵀ(c·e^{L_i}·∂ℓ/∂σ_i).
                let i = idx
                for j in 0...i {
                    let ij = triangleIndex(i, j)
                    mc_mul(tmp, fg[ij], gm[ij], MPFR_RNDN)
                    mc_mul(tmp, tmp, c.scale[0], MPFR_RNDN)
                    for d in 0..<dk { mc_fma(dqB[i * dk + d], tmp, c.kM[j * dk + d], dqB[i * dk + d], MPFR_RNDN) }
                }
                if let gSigma, let ce {
                    for a in 0..<f { mc_mul(gphi[a], gSigma[i * f + a], ce[i], MPFR_RNDN) }
                    featureVJP(c.spec.score, x: c.qM, row: i, dim: dk, cotangent: gphi, into: dqB, sqrt2: sqrt2[0],
                               tmp: tmp)
                }
                // Column idx: dv_j = Σ_i (w_ij/D_i)·dO_i, dk̃_j = s·Σ_i f'Γ_ij dW_ij q̃_i.
                let j = idx
                for i in j..<n {
                    let ij = triangleIndex(i, j)
                    if isSum { mc_div(y, w[ij], den[i], MPFR_RNDN) } else { mc_set(y, w[ij], MPFR_RNDN) }
                    for col in 0..<dv { mc_fma(dvB[j * dv + col], y, dOM[i * dv + col], dvB[j * dv + col], MPFR_RNDN) }
                    mc_mul(tmp, fg[ij], gm[ij], MPFR_RNDN)
                    mc_mul(tmp, tmp, c.scale[0], MPFR_RNDN)
                    for d in 0..<dk { mc_fma(dkB[j * dk + d], tmp, c.qM[i * dk + d], dkB[j * dk + d], MPFR_RNDN) }
                }
                // dL_t: + row t, − column t, of the matrix of ∂ℓ/∂(L_i − L_j) contributions.
                guard let dL = dLB else { continue }
                let tt = idx
                let entry: (Int, Int) -> Void
                switch decayFormula {
                case .corrected:
                    // w_ij·dW_ij (its row sums vanish under sum normalisation, state included)
                    entry = { i, j in mc_mul(e, w[triangleIndex(i, j)], gm[triangleIndex(i, j)], MPFR_RNDN) }
                case .paperC5Literal:
                    // Y_ij·(Γ_ij·G_ij − δ_i): C.5's G' = G ⊙ Γ ⊙ M, decay counted twice
                    entry = { i, j in
                        let ij = triangleIndex(i, j)
                        mc_mul(e, gOnly![ij], gammaOnly![ij], MPFR_RNDN)
                        mc_sub(e, e, delta[i], MPFR_RNDN)
                        mc_mul(e, e, w[ij], MPFR_RNDN)
                        mc_div(e, e, den[i], MPFR_RNDN)
                    }
                }
                mc_set_zero(dL[tt], 1)
                if !(isSum && decayFormula == .corrected) {
                    for j in 0...tt { entry(tt, j); mc_add(dL[tt], dL[tt], e, MPFR_RNDN) }
                }
                for i in tt..<n { entry(i, tt); mc_sub(dL[tt], dL[tt], e, MPFR_RNDN) }
                if !isSum, decayFormula == .corrected, let sigma, let gSigma {
                    // state term of an un-normalised row: ∂/∂L_t of c·e^{L_t}·φ(q̃_t)ᵀS₀dO_t
                    for a in 0..<f { mc_fma(dL[tt], sigma[tt * f + a], gSigma[tt * f + a], dL[tt], MPFR_RNDN) }
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
}
