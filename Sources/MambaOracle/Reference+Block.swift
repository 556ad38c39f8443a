import CMPFR
import MambaPrecision
import MambaVariants

extension Reference {
    /// The block-level oracle (docs/MATH.md §2, steps 1–12) for every preset, every
    /// operation correctly rounded at `precision` bits; the core runs in the
    /// chosen MPFR `form` (quadratic, recurrent or chunked with `chunkSize`).
    ///
    /// Order of operations: `u = x·W_qkv` → causal depthwise conv with bias
    /// (window 1: none) → (mamba2: SiLU on the convolved Q, K and V) → split →
    /// `dt = softplus(x·W_dt [+ dt_bias])` → log-decay → `r = V ⊙ D` →
    /// `V ← V ⊙ dt` → activation on Q, K → core per head (`s = 1/√dh` unless
    /// the spec fixes it) → `y + r` → `y ⊙ SiLU(x·W_z [+ b_z])` → merge heads →
    /// RMSNorm (`ε = 2⁻²³`, the Float32 machine epsilon 1.1920929e−7) for
    /// un-normalised cores → `·W_o`.
    ///
    /// - Returns: `[B, N, d]`.
    public static func block(_ p: BlockProblem, form: KernelForm = .quadratic, chunkSize: Int = 16,
                             precision: Int = BigFloat.defaultPrecision) throws -> [BigFloat] {
        try blockWithMagnitude(p, form: form, chunkSize: chunkSize, precision: precision).output
    }

    /// The block oracle's output `[B, N, d]` with, for the quadratic form, each
    /// output's magnitude (Proofs/T7): the core's magnitudes `m` (Σ of its
    /// terms' sizes) carried through the later stages to first order —
    /// `m + |r|` (D residual), `m·|SiLU(z)| + |y|` (Z gate),
    /// `(γ/ρ)(m_c + |y_c| Σ_d |y_d| m_d / (n ρ²))` (RMSNorm with `ρ` the token's
    /// RMS over `n = H·dh` channels) — then `Σ_c (m_c + |y_c|)·|W_o[c,e]|`.
    /// A Float32 block's error is a few `u` times this magnitude.
    ///
    /// - Parameter accumulationRatio: `u_acc/u_storage`, weighting the core's
    ///   accumulation magnitude (`ReferenceOutput.accumulationMagnitude`).
    public static func blockWithMagnitude(_ p: BlockProblem, form: KernelForm = .quadratic, chunkSize: Int = 16,
                                          precision: Int = BigFloat.defaultPrecision,
                                          accumulationRatio: Double = 1) throws
        -> (output: [BigFloat], magnitude: [Double]?)
    {
        let spec = p.variant, w = p.parameters
        let n = p.length, dm = w.modelDim, h = w.heads, dh = w.headDim, hd = h * dh, ch = 3 * hd
        guard p.x.count == p.batch * n * dm else {
            throw ReferenceError.invalidProblem("x: expected \(p.batch * n * dm) elements [B,N,d], found \(p.x.count)")
        }
        guard form != .tiled else { throw ReferenceError.unsupported("the MPFR oracle has no tiled form") }
        let pr = precision
        var result: [BigFloat] = []
        result.reserveCapacity(p.batch * n * dm)
        var magnitude: [Double]? = form == .quadratic ? [] : nil
        let m = BlockMath(precision: pr)
        for b in 0..<p.batch {
            let x = MPFRBuffer(count: n * dm, precision: 53)
            x.setAll(p.x[b * n * dm ..< (b + 1) * n * dm])
            // 1. projections
            let u = m.matmul(x, rows: n, inner: dm, w.wQKV, cols: ch)
            // 2. causal depthwise convolution with bias
            let uc: MPFRBuffer
            if spec.convWindow > 1 {
                let k = spec.convWindow
                uc = MPFRBuffer(count: n * ch, precision: pr)
                for t in 0..<n {
                    for c in 0..<ch {
                        let o = uc[t * ch + c]
                        mc_set_d(o, w.convBias[c], MPFR_RNDN)
                        for r in 0..<k where t - k + 1 + r >= 0 {
                            mc_set_d(m.t0, w.convWeight[c * k + r], MPFR_RNDN)
                            mc_fma(o, m.t0, u[(t - k + 1 + r) * ch + c], o, MPFR_RNDN)
                        }
                    }
                }
            } else { uc = u }
            if spec.activationOnValues { for i in 0..<(n * ch) { m.activate(uc[i], spec.activation) } }
            // 4–5. dt and log-decay per token and head
            let dt = MPFRBuffer(count: n * h, precision: pr)
            let a = MPFRBuffer(count: n * h, precision: pr)
            if spec.needsDt {
                let lin = m.matmul(x, rows: n, inner: dm, w.wDt, cols: h)
                for t in 0..<n {
                    for hh in 0..<h {
                        if spec.dtBias { mc_set_d(m.t0, w.dtBias[hh], MPFR_RNDN); mc_add(lin[t * h + hh], lin[t * h + hh], m.t0, MPFR_RNDN) }
                        m.softplus(dt[t * h + hh], lin[t * h + hh])
                    }
                }
            }
            switch spec.decay {
            case .none: break
            case .original:
                for t in 0..<n {
                    for hh in 0..<h {
                        mc_set_d(m.t0, w.aLog[hh], MPFR_RNDN); mc_exp(m.t0, m.t0, MPFR_RNDN)
                        mc_mul(a[t * h + hh], m.t0, dt[t * h + hh], MPFR_RNDN)
                        mc_neg(a[t * h + hh], a[t * h + hh], MPFR_RNDN)
                    }
                }
            case .softplus:
                let lin = m.matmul(x, rows: n, inner: dm, w.wA, cols: h)
                for i in 0..<(n * h) { m.softplus(a[i], lin[i]); mc_neg(a[i], a[i], MPFR_RNDN) }
            }
            let zLin = spec.zGate ? m.matmul(x, rows: n, inner: dm, w.wZ, cols: hd) : nil
            let y = MPFRBuffer(count: n * hd, precision: pr)
            var ym = [Double](repeating: 0, count: n * hd)  // magnitudes of y (quadratic form)
            let core = spec.core
            let s = spec.scale(headDim: dh)
            for hh in 0..<h {
                // 3. split this head's channels
                let qh = MPFRBuffer(count: n * dh, precision: pr), kh = MPFRBuffer(count: n * dh, precision: pr)
                let vh = MPFRBuffer(count: n * dh, precision: pr), rh = MPFRBuffer(count: n * dh, precision: pr)
                for t in 0..<n {
                    for d in 0..<dh {
                        let i = t * dh + d
                        mc_set(qh[i], uc[t * ch + hh * dh + d], MPFR_RNDN)
                        mc_set(kh[i], uc[t * ch + hd + hh * dh + d], MPFR_RNDN)
                        mc_set(vh[i], uc[t * ch + 2 * hd + hh * dh + d], MPFR_RNDN)
                        // 6. D residual before the discretisation
                        if spec.dResidual { mc_set_d(m.t0, w.d[hh * dh + d], MPFR_RNDN); mc_mul(rh[i], vh[i], m.t0, MPFR_RNDN) }
                        // 7. V ⊙ dt
                        if spec.dtOnValues { mc_mul(vh[i], vh[i], dt[t * h + hh], MPFR_RNDN) }
                        // 8. activation on Q and K
                        if !spec.activationOnValues {
                            m.activate(qh[i], spec.activation); m.activate(kh[i], spec.activation)
                        }
                    }
                }
                var ah: MPFRBuffer? = nil
                if core.hasDecay {
                    let buf = MPFRBuffer(count: n, precision: pr)
                    for t in 0..<n { mc_set(buf[t], a[t * h + hh], MPFR_RNDN) }
                    ah = buf
                }
                // 9. core
                let seq = ReferenceSequence(spec: core, q: qh, k: kh, v: vh, steps: ah, length: n, keyDim: dh,
                                            valueDim: dh, scale: s, precision: pr)
                let out: MPFRBuffer
                var coreMag: [Double]? = nil
                switch (form, core.score) {
                case (.quadratic, _), (.tiled, _):
                    let rows = quadraticRows(seq)
                    out = rows.o
                    coreMag = (0..<rows.magnitude.count).map { i in
                        rows.magnitude[i] + accumulationRatio
                            * (rows.magnitude[i] + rows.accumulationMagnitude[i] + rows.decayMagnitude[i])
                    }
                case (.recurrent, .exponential): out = streamingExponential(seq, blockSize: 1)
                case (.chunked, .exponential): out = streamingExponential(seq, blockSize: chunkSize)
                case (.recurrent, _): out = recurrentSequence(seq).0
                case (.chunked, _): out = chunkedSequence(seq, chunkSize: chunkSize).0
                }
                // 10. D residual and Z gate
                for t in 0..<n {
                    for d in 0..<dh {
                        let yi = y[t * hd + hh * dh + d]
                        mc_set(yi, out[t * dh + d], MPFR_RNDN)
                        var mag = coreMag?[t * dh + d] ?? 0
                        if spec.dResidual {
                            mc_add(yi, yi, rh[t * dh + d], MPFR_RNDN)
                            mag += Swift.abs(mpfr_get_d(rh[t * dh + d], MPFR_RNDN))
                        }
                        if let zLin {
                            let zi = m.t1
                            mc_set(zi, zLin[t * hd + hh * dh + d], MPFR_RNDN)
                            if spec.zGateBias { mc_set_d(m.t0, w.bZ[hh * dh + d], MPFR_RNDN); mc_add(zi, zi, m.t0, MPFR_RNDN) }
                            m.silu(zi, zi)
                            mag = mag * Swift.abs(mpfr_get_d(zi, MPFR_RNDN)) + Swift.abs(mpfr_get_d(yi, MPFR_RNDN))
                            mc_mul(yi, yi, zi, MPFR_RNDN)
                        }
                        ym[t * hd + hh * dh + d] = mag
                    }
                }
            }
            // 11. RMSNorm over all H·dh channels of a token
            if spec.outputNorm {
                for t in 0..<n {
                    mc_set_zero(m.t1, 1)
                    for c in 0..<hd { mc_fma(m.t1, y[t * hd + c], y[t * hd + c], m.t1, MPFR_RNDN) }
                    mc_set_si(m.t0, hd, MPFR_RNDN); mc_div(m.t1, m.t1, m.t0, MPFR_RNDN)
                    mc_set_si_2exp(m.t0, 1, -23, MPFR_RNDN); mc_add(m.t1, m.t1, m.t0, MPFR_RNDN)
                    mc_rec_sqrt(m.t1, m.t1, MPFR_RNDN)
                    // first-order propagation of the magnitudes through y·γ/ρ
                    let invRho = mpfr_get_d(m.t1, MPFR_RNDN)
                    var cross = 0.0
                    for c in 0..<hd { cross += Swift.abs(mpfr_get_d(y[t * hd + c], MPFR_RNDN)) * ym[t * hd + c] }
                    cross *= invRho * invRho / Double(hd)
                    for c in 0..<hd {
                        let yc = Swift.abs(mpfr_get_d(y[t * hd + c], MPFR_RNDN))
                        ym[t * hd + c] = Swift.abs(w.gamma[c]) * invRho * (ym[t * hd + c] + yc * cross)
                    }
                    for c in 0..<hd {
                        mc_mul(y[t * hd + c], y[t * hd + c], m.t1, MPFR_RNDN)
                        mc_set_d(m.t0, w.gamma[c], MPFR_RNDN); mc_mul(y[t * hd + c], y[t * hd + c], m.t0, MPFR_RNDN)
                    }
                }
            }
            // 12. output projection
            result += m.matmul(y, rows: n, inner: hd, w.wO, cols: dm).values()
            if magnitude != nil {
                var out = [Double](repeating: 0, count: n * dm)
                for t in 0..<n {
                    for c in 0..<hd {
                        let mc = ym[t * hd + c] + Swift.abs(mpfr_get_d(y[t * hd + c], MPFR_RNDN))
                        if mc == 0 { continue }
                        for e in 0..<dm { out[t * dm + e] += mc * Swift.abs(w.wO[c * dm + e]) }
                    }
                }
                magnitude! += out
            }
        }
        return (result, magnitude)
    }
}

/// MPFR helpers for the block oracle (in place, preallocated temporaries).
final class BlockMath {
    let precision: Int
    let tmp: MPFRBuffer
    init(precision: Int) {
        self.precision = precision
        tmp = MPFRBuffer(count: 4, precision: precision + 16)
    }
    var t0: UnsafeMutablePointer<__mpfr_struct> { tmp[0] }
    var t1: UnsafeMutablePointer<__mpfr_struct> { tmp[1] }

    /// `x·W` with `x: [rows, inner]` (MPFR) and `W: [inner, cols]` (Double).
    func matmul(_ x: MPFRBuffer, rows: Int, inner: Int, _ wm: [Double], cols: Int) -> MPFRBuffer {
        let w = MPFRBuffer(count: inner * cols, precision: 53)
        w.setAll(wm[...])
        let out = MPFRBuffer(count: rows * cols, precision: precision)
        for r in 0..<rows {
            for c in 0..<cols {
                let o = out[r * cols + c]
                for i in 0..<inner { mc_fma(o, x[r * inner + i], w[i * cols + c], o, MPFR_RNDN) }
            }
        }
        return out
    }

    /// `r ← log(1 + eˣ)` computed as `max(x,0) + log1p(e^{−|x|})` with 16 guard bits.
    func softplus(_ r: UnsafeMutablePointer<__mpfr_struct>, _ x: UnsafeMutablePointer<__mpfr_struct>) {
        let a = tmp[2], b = tmp[3]
        mc_abs(a, x, MPFR_RNDN); mc_neg(a, a, MPFR_RNDN); mc_exp(a, a, MPFR_RNDN); mc_log1p(a, a, MPFR_RNDN)
        if mc_sgn(x) > 0 { mc_add(b, x, a, MPFR_RNDN) } else { mc_set(b, a, MPFR_RNDN) }
        mc_set(r, b, MPFR_RNDN)
    }

    /// `r ← x·σ(x) = x / (1 + e^{−x})` with 16 guard bits.
    func silu(_ r: UnsafeMutablePointer<__mpfr_struct>, _ x: UnsafeMutablePointer<__mpfr_struct>) {
        let a = tmp[2]
        mc_neg(a, x, MPFR_RNDN); mc_exp(a, a, MPFR_RNDN)
        mpfr_add_ui(a, a, 1, MPFR_RNDN)
        mc_div(r, x, a, MPFR_RNDN)
    }

    func activate(_ x: UnsafeMutablePointer<__mpfr_struct>, _ act: Activation) {
        switch act {
        case .none: break
        case .relu: if mc_sgn(x) < 0 { mc_set_zero(x, 1) }
        case .silu: silu(x, x)
        }
    }
}
