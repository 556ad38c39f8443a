import CMPFR
import Dispatch
import MambaPrecision
import MambaVariants

/// Certified gradients of `ℓ = Σ O ⊙ dO` (docs/MATH.md §5, Proofs/T7): every
/// tensor of `ReferenceGradients`, each element proven correctly rounded or
/// listed as undecided.
public struct CertifiedGradients: Sendable, GradientTensors {
    public let dq: CertifiedOutput, dk: CertifiedOutput, dv: CertifiedOutput
    /// With respect to the prefix sums and the per-step decays (decayed cores).
    public let dL: CertifiedOutput?, da: CertifiedOutput?
    /// With respect to the initial state (when one was given).
    public let dInitialState: CertifiedOutput?, dInitialStateZ: CertifiedOutput?

    /// E.g. `gradients certified: all 1600 elements correctly rounded (Float64): dq 512, dk 512, dv 512, dL 32, da 32`.
    public var summary: String { CertifiedOutput.summary(named, what: "gradients") }

    /// The certified values as the verdict's oracle: each decided element is
    /// the lower end of its enclosure (within the enclosure's width of the
    /// exact value: ≈ 2^−p relative from the MPFR passes, ≈ 2^−90 of the
    /// summed terms' magnitudes from the double-double first attempt, Proofs/T7
    /// step 8; always below one Float64 ulp); an undecided one is NaN (judged as
    /// undefined, never guessed). `zeroDenominatorRows` lists the rows whose
    /// normaliser is exactly 0.
    public func referenceGradients(zeroDenominatorRows: [Int]) -> ReferenceGradients {
        func v(_ c: CertifiedOutput) -> [BigFloat] { c.judgedValues }
        return ReferenceGradients(precision: dq.initialPrecision, dq: v(dq), dk: v(dk), dv: v(dv), dL: dL.map(v),
                                  da: da.map(v), dInitialState: dInitialState.map(v),
                                  dInitialStateZ: dInitialStateZ.map(v), zeroDenominatorRows: zeroDenominatorRows)
    }
}

extension Reference {
    /// Certified gradients (docs/MATH.md §5) with Ziv's loop: one unit per
    /// (batch, head) sequence, since every gradient of a sequence depends on
    /// all its rows (through `D_i`, `δ_i`); a sequence with an undecided
    /// element is enclosed again at twice the precision, up to `maxPrecision`.
    /// At `p ≤ 128` a double-double first attempt (`fastEnclosedGradients`,
    /// Proofs/T7 step 8) comes before the MPFR passes, which take a sequence it
    /// declines or leaves with an undecided element.
    ///
    /// The enclosures follow `Reference.gradients` formula by formula
    /// (Proofs/T7, "Gradients"): the pairwise `w_ij`, `f′(X_ij)Γ_ij` and
    /// `G_ij = dO_i·v_j` (an exact integer dot product, or directed `fma`
    /// chains) by interval operations; `D_i`, `δ_i = (Σ_j w_ij G_ij + σ_iᵀS₀dO_i)/D_i`
    /// and `dW_ij = (G_ij − δ_i)/D_i` likewise; the matrix products
    /// `dQ̃ = s·dX·K̃`, `dK̃ = s·dXᵀQ̃`, `dV = (w/D)ᵀdO` and `dS₀ = Σ_i (σ_i/D_i)dO_iᵀ`
    /// by `encloseWeightedSums` (midpoint–radius over exact rows of `K̃`, `Q̃`,
    /// `dO`); `dL`, `da`, `dz₀` by sums rounded down and up. A row whose
    /// normaliser is exactly 0 leaves the elements depending on it unbounded:
    /// they are reported as `zeroDenominator` (its row in `zeroDenominatorRows`).
    public static func certifiedGradients(_ g: GradientProblem, precision: Int = BigFloat.defaultPrecision,
                                          maxPrecision: Int = 4096, decimalDigits: Int? = nil) throws
        -> (gradients: CertifiedGradients, zeroDenominatorRows: [Int]) {
        try certifiedGradients(g, precision: precision, maxPrecision: maxPrecision, decimalDigits: decimalDigits,
                               fault: .none)
    }

    /// - Parameter fastPath: try the double-double pass first (tests turn it off to compare).
    static func certifiedGradients(_ g: GradientProblem, precision: Int, maxPrecision: Int, decimalDigits: Int?,
                                   fault: EnclosureFault, fastPath: Bool = true) throws
        -> (gradients: CertifiedGradients, zeroDenominatorRows: [Int]) {
        if let m = g.validationError() { throw ReferenceError.invalidProblem(m) }
        precondition(precision >= 64 && maxPrecision >= precision, "precision must be >= 64 and <= maxPrecision")
        let p = g.core, n = p.length, dk = p.keyDim, dv = p.valueDim, f = p.featureDim ?? 0
        let hasState = p.initialState != nil, sum = p.spec.normalization == .sum
        func builder(_ count: Int) -> CertifiedBuilder? { CertifiedBuilder(count: count, decimalDigits: decimalDigits) }
        var bq = builder(p.sequences * n * dk), bk = builder(p.sequences * n * dk), bv = builder(p.sequences * n * dv)
        var bL = p.spec.hasDecay ? builder(p.sequences * n) : nil, ba = bL
        var bS = hasState ? builder(p.sequences * f * dv) : nil
        var bZ = hasState && sum ? builder(p.sequences * f) : nil
        var finalPrecision = precision, raised = 0
        var zeroRows: [Int] = []
        // Records every tensor of a sequence's enclosures at `prec`; true when an element is left to a
        // higher precision. With a zero normaliser, unbounded elements are hopeless.
        func record(_ enc: GradientEnclosures, seq: Int, prec: Int, last: Bool) -> Bool {
            let zero = !enc.zeroRows.isEmpty
            var again = false
            func put(_ b: inout CertifiedBuilder?, _ x: EnclosedTensor?) {
                guard b != nil, let x else { return }
                let first = seq * x.lo.count
                again = b!.recordUnit(first ..< first + x.lo.count, lo: { x.lo[$0 - first] }, hi: { x.hi[$0 - first] },
                                      precision: prec, last: last,
                                      hopeless: { zero && (mc_number_p(x.lo[$0 - first]) == 0 || mc_number_p(x.hi[$0 - first]) == 0) })
                    || again
            }
            put(&bq, enc.dq); put(&bk, enc.dk); put(&bv, enc.dv); put(&bL, enc.dL); put(&ba, enc.da)
            put(&bS, enc.dS0); put(&bZ, enc.dz0)
            return again
        }
        // The fast double-double attempt (Proofs/T7, step 8) at the default precision, as the forward's
        // (step 6); a planted fault of the MPFR passes turns it off so that those passes see every element.
        let fast = fastPath && precision <= 128 && (decimalDigits ?? 0) <= 17 && (fault == .none || fault == .fastBoundDropped)
        for seq in 0..<p.sequences {
            let dO = ValueRows(g.dO[seq * n * dv ..< (seq + 1) * n * dv], width: dv)
            if fast, let enc = fastEnclosedGradients(EnclosedSequence(problem: p, sequence: seq, precision: precision),
                                                     dO: dO, fault: fault),
               !record(enc, seq: seq, prec: precision, last: false) {
                continue  // every element decided; a sequence with one left goes through the MPFR passes whole
            }
            var seqZeroRows: [Int] = []
            let r = ZivLoop.run(units: [seq], precision: precision, maxPrecision: maxPrecision) { _, prec, last in
                let e = EnclosedSequence(problem: p, sequence: seq, precision: prec)
                let enc = enclosedGradients(e, dO: dO, fault: fault)
                seqZeroRows = enc.zeroRows
                return record(enc, seq: seq, prec: prec, last: last) ? [seq] : []
            }
            zeroRows += seqZeroRows.map { seq * n + $0 }
            finalPrecision = Swift.max(finalPrecision, r.finalPrecision); raised += r.raised
        }
        func done(_ b: CertifiedBuilder) -> CertifiedOutput {
            b.build(initialPrecision: precision, finalPrecision: finalPrecision, raised: raised)
        }
        let out = CertifiedGradients(dq: done(bq!), dk: done(bk!), dv: done(bv!), dL: bL.map(done), da: ba.map(done),
                                     dInitialState: bS.map(done), dInitialStateZ: bZ.map(done))
        return (out, zeroRows)
    }

    /// Lower and upper ends of one gradient tensor of a sequence.
    struct EnclosedTensor: @unchecked Sendable {
        let lo: MPFRBuffer, hi: MPFRBuffer
        init(count: Int, precision: Int) {
            lo = MPFRBuffer(count: count, precision: precision); hi = MPFRBuffer(count: count, precision: precision)
        }
    }

    struct GradientEnclosures: @unchecked Sendable {
        let dq: EnclosedTensor, dk: EnclosedTensor, dv: EnclosedTensor
        let dL: EnclosedTensor?, da: EnclosedTensor?, dS0: EnclosedTensor?, dz0: EnclosedTensor?
        /// Rows whose normaliser is exactly 0.
        let zeroRows: [Int]
    }

    /// The pair terms of one sequence's certified gradients, recomputed by
    /// each sweep that needs them instead of stored (issue #12: three
    /// lower-triangular matrices of enclosures were `6·N(N+1)/2` MPFR numbers).
    /// One per worker: it owns the scratch numbers, always at the same
    /// precisions, so that a pair `(i, j)` gets bit-identical enclosures in
    /// the row sweep and in the column sweep.
    final class CertifiedPairTerms {
        let e: EnclosedSequence, c: ReferenceSequence, dO: ValueRows, values: ValueRows
        let fault: EnclosureFault
        let isSum: Bool, isExp: Bool, hasState: Bool, hasDecay: Bool
        let scratch: ReferenceScratch
        /// `x_ij` at `max(p, 128)` bits (the exact dot product rounded once).
        let xb: MPFRBuffer
        /// Working temporaries at p: 0–1 y, 2–3 g, 4 tmp, 5–6 a, 7–9 addProduct/feature scratch.
        let tm: MPFRBuffer
        /// Decay differences at the decay precision.
        let d: MPFRBuffer

        init(_ e: EnclosedSequence, dO: ValueRows, fault: EnclosureFault) {
            let c = e.base, p = c.precision
            self.e = e; self.c = c; self.dO = dO; values = e.values; self.fault = fault
            isSum = c.spec.normalization == .sum; isExp = c.spec.score == .exponential
            hasState = e.s0 != nil; hasDecay = e.lLo != nil
            scratch = ReferenceScratch(precision: p)
            xb = MPFRBuffer(count: 2, precision: Swift.max(p, 128))
            tm = MPFRBuffer(count: 12, precision: p)
            d = MPFRBuffer(count: 4, precision: c.decayPrecision)
        }

        /// `w_ij ∈ [wl, wh]`, `f′(X_ij)Γ_ij ∈ [fl, fh]` and `G_ij = dO_i·v_j ∈ [gl, gh]`.
        @inline(__always)
        func terms(_ i: Int, _ j: Int, _ wl: MPFRPointer, _ wh: MPFRPointer, _ fl: MPFRPointer, _ fh: MPFRPointer,
                   _ gl: MPFRPointer, _ gh: MPFRPointer) {
            let xLo = xb[0], xHi = xb[1], yLo = tm[0], yHi = tm[1], gLo = tm[2], gHi = tm[3], tmp = tm[4]
            let aLo = tm[5], aHi = tm[6]
            e.dot(xLo, xHi, i, j, scratch)
            Interval.mul(yLo, yHi, e.sLo[0], e.sHi[0], xLo, xHi, tmp: tmp)  // X_ij = s·x_ij
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
            EnclosedSequence.dot(gl, gh, dO.dotRow(i), values.dotRow(j), dO.mpfr[i * c.dv], c.vM[j * c.dv],
                                 length: c.dv, scratch)
        }

        /// From the terms of `(i, j)` and row i's `D_i ∈ [dl, dh]`, `δ_i ∈ [el, eh]`
        /// (`usable`: `D_i` bounded away from 0): `dW_ij = (G_ij − δ_i)/D_i` (sum)
        /// or `G_ij` (none), then `[fl, fh] ← s·f′Γ_ij·dW_ij` (= t_ij) and, with a
        /// decay, `[gl, gh] ← w_ij·dW_ij`.
        @inline(__always)
        func finish(_ i: Int, _ wl: MPFRPointer, _ wh: MPFRPointer, _ fl: MPFRPointer, _ fh: MPFRPointer,
                    _ gl: MPFRPointer, _ gh: MPFRPointer, den dl: MPFRPointer, _ dh: MPFRPointer,
                    delta el: MPFRPointer, _ eh: MPFRPointer, usable: Bool) {
            let yLo = tm[0], yHi = tm[1], gLo = tm[2], gHi = tm[3], tmp = tm[4], aLo = tm[5]
            if isSum {
                if usable && i == 0 && !hasState {
                    mc_set_zero(gLo, 1); mc_set_zero(gHi, 1)  // G_00 − δ_0 = 0 exactly
                } else if usable {
                    Interval.sub(yLo, yHi, gl, gh, el, eh)
                    Interval.div(gLo, gHi, yLo, yHi, dl, dh, tmp: tmp, tmp2: aLo)
                } else {
                    mc_set_inf(gLo, -1); mc_set_inf(gHi, 1)
                }
            } else {
                mc_set(gLo, gl, MPFR_RNDD); mc_set(gHi, gh, MPFR_RNDU)
            }
            Interval.mul(yLo, yHi, fl, fh, gLo, gHi, tmp: tmp)
            Interval.mul(fl, fh, yLo, yHi, e.sLo[0], e.sHi[0], tmp: tmp)
            if hasDecay { Interval.mul(gl, gh, wl, wh, gLo, gHi, tmp: tmp) }
        }
    }

    /// Enclosures of every gradient of one sequence at its precision p, in
    /// two sweeps that recompute the pair terms (`CertifiedPairTerms`) rather
    /// than store them: memory `O(N·(dk + dv) + N·F)` numbers, not `O(N²)`.
    ///
    /// Row sweep, rows i: `w_i·`, `f′Γ_i·`, `G_i·` into per-worker rows; `σ_i`,
    /// `D_i`, `δ_i`, `∂ℓ/∂σ_i`; `t_i·`, `(w·dW)_i·`; then `dq_i` and the row
    /// part of `dL_i`. Column sweep, columns j: the same terms of `(i, j)`,
    /// `i ≥ j`, with the stored `D_i`, `δ_i`; `dk_j`, `dv_j` and the column part
    /// of `dL_j`. Every element goes through the same operations in the same
    /// order as in the stored-triangle algorithm, so the enclosures are
    /// bit-identical to it (`GradientSweepIdentityTests`).
    static func enclosedGradients(_ e: EnclosedSequence, dO: ValueRows, fault: EnclosureFault) -> GradientEnclosures {
        let c = e.base
        let n = c.n, dk = c.dk, dv = c.dv, p = c.precision
        let isSum = c.spec.normalization == .sum
        let f = c.featureDim ?? 0
        let hasState = e.s0 != nil, hasDecay = e.lLo != nil
        let den = EnclosedTensor(count: n, precision: p), delta = EnclosedTensor(count: n, precision: p)
        let sigma = EnclosedTensor(count: hasState ? n * f : 0, precision: p)   // σ_ia = c·e^{L_i}·φ_a(q̃_i)
        let status = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: Swift.max(n, 1))
        status.initialize(repeating: 0)
        defer { status.deallocate() }
        let statusPtr = UnsafeMutableSendable(status.baseAddress!)
        let qRows = ValueRows(mpfr: c.qM, abs: c.qAbs, integer: c.qRows, width: dk)
        let kRows = ValueRows(mpfr: c.kM, abs: c.kAbs, integer: c.kRows, width: dk)
        let dq = EnclosedTensor(count: n * dk, precision: p), dkT = EnclosedTensor(count: n * dk, precision: p)
        let dvT = EnclosedTensor(count: n * dv, precision: p)
        let dL = hasDecay ? EnclosedTensor(count: n, precision: p) : nil

        // Row sweep, rows i: D_i, δ_i, σ_i, dq_i and the row part of dL_i.
        parallelRows(n) { rows in
            let pt = CertifiedPairTerms(e, dO: dO, fault: fault)
            let scratch = pt.scratch, tm = pt.tm
            let yLo = tm[0], yHi = tm[1], tmp = tm[4], aLo = tm[5], aHi = tm[6], s3 = tm[7]
            // The row's pair terms: w_ij; f′Γ_ij, then t_ij; G_ij, then (w·dW)_ij.
            let w = EnclosedTensor(count: n, precision: p), t = EnclosedTensor(count: n, precision: p)
            let gw = EnclosedTensor(count: n, precision: p)
            let phiLo = MPFRBuffer(count: f, precision: p), phiHi = MPFRBuffer(count: f, precision: p)
            let hLo = MPFRBuffer(count: f, precision: p), hHi = MPFRBuffer(count: f, precision: p)
            let acc = MPFRBuffer(count: 2, precision: p)
            let ce = EnclosedTensor(count: 1, precision: p)                        // c·e^{L_i}
            let gSigma = EnclosedTensor(count: f, precision: p)                    // ∂ℓ/∂σ_i·
            let gcLo = MPFRBuffer(count: f, precision: p), gcHi = MPFRBuffer(count: f, precision: p)
            let tb = MPFRBuffer(count: 8, precision: p)
            let x2 = MPFRBuffer(count: 1, precision: 64)
            let ws = WeightedSumWorkspace(terms: n, width: Swift.max(dk, dv), precision: p)
            for i in rows {
                for j in 0...i { pt.terms(i, j, w.lo[j], w.hi[j], t.lo[j], t.hi[j], gw.lo[j], gw.hi[j]) }
                if hasState, let s0 = e.s0 {
                    // c·e^{L_i}, σ_i = c·e^{L_i}·φ(q̃_i), h_ia = S₀_a·dO_i
                    if let fLo = e.fLo, let fHi = e.fHi {
                        Interval.mul(ce.lo[0], ce.hi[0], e.queryConstant[0], e.queryConstant[1], fLo[i], fHi[i], tmp: tmp)
                    } else {
                        mc_set(ce.lo[0], e.queryConstant[0], MPFR_RNDD); mc_set(ce.hi[0], e.queryConstant[1], MPFR_RNDU)
                    }
                    Interval.features(c.spec.score, dim: dk, x: c.qM[i * dk], lo: phiLo[0], hi: phiHi[0],
                                      sqrt2: e.sqrt2[0], e.sqrt2[1], t: s3)
                    for a in 0..<f {
                        Interval.mul(sigma.lo[i * f + a], sigma.hi[i * f + a], phiLo[a], phiHi[a], ce.lo[0], ce.hi[0], tmp: tmp)
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
                        mc_add(dl, dl, w.lo[j], MPFR_RNDD); mc_add(dh, dh, w.hi[j], MPFR_RNDU)
                        Interval.addProduct(acc[0], acc[1], w.lo[j], w.hi[j], gw.lo[j], gw.hi[j], t: s3)
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
                        let gl = gSigma.lo[a], gh = gSigma.hi[a]
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
                    pt.finish(i, w.lo[j], w.hi[j], t.lo[j], t.hi[j], gw.lo[j], gw.hi[j], den: dl, dh, delta: el, eh,
                              usable: usable)
                }
                // dq̃_i = Σ_j t_ij k̃_j + J_φ(q̃_i)ᵀ(c·e^{L_i}·∂ℓ/∂σ_i)
                encloseWeightedSums(count: i + 1, lo: { t.lo[$0] }, hi: { t.hi[$0] }, values: kRows,
                                    first: 0, into: dq.lo[i * dk], dq.hi[i * dk], workspace: ws, fault: fault)
                if hasState {
                    for a in 0..<f {
                        Interval.mul(gcLo[a], gcHi[a], gSigma.lo[a], gSigma.hi[a], ce.lo[0], ce.hi[0], tmp: tb[0])
                    }
                    let ql = dq.lo.base + i * dk, qh = dq.hi.base + i * dk, x = c.qM.base + i * dk
                    if c.spec.score == .squared {
                        // ∂φ_(a,a)/∂x_a = 2x_a, ∂φ_(a,b)/∂x_a = √2·x_b, ∂φ_(a,b)/∂x_b = √2·x_a
                        var idx = 0
                        for a in 0..<dk {
                            mc_mul_2si(x2[0], x + a, 1, MPFR_RNDN)  // exact
                            Interval.addProduct(ql + a, qh + a, gcLo[idx], gcHi[idx], x2[0], x2[0], t: tb[2])
                            idx += 1
                            for b in (a + 1)..<Swift.max(dk, a + 1) where b < dk {
                                Interval.mul(tb[0], tb[1], gcLo[idx], gcHi[idx], e.sqrt2[0], e.sqrt2[1], tmp: tb[2])
                                Interval.addProduct(ql + a, qh + a, tb[0], tb[1], x + b, x + b, t: tb[2])
                                Interval.addProduct(ql + b, qh + b, tb[0], tb[1], x + a, x + a, t: tb[2])
                                idx += 1
                            }
                        }
                    } else {
                        for a in 0..<dk {
                            mc_add(ql + a, ql + a, gcLo[a], MPFR_RNDD); mc_add(qh + a, qh + a, gcHi[a], MPFR_RNDU)
                        }
                    }
                }
                // dL_i, row part: Σ_{j≤i} (w·dW)_ij [+ σ_iᵀ∂ℓ/∂σ_i] (none; sum-normalised rows add nothing)
                guard let dL else { continue }
                let ll = dL.lo[i], lh = dL.hi[i]
                mc_set_zero(ll, 1); mc_set_zero(lh, 1)
                if !isSum {
                    for j in 0...i { mc_add(ll, ll, gw.lo[j], MPFR_RNDD); mc_add(lh, lh, gw.hi[j], MPFR_RNDU) }
                    if hasState {
                        for a in 0..<f {
                            Interval.addProduct(ll, lh, sigma.lo[i * f + a], sigma.hi[i * f + a],
                                                gSigma.lo[a], gSigma.hi[a], t: tb[2])
                        }
                    }
                }
            }
        }
        let zeroRows = (0..<n).filter { statusPtr.pointer[$0] == 2 }

        // Column sweep, columns j: dk_j, dv_j and the column part of dL_j.
        parallelRows(n) { columns in
            let pt = CertifiedPairTerms(e, dO: dO, fault: fault)
            let w = EnclosedTensor(count: n, precision: p), t = EnclosedTensor(count: n, precision: p)
            let gw = EnclosedTensor(count: n, precision: p)
            let yLo = MPFRBuffer(count: n, precision: p), yHi = MPFRBuffer(count: n, precision: p)
            let tm = MPFRBuffer(count: 8, precision: p)
            let ws = WeightedSumWorkspace(terms: n, width: Swift.max(dk, dv), precision: p)
            for j in columns {
                let m = n - j
                for r in 0..<m {
                    let i = j + r
                    pt.terms(i, j, w.lo[r], w.hi[r], t.lo[r], t.hi[r], gw.lo[r], gw.hi[r])
                    pt.finish(i, w.lo[r], w.hi[r], t.lo[r], t.hi[r], gw.lo[r], gw.hi[r], den: den.lo[i], den.hi[i],
                              delta: delta.lo[i], delta.hi[i], usable: statusPtr.pointer[i] == 0)
                }
                // dk̃_j = Σ_{i≥j} t_ij q̃_i; dv_j = Σ_{i≥j} (w_ij/D_i) dO_i
                encloseWeightedSums(count: m, lo: { t.lo[$0] }, hi: { t.hi[$0] }, values: qRows, first: j,
                                    into: dkT.lo[j * dk], dkT.hi[j * dk], workspace: ws, fault: fault)
                for r in 0..<m {
                    let i = j + r
                    if !isSum {
                        mc_set(yLo[r], w.lo[r], MPFR_RNDD); mc_set(yHi[r], w.hi[r], MPFR_RNDU)
                    } else if statusPtr.pointer[i] == 0 {
                        Interval.div(yLo[r], yHi[r], w.lo[r], w.hi[r], den.lo[i], den.hi[i], tmp: tm[0], tmp2: tm[1])
                    } else {
                        mc_set_inf(yLo[r], -1); mc_set_inf(yHi[r], 1)
                    }
                }
                encloseWeightedSums(count: m, lo: { yLo[$0] }, hi: { yHi[$0] }, values: dO, first: j,
                                    into: dvT.lo[j * dv], dvT.hi[j * dv], workspace: ws, fault: fault)
                // dL_j −= Σ_{i≥j} (w·dW)_ij
                guard let dL else { continue }
                let ll = dL.lo[j], lh = dL.hi[j]
                for r in 0..<m { mc_sub(ll, ll, gw.hi[r], MPFR_RNDD); mc_sub(lh, lh, gw.lo[r], MPFR_RNDU) }
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
}
