import CMPFR
import Dispatch
import MambaPrecision
import MambaVariants

/// The arbitrary-precision oracle (docs/MATH.md §1), in three forms that must agree.
///
/// Every form computes `y_i = Σ_{j≤i} f(s q_i·k_j) Γ_ij v_j` (optionally
/// divided by `Σ_{j≤i} f(s q_i·k_j) Γ_ij`) plus the initial-state term
/// `c·exp(L_i)·φ(q_i)ᵀS₀` (and `c·exp(L_i)·φ(q_i)ᵀz₀` in the normaliser),
/// with every MPFR operation correctly rounded to `precision` bits.
public enum Reference {}

extension Reference {
    /// The quadratic (masked-matrix) form straight from docs/MATH.md §1.
    ///
    /// Dot products `q_i·k_j` of Float32/Float16/bfloat16 inputs are computed
    /// exactly (integer arithmetic) and rounded once. The decay is factored as
    /// `Γ_ij = exp(L_i)·exp(−L_j)` with both factors at `p + 64` bits: MPFR's
    /// exponent range cannot overflow, and each factor carries relative error
    /// ≤ 2^−(p+64)·(1+|L|), so `Γ_ij` keeps p bits for |L| < 2^60 (see
    /// Proofs/T7-oracle-accuracy.md). For sum normalisation `exp(L_i)` cancels
    /// and is not applied. Prefix sums beyond `ReferenceSequence.factoredDecayLimit`
    /// (e.g. one step of log-decay −10^9 or −10^30) would push `exp(±L)` out of
    /// MPFR's exponent range; such sequences use `Γ_ij = exp(L_i − L_j)` per pair
    /// instead (`ReferenceSequence.pairwiseDecay`), exact to the same bound and
    /// underflowing to 0 where the past is forgotten.
    ///
    /// - Parameter finalState: also compute the final state (cost `N·F·dv`).
    public static func quadratic(_ p: CoreProblem, precision: Int = BigFloat.defaultPrecision,
                                 finalState: Bool = false) throws -> ReferenceOutput {
        if let m = p.validationError() { throw ReferenceError.invalidProblem(m) }
        let n = p.length, dv = p.valueDim
        var o = [BigFloat](); o.reserveCapacity(p.sequences * n * dv)
        var den: [BigFloat]? = p.spec.normalization == .sum ? [] : nil
        var mag = [Double](); mag.reserveCapacity(p.sequences * n * dv)
        var accMag = [Double](); accMag.reserveCapacity(p.sequences * n * dv)
        var decMag = [Double](); decMag.reserveCapacity(p.sequences * n * dv)
        var fs: [BigFloat]? = nil, fz: [BigFloat]? = nil
        for seq in 0..<p.sequences {
            let ctx = ReferenceSequence(problem: p, sequence: seq, precision: precision)
            let rows = quadraticRows(ctx)
            o += rows.o.values()
            mag += rows.magnitude
            accMag += rows.accumulationMagnitude
            decMag += rows.decayMagnitude
            if den != nil { den! += rows.den.values() }
            if finalState, let st = quadraticFinalState(ctx) {
                fs = (fs ?? []) + st.s.values()
                if let z = st.z { fz = (fz ?? []) + z.values() }
            }
        }
        return ReferenceOutput(precision: precision, o: o, denominators: den, finalStateS: fs, finalStateZ: fz,
                               magnitude: mag, accumulationMagnitude: accMag, decayMagnitude: decMag)
    }

    /// The p-bit oracle's magnitudes (`magnitude`, `accumulationMagnitude`,
    /// `decayMagnitude`), normalisers and, when asked, final state, with `o`
    /// taken from a certified result (`CertifiedOutput.judgedValues`) instead
    /// of being computed again: the numerator sums `Σ_j w_ij v_jc`, the bulk
    /// of `quadratic`'s work, are skipped for every row whose outputs are all
    /// certified, and `|y|` in the sum-normalised magnitudes is the certified
    /// (correctly rounded) value. Rows with an undecided element are evaluated
    /// in full, exactly as by `quadratic`. The weights, normalisers and every
    /// magnitude are formed by the same operations as in `quadratic`; the only
    /// difference is that `|y|` is the correctly rounded value instead of the
    /// p-bit value rounded to Double (the two differ only where the p-bit
    /// value's own error, ≈ 2^−p relative, crosses a Float64 rounding boundary).
    public static func quadraticMagnitudes(_ p: CoreProblem, precision: Int = BigFloat.defaultPrecision,
                                           outputs cert: CertifiedOutput, finalState: Bool = false) throws -> ReferenceOutput {
        try quadraticMagnitudes(p, precision: precision, outputs: cert, finalState: finalState, fault: .none)
    }

    /// - Parameter fault: a planted fault of the double-double weights (tests).
    static func quadraticMagnitudes(_ p: CoreProblem, precision: Int, outputs cert: CertifiedOutput, finalState: Bool,
                                    fault: EnclosureFault) throws -> ReferenceOutput {
        if let m = p.validationError() { throw ReferenceError.invalidProblem(m) }
        let n = p.length, dv = p.valueDim
        precondition(cert.o.count == p.sequences * n * dv, "certified outputs of another problem")
        var den: [BigFloat]? = p.spec.normalization == .sum ? [] : nil
        var mag = [Double](), accMag = [Double](), decMag = [Double]()
        var fs: [BigFloat]? = nil, fz: [BigFloat]? = nil
        for seq in 0..<p.sequences {
            let ctx = ReferenceSequence(problem: p, sequence: seq, precision: precision)
            let rows = quadraticRows(ctx, outputs: Array(cert.o[seq * n * dv ..< (seq + 1) * n * dv]), fault: fault)
            mag += rows.magnitude
            accMag += rows.accumulationMagnitude
            decMag += rows.decayMagnitude
            if den != nil { den! += rows.den.values() }
            if finalState, let st = quadraticFinalState(ctx) {
                fs = (fs ?? []) + st.s.values()
                if let z = st.z { fz = (fz ?? []) + z.values() }
            }
        }
        return ReferenceOutput(precision: precision, o: cert.judgedValues, denominators: den, finalStateS: fs,
                               finalStateZ: fz, magnitude: mag, accumulationMagnitude: accMag, decayMagnitude: decMag)
    }

    struct RowResults: @unchecked Sendable {
        let o: MPFRBuffer, den: MPFRBuffer
        let magnitude: [Double]
        let accumulationMagnitude: [Double]
        let decayMagnitude: [Double]
    }

    /// - Parameter outputs: certified outputs of this sequence (`n·dv`, NaN where
    ///   undecided), or nil. Given, a row whose outputs are all decided skips
    ///   the numerator (its `o` is left 0) and the magnitudes take `|y|` from
    ///   them (`quadraticMagnitudes`).
    ///   Such rows take their weights and normaliser as Float64 values from
    ///   double-double arithmetic where that decides them (`FastMagnitudeWeights`,
    ///   Proofs/T7, step 7: the same bits as the MPFR weights); their reported
    ///   normaliser is then that Float64 value, the p-bit one rounded.
    static func quadraticRows(_ c: ReferenceSequence, outputs: [Double]? = nil, fault: EnclosureFault = .none) -> RowResults {
        let n = c.n, dv = c.dv, p = c.precision
        let out = MPFRBuffer(count: n * dv, precision: p)
        let den = MPFRBuffer(count: n, precision: p)
        let magnitude = UnsafeMutableBufferPointer<Double>.allocate(capacity: n * dv)
        magnitude.initialize(repeating: 0)
        defer { magnitude.deallocate() }
        let accumulation = UnsafeMutableBufferPointer<Double>.allocate(capacity: n * dv)
        accumulation.initialize(repeating: 0)
        defer { accumulation.deallocate() }
        let accPtr = UnsafeMutableSendable(accumulation.baseAddress!)
        let decay = UnsafeMutableBufferPointer<Double>.allocate(capacity: n * dv)
        decay.initialize(repeating: 0)
        defer { decay.deallocate() }
        let decPtr = UnsafeMutableSendable(decay.baseAddress!)
        // exp(L_i), exp(−L_j)
        let (eL, eNegL) = decayFactors(c)
        // Fixed-point accumulation (FixedPointAccumulator) needs ≤ 128-bit
        // weights and exact integer rows of V; otherwise p-bit MPFR sums.
        let dk = c.dk, s = c.scaleValue
        let ld: [Double] = c.prefix.map { L in (0..<n).map { mc_get_d(L[$0], MPFR_RNDN) } } ?? []
        // Per-pair decay (huge prefix sums): Γ_ij = exp(L_i − L_j) from MPFR, and
        // the magnitudes take Γ and |L_i − L_j| from it too (a Double difference
        // of two prefix sums ~10^30 would be noise).
        let pairwise = c.pairwiseDecay && c.prefix != nil
        let fixedPoint = p <= 128 && c.vRows.allSatisfy { $0 != nil }
        let workers = Swift.max(1, Swift.min(n, 2 * ProcessInfoLite.activeProcessorCount))
        // The magnitude sums in SIMD lanes, each lane the same Double operations in the
        // same order as one scalar sum: |v| rows padded to `chunks` SIMD4s (one column a
        // lane), |k| transposed in blocks of 8 rows (one row j a lane of Σ_d |q_id||k_jd|).
        let chunks = (dv + 3) / 4
        var vAbs4 = [SIMD4<Double>](repeating: .zero, count: n * chunks)
        for r in 0..<n { for col in 0..<dv { vAbs4[r * chunks + col / 4][col % 4] = c.vAbs[r * dv + col] } }
        let blocks = (n + 7) / 8
        var kAbsT = [SIMD8<Double>](repeating: .zero, count: blocks * dk)
        for r in 0..<n { for d in 0..<dk { kAbsT[(r / 8) * dk + d][r % 8] = c.kAbs[r * dk + d] } }
        let va4 = vAbs4, kT = kAbsT
        let fastWeights = outputs == nil ? nil : FastMagnitudeWeights(c, eL: eL, eNegL: eNegL, fault: fault)
        let magBase = magnitude.baseAddress!
        let magPtr = UnsafeMutableSendable(magBase)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let scratch = ReferenceScratch(precision: p)
            let t = MPFRBuffer(count: 6, precision: p)
            let num = MPFRBuffer(count: dv, precision: p)
            let exact = MPFRBuffer(count: 1, precision: p + 53)
            let x = t[0], wgt = t[2], tmp = t[3], cq = t[4]
            let gRow = MPFRBuffer(count: n, precision: p)
            let acc = UnsafeMutablePointer<UInt64>.allocate(capacity: dv * FixedPointAccumulator.limbs)
            defer { acc.deallocate() }
            let wide = MPFRBuffer(count: 2, precision: 320)
            let feat = c.featureDim.map { MPFRBuffer(count: $0, precision: p) }
            let sqrt2 = MPFRBuffer(count: 1, precision: p + 8)
            mc_set_ui(sqrt2[0], 2, MPFR_RNDN); mc_sqrt(sqrt2[0], sqrt2[0], MPFR_RNDN)
            c.queryConstant(cq)
            let mg = magPtr.pointer
            var wRow = [Double](repeating: 0, count: n)
            let fastT = MPFRBuffer(count: 3, precision: p + 64)
            var aRow = [Double](repeating: 0, count: blocks * 8)
            let rowM = UnsafeMutablePointer<SIMD4<Double>>.allocate(capacity: 3 * chunks)
            defer { rowM.deallocate() }
            // pairwise only: Γ_ij and |L_i − L_j| per j, and L_i − L_j, Γ_ij, exp(L_i) in MPFR
            var gamRow = [Double](repeating: 1, count: pairwise ? n : 0)
            var segRow = [Double](repeating: 0, count: pairwise ? n : 0)
            let pd = MPFRBuffer(count: pairwise ? 3 : 0, precision: c.decayPrecision)
            var i = w
            while i < n {
                // Certified outputs replace the numerator: only the magnitudes are formed.
                let skip = outputs.map { o in (0..<dv).allSatisfy { !o[i * dv + $0].isNaN } } ?? false
                num.zero()
                mc_set_zero(den[i], 1)
                // Magnitudes only: double-double weights where they decide the Float64 values.
                let fastD = skip ? fastWeights.flatMap { fw in
                    wRow.withUnsafeMutableBufferPointer { fw.row(i, into: $0.baseAddress!, t: fastT) }
                } : nil
                for j in 0...i where fastD == nil {
                    let g = gRow[j]
                    c.dot(x, i, j, scratch)
                    if pairwise, let L = c.prefix {
                        mc_sub(pd[0], L[i], L[j], MPFR_RNDN)
                        segRow[j] = Swift.abs(mc_get_d(pd[0], MPFR_RNDN))
                    }
                    if c.spec.score == .exponential {
                        // g = exp(s·x + L_i − L_j): one exponential, no overflow in MPFR.
                        if pairwise {
                            // s·x is exact at the decay precision (≥ p + 53 bits).
                            mc_mul(pd[1], x, c.scale[0], MPFR_RNDN)
                            mc_add(pd[1], pd[1], pd[0], MPFR_RNDN)
                            mc_exp(g, pd[1], MPFR_RNDN)
                        } else {
                            mc_mul(g, x, c.scale[0], MPFR_RNDN)
                            if let L = c.prefix {
                                mc_add(g, g, L[i], MPFR_RNDN)
                                mc_sub(g, g, L[j], MPFR_RNDN)
                            }
                            mc_exp(g, g, MPFR_RNDN)
                        }
                        wRow[j] = mc_get_d(g, MPFR_RNDN)
                    } else {
                        c.score(g, x: x)
                        if let eNegL, let eL {
                            mc_mul(g, g, eNegL[j], MPFR_RNDN)
                            mc_mul(wgt, g, eL[i], MPFR_RNDN)
                            wRow[j] = mc_get_d(wgt, MPFR_RNDN)
                        } else if pairwise {
                            mc_exp(pd[1], pd[0], MPFR_RNDN)
                            gamRow[j] = mc_get_d(pd[1], MPFR_RNDN)
                            mc_mul(g, g, pd[1], MPFR_RNDN)
                            wRow[j] = mc_get_d(g, MPFR_RNDN)
                        } else {
                            wRow[j] = mc_get_d(g, MPFR_RNDN)
                        }
                    }
                    if c.spec.normalization == .sum { mc_add(den[i], den[i], g, MPFR_RNDN) }
                }
                if pairwise, let L = c.prefix { mc_exp(pd[2], L[i], MPFR_RNDN) }  // exp(L_i), state term
                if skip {
                    // magnitudes only
                } else if fixedPoint, accumulateFixed(c, row: i, g: gRow, into: num, acc: acc, wide: wide) {
                    // done: exact fixed-point sums
                } else {
                    for j in 0...i {
                        // g·v_jc is exact in p + 53 bits (v holds doubles), so
                        // mul-then-add rounds once, like an fma.
                        let vj = c.vM.base + j * dv, nm = num.base, prod = exact[0]
                        for col in 0..<dv {
                            mc_mul(prod, gRow[j], vj + col, MPFR_RNDN)
                            mc_add(nm + col, nm + col, prod, MPFR_RNDN)
                        }
                    }
                }
                // Magnitude (Proofs/T7): Σ_j w̃_ij |v_jc| with the weight's own
                // sensitivity w̃_ij ≥ |w_ij| (see ReferenceOutput.magnitude):
                // |w| goes to the storage magnitude, w̃ − |w| to the accumulation one.
                var wtSum = 0.0, wxSum = 0.0, wdSum = 0.0
                let ma = accPtr.pointer, md = decPtr.pointer
                // a_j = Σ_d |q_id||k_jd|, eight j at once (lane l: the scalar sum for j = 8b + l, d in order).
                c.qAbs.withUnsafeBufferPointer { qa in
                    kT.withUnsafeBufferPointer { kt in
                        aRow.withUnsafeMutableBufferPointer { ar in
                            for b in 0...(i / 8) {
                                var acc = SIMD8<Double>.zero
                                for d in 0..<dk { acc = acc + SIMD8(repeating: qa[i * dk + d]) * kt[b * dk + d] }
                                for l in 0..<8 { ar[b * 8 + l] = acc[l] }
                            }
                        }
                    }
                }
                let mg4 = rowM, ma4 = rowM + chunks, md4 = rowM + 2 * chunks
                mg4.initialize(repeating: .zero, count: 3 * chunks)
                va4.withUnsafeBufferPointer { va in
                    aRow.withUnsafeBufferPointer { ar in
                        for j in 0...i {
                            let a = ar[j]
                            let w = Swift.abs(wRow[j])
                            var wt: Double
                            let gamma = ld.isEmpty ? 1 : (pairwise ? gamRow[j] : exp(ld[i] - ld[j]))
                            switch c.spec.score {
                            case .linear, .reluLinear: wt = s * a * gamma
                            case .squared: wt = s * s * a * a * gamma
                            case .exponential: wt = w * (1 + s * a)
                            }
                            // exp(x(1+δ)) = exp(x)(1 + xδ): forming the segment sum
                            // x = L_i − L_j to working accuracy costs |x|·u.
                            let dec = ld.isEmpty ? 0 : w * (pairwise ? segRow[j] : Swift.abs(ld[i] - ld[j]))
                            let extra = Swift.max(wt - w, 0)
                            if w == 0 && extra == 0 && dec == 0 { continue }
                            wtSum += w
                            wxSum += extra
                            wdSum += dec
                            let w4 = SIMD4(repeating: w), x4 = SIMD4(repeating: extra), d4 = SIMD4(repeating: dec)
                            let vj = va.baseAddress! + j * chunks
                            for k in 0..<chunks {
                                let x = vj[k]
                                mg4[k] = mg4[k] + w4 * x
                                ma4[k] = ma4[k] + x4 * x
                                md4[k] = md4[k] + d4 * x
                            }
                        }
                    }
                }
                for col in 0..<dv {
                    mg[i * dv + col] = mg4[col / 4][col % 4]
                    ma[i * dv + col] = ma4[col / 4][col % 4]
                    md[i * dv + col] = md4[col / 4][col % 4]
                }
                // Initial-state term: c·φ(q_i)ᵀS₀ (times exp(L_i) below, like every other term).
                if let s0 = c.s0, let feat {
                    c.features(of: c.qM, row: i, into: feat, sqrt2: sqrt2[0])
                    let f = feat.count
                    for a in 0..<f {
                        mc_mul(tmp, feat[a], cq, MPFR_RNDN)
                        // Pairwise decay applies exp(L_i) to the state term here (no factor below).
                        if pairwise { mc_mul(tmp, tmp, pd[2], MPFR_RNDN) }
                        for col in 0..<dv {
                            if !skip { mc_fma(num[col], tmp, s0[a * dv + col], num[col], MPFR_RNDN) }
                            mg[i * dv + col] += Swift.abs(mpfr_get_d(tmp, MPFR_RNDN) * mpfr_get_d(s0[a * dv + col], MPFR_RNDN))
                                * (eL.map { mpfr_get_d($0[i], MPFR_RNDN) } ?? 1)
                        }
                        if let z0 = c.z0 {
                            mc_fma(den[i], tmp, z0[a], den[i], MPFR_RNDN)
                            wtSum += Swift.abs(mpfr_get_d(tmp, MPFR_RNDN) * mpfr_get_d(z0[a], MPFR_RNDN))
                                * (eL.map { mpfr_get_d($0[i], MPFR_RNDN) } ?? 1)
                        }
                    }
                }
                if c.spec.normalization == .sum {
                    // D_i = Σ_j w_ij, formed in MPFR: den·exp(L_i) would overflow Double
                    // factor by factor on long, strongly decayed sequences.
                    let d: Double
                    if let fastD { d = fastD } else {
                        if let eL { mc_mul(tmp, den[i], eL[i], MPFR_RNDN) } else { mc_set(tmp, den[i], MPFR_RNDN) }
                        d = mpfr_get_d(tmp, MPFR_RNDN)
                    }
                    for col in 0..<dv {
                        let y: Double
                        if skip, let outputs { y = Swift.abs(outputs[i * dv + col]) } else {
                            mc_div(out[i * dv + col], num[col], den[i], MPFR_RNDN)
                            y = Swift.abs(mpfr_get_d(out[i * dv + col], MPFR_RNDN))
                        }
                        mg[i * dv + col] = (mg[i * dv + col] + y * wtSum) / d
                        ma[i * dv + col] = (ma[i * dv + col] + y * wxSum) / d
                        md[i * dv + col] = (md[i * dv + col] + y * wdSum) / d
                    }
                    if let fastD { mc_set_d(den[i], fastD, MPFR_RNDN) } else if let eL {
                        mc_mul(den[i], den[i], eL[i], MPFR_RNDN)  // report D_i = Σ_j w_ij
                    }
                } else if !skip {
                    for col in 0..<dv {
                        if let eL { mc_mul(out[i * dv + col], num[col], eL[i], MPFR_RNDN) } else {
                            mc_set(out[i * dv + col], num[col], MPFR_RNDN)
                        }
                    }
                }
                i += workers
            }
        }
        return RowResults(o: out, den: den, magnitude: Array(magnitude), accumulationMagnitude: Array(accumulation),
                          decayMagnitude: Array(decay))
    }

    /// `num_c ← Σ_{j≤i} g_j·v_jc` through the 256-bit fixed-point accumulator.
    ///
    /// - Returns: false, leaving `num` to the caller's MPFR sum, when a weight
    ///   is NaN or ±∞ (exponent arithmetic on those would overflow `Int`).
    @discardableResult
    static func accumulateFixed(_ c: ReferenceSequence, row i: Int, g: MPFRBuffer, into num: MPFRBuffer,
                                acc: UnsafeMutablePointer<UInt64>, wide: MPFRBuffer) -> Bool {
        accumulateFixedGrid(c, row: i, g: g, into: num, acc: acc, wide: wide) != nil
    }

    /// `accumulateFixed`, returning the accumulator's grid exponent `lsb`
    /// (`Int.min` when every term is zero); see `accumulateFixedGrid(count:…)`.
    static func accumulateFixedGrid(_ c: ReferenceSequence, row i: Int, g: MPFRBuffer, into num: MPFRBuffer,
                                    acc: UnsafeMutablePointer<UInt64>, wide: MPFRBuffer) -> Int? {
        var truncated = false
        return accumulateFixedGrid(count: i + 1, weight: { g[$0] }, rows: c.vRows, first: 0, width: c.dv, into: num,
                                   acc: acc, wide: wide, truncated: &truncated)
    }

    /// `num_c ← Σ_{t<m} g_t·x_{first+t,c}` through the 256-bit fixed-point
    /// accumulator (`g_t = weight(t)`, ≤ 128-bit MPFR numbers; `rows` exact
    /// integer rows of `width` entries). Returns the grid exponent `lsb`
    /// (`Int.min` when every term is zero): each of the `m` terms is truncated
    /// by less than `2^lsb`, so the exact sum lies within `m·2^lsb` of the
    /// accumulator, which `store` writes exactly into a ≥ 320-bit `num`
    /// (Proofs/T7, step 4). nil, leaving `num` untouched, when a weight is NaN
    /// or ±∞ (exponent arithmetic on those would overflow `Int`). `truncated`
    /// is set when some term may have lost bits below `2^lsb` (a term's trailing
    /// zeros reach the grid otherwise): when it stays false the sum is exact.
    static func accumulateFixedGrid(count m: Int, weight g: (Int) -> UnsafeMutablePointer<__mpfr_struct>,
                                    rows: [IntegerRow?], first: Int, width dv: Int, into num: MPFRBuffer,
                                    acc: UnsafeMutablePointer<UInt64>, wide: MPFRBuffer, truncated: inout Bool) -> Int? {
        var emax = Int.min
        for t in 0..<m where mc_number_p(g(t)) == 0 { return nil }
        for t in 0..<m where mc_zero_p(g(t)) == 0 {
            let r = rows[first + t]!
            let top = r.topBits
            if top == 0 { continue }
            emax = Swift.max(emax, mc_get_exp(g(t)) + r.exponent + top)
        }
        acc.initialize(repeating: 0, count: dv * FixedPointAccumulator.limbs)
        if emax == Int.min {
            for col in 0..<dv { mc_set_zero(num[col], 1) }
            return Int.min
        }
        let headroom = (64 - UInt64(m + 1).leadingZeroBitCount) + 1
        let lsb = emax - 255 + headroom
        for t in 0..<m {
            guard let (gm, ge, gneg) = FixedPointAccumulator.decompose(g(t)) else { continue }
            let r = rows[first + t]!
            let glo = UInt64(truncatingIfNeeded: gm), ghi = UInt64(truncatingIfNeeded: gm >> 64)
            let shift = lsb - (ge + r.exponent)
            // The product gm·mm has at least tz(gm) + tz(mm) trailing zeros: no bit below the grid is lost
            // when that covers the shift (exact fp16/bf16 data typically: sums of exact ties decide at once).
            let gtz = gm == 0 ? 256 : gm.trailingZeroBitCount
            r.mantissas.withUnsafeBufferPointer { ms in
                for col in 0..<dv {
                    let m = ms[col]
                    if m == 0 { continue }
                    let mm = m.magnitude
                    if shift > gtz + mm.trailingZeroBitCount { truncated = true }
                    let (h1, l1) = glo.multipliedFullWidth(by: mm)
                    let (h2, l2) = ghi.multipliedFullWidth(by: mm)
                    let (p1, carry) = h1.addingReportingOverflow(l2)
                    let p2 = h2 &+ (carry ? 1 : 0)
                    FixedPointAccumulator.add(acc + col * FixedPointAccumulator.limbs, l1, p1, p2, shift: shift,
                                              negative: gneg != (m < 0))
                }
            }
        }
        for col in 0..<dv {
            FixedPointAccumulator.store(acc + col * FixedPointAccumulator.limbs, lsb: lsb, into: num[col],
                                        wide: wide[0], limb: wide[1])
        }
        return lsb
    }

    /// `(exp(L_t), exp(−L_t))` at the decay precision, or nils without decay
    /// (and for the exponential score, which exponentiates `s·x + L_i − L_j` whole,
    /// and for `pairwiseDecay`, where these factors would overflow).
    static func decayFactors(_ c: ReferenceSequence) -> (MPFRBuffer?, MPFRBuffer?) {
        guard let L = c.prefix, c.spec.score != .exponential, !c.pairwiseDecay else { return (nil, nil) }
        let a = MPFRBuffer(count: c.n, precision: c.decayPrecision)
        let b = MPFRBuffer(count: c.n, precision: c.decayPrecision)
        for t in 0..<c.n {
            mc_exp(a[t], L[t], MPFR_RNDN)
            mc_neg(b[t], L[t], MPFR_RNDN)
            mc_exp(b[t], b[t], MPFR_RNDN)
        }
        return (a, b)
    }

    /// `S = exp(L_{N−1})·(Σ_j exp(−L_j) φ(k_j) v_jᵀ + S₀)`, same for `z`; with
    /// `pairwiseDecay`, `S = Σ_j exp(L_{N−1} − L_j) φ(k_j) v_jᵀ + exp(L_{N−1})·S₀`.
    static func quadraticFinalState(_ c: ReferenceSequence) -> (s: MPFRBuffer, z: MPFRBuffer?)? {
        guard let f = c.featureDim else { return nil }
        let n = c.n, dv = c.dv, p = c.precision
        let s = MPFRBuffer(count: f * dv, precision: p)
        let z = c.spec.normalization == .sum ? MPFRBuffer(count: f, precision: p) : nil
        let feat = MPFRBuffer(count: f, precision: p)
        let t = MPFRBuffer(count: 3, precision: p)
        let sqrt2 = MPFRBuffer(count: 1, precision: p + 8)
        mc_set_ui(sqrt2[0], 2, MPFR_RNDN); mc_sqrt(sqrt2[0], sqrt2[0], MPFR_RNDN)
        let decayP = c.decayPrecision
        let eN = MPFRBuffer(count: 1, precision: decayP), eJ = MPFRBuffer(count: 1, precision: decayP)
        let pairwise = c.pairwiseDecay && c.prefix != nil
        for j in 0..<n {
            c.features(of: c.kM, row: j, into: feat, sqrt2: sqrt2[0])
            if let L = c.prefix {
                if pairwise { mc_sub(eJ[0], L[n - 1], L[j], MPFR_RNDN) } else { mc_neg(eJ[0], L[j], MPFR_RNDN) }
                mc_exp(eJ[0], eJ[0], MPFR_RNDN)
            }
            for a in 0..<f {
                if c.prefix != nil { mc_mul(t[0], feat[a], eJ[0], MPFR_RNDN) } else { mc_set(t[0], feat[a], MPFR_RNDN) }
                if let z { mc_add(z[a], z[a], t[0], MPFR_RNDN) }
                for col in 0..<dv { mc_fma(s[a * dv + col], t[0], c.vM[j * dv + col], s[a * dv + col], MPFR_RNDN) }
            }
        }
        if pairwise, let L = c.prefix, n > 0 {
            mc_exp(eN[0], L[n - 1], MPFR_RNDN)
            if let s0 = c.s0 { for i in 0..<(f * dv) { mc_fma(s[i], s0[i], eN[0], s[i], MPFR_RNDN) } }
            if let z, let z0 = c.z0 { for i in 0..<f { mc_fma(z[i], z0[i], eN[0], z[i], MPFR_RNDN) } }
            return (s, z)
        }
        if let s0 = c.s0 { for i in 0..<(f * dv) { mc_add(s[i], s[i], s0[i], MPFR_RNDN) } }
        if let z, let z0 = c.z0 { for i in 0..<f { mc_add(z[i], z[i], z0[i], MPFR_RNDN) } }
        if let L = c.prefix, n > 0 {
            mc_exp(eN[0], L[n - 1], MPFR_RNDN)
            for i in 0..<(f * dv) { mc_mul(s[i], s[i], eN[0], MPFR_RNDN) }
            if let z { for i in 0..<f { mc_mul(z[i], z[i], eN[0], MPFR_RNDN) } }
        }
        return (s, z)
    }
}

/// A raw pointer that may cross into `concurrentPerform` workers writing disjoint elements.
struct UnsafeMutableSendable<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { pointer = p }
}

/// Processor count without Foundation.
enum ProcessInfoLite {
    static var activeProcessorCount: Int {
        #if canImport(Glibc)
        return Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 2
        #endif
    }
}
#if canImport(Glibc)
import Glibc
#endif
