#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import COpenBLAS
import MambaVariants

/// The block (layer) of docs/MATH.md §2 in Float32 around the optimized cores.
///
/// Steps 1–12 in Float32 (`cblas_sgemm` for every linear map): `u = x·W_qkv`;
/// causal depthwise convolution of window `k` with bias and left zero padding
/// (`u'_t = b + Σ_r w_r ⊙ u_{t−k+1+r}`, none for `k = 1`); split into Q, K, V
/// per head; the activation (SiLU/ReLU) on Q and K — and on V when
/// `activationOnValues` (Mamba-2) — right after the convolution, so that the
/// D residual sees the activated V; `dt = softplus(x·W_dt [+ dt_bias])`;
/// log-decay `a = −exp(A_log)·dt` (original) or `a = −softplus(x·W_A)`;
/// `r = V ⊙ D` taken before `V ← V ⊙ dt`; the core per head (`s =
/// variant.scale(headDim:)`) by `CoreKernels` in the requested form and
/// precision mode (only the core is affected by the mode: its inputs are
/// rounded to the mode's format and its output comes back in it); `y + r`;
/// `y ⊙ SiLU(x·W_z [+ b_z])`; merge heads; RMSNorm over the `H·dh` channels
/// (`ε = 1.1920929e−7`, weight γ) for un-normalised cores; `·W_o`.
///
/// `form == .recurrent` runs the block as a stream, one token at a time: the
/// convolution keeps the last `k − 1` *pre-convolution* rows as its state and
/// each head keeps a `RecurrentCore` (state `[S | z]`, or a KV cache for the
/// exponential score), so the whole layer state per head is
/// `CoreKernels.stateElements(…, convWindow: k)`.
///
/// Output `[B, N, d]`, Float32 values held in Double. Zero denominators in a
/// sum-normalised core give NaN rows, as in the core kernels.
public enum BlockKernels {
    public static func run(_ p: BlockProblem, form: KernelForm, mode: PrecisionMode,
                           options: KernelOptions = .init()) throws -> [Double] {
        let w = BlockWeights(p)
        try CoreKernels.validate(options)
        if p.x.count != p.batch * p.length * w.d {
            throw KernelError.invalidProblem("x: expected \(p.batch * p.length * w.d) elements [B,N,d], found \(p.x.count)")
        }
        if form == .recurrent { return runStreaming(p, w, mode: mode, options: options) }
        let n = p.length, h = w.heads, dh = w.dh, v = p.variant
        var q = [Double](repeating: 0, count: p.batch * h * n * dh), k = q, vv = q
        var a = [Double](repeating: 0, count: p.batch * h * n)
        var residual: [[Float]] = [], gates: [[Float]?] = []
        for b in 0..<p.batch {
            let x = p.x[(b * n * w.d)..<((b + 1) * n * w.d)].map(Float.init)
            var u = BlockWeights.matmul(x, w.wQKV, m: n, k: w.d, n: w.channels)
            u = w.convolve(u, rows: n)
            w.activate(&u, rows: n)
            let dt = w.dt(x, rows: n)
            let decay = w.logDecay(x, dt: dt, rows: n)
            var r = [Float](repeating: 0, count: n * h * dh)
            for t in 0..<n {
                for c in 0..<(h * dh) {
                    let vIdx = t * w.channels + 2 * h * dh + c
                    if v.dResidual { r[t * h * dh + c] = u[vIdx] * w.dParam[c] }
                    if v.dtOnValues, let dt { u[vIdx] *= dt[t * h + c / dh] }
                }
            }
            residual.append(r)
            gates.append(w.gate(x, rows: n))
            for hh in 0..<h {
                for t in 0..<n {
                    let dst = ((b * h + hh) * n + t) * dh
                    for i in 0..<dh {
                        q[dst + i] = Double(u[t * w.channels + hh * dh + i])
                        k[dst + i] = Double(u[t * w.channels + h * dh + hh * dh + i])
                        vv[dst + i] = Double(u[t * w.channels + 2 * h * dh + hh * dh + i])
                    }
                    if let decay { a[(b * h + hh) * n + t] = Double(decay[t * h + hh]) }
                }
            }
        }
        let core = CoreProblem(spec: v.core, batch: p.batch, heads: h, length: n, keyDim: dh, valueDim: dh,
                               q: q, k: k, v: vv, decay: v.decay == .none ? nil : .perStep(a),
                               scale: v.scale(headDim: dh))
        let out = try CoreKernels.run(core, form: form, mode: mode, options: options)
        var result = [Double]()
        result.reserveCapacity(p.batch * n * w.d)
        for b in 0..<p.batch {
            var y = [Float](repeating: 0, count: n * h * dh)
            for hh in 0..<h {
                for t in 0..<n {
                    for i in 0..<dh { y[t * h * dh + hh * dh + i] = Float(out.o[((b * h + hh) * n + t) * dh + i]) }
                }
            }
            let o = w.finish(y, residual: residual[b], gate: gates[b], rows: n)
            result += o.map(Double.init)
        }
        return result
    }

    /// The streaming (recurrent) block: token by token with a convolution
    /// state of `k − 1` pre-convolution rows and one `RecurrentCore` per head.
    static func runStreaming(_ p: BlockProblem, _ w: BlockWeights, mode: PrecisionMode,
                             options: KernelOptions) -> [Double] {
        let n = p.length, h = w.heads, dh = w.dh, v = p.variant
        let ctx = CoreContext(spec: v.core, scale: v.scale(headDim: dh), mode: mode, options: options)
        let a = ctx.arith, ldv = ctx.ldv(dh)
        var result = [Double]()
        result.reserveCapacity(p.batch * n * w.d)
        for b in 0..<p.batch {
            let cores = (0..<h).map { _ in RecurrentCore(ctx, dk: dh, dv: dh, initialState: nil) }
            var convState = [Float](repeating: 0, count: (v.convWindow - 1) * w.channels)
            let qb = allocateFloats(dh), kb = allocateFloats(dh), vb = allocateFloats(dh), acc = allocateFloats(ldv)
            defer { qb.deallocate(); kb.deallocate(); vb.deallocate(); acc.deallocate() }
            for t in 0..<n {
                let x = p.x[((b * n + t) * w.d)..<((b * n + t + 1) * w.d)].map(Float.init)
                let raw = BlockWeights.matmul(x, w.wQKV, m: 1, k: w.d, n: w.channels)
                var u = w.convolveStep(raw, state: &convState)
                w.activate(&u, rows: 1)
                let dt = w.dt(x, rows: 1)
                let decay = w.logDecay(x, dt: dt, rows: 1)
                var r = [Float](repeating: 0, count: h * dh)
                for c in 0..<(h * dh) {
                    let vIdx = 2 * h * dh + c
                    if v.dResidual { r[c] = u[vIdx] * w.dParam[c] }
                    if v.dtOnValues, let dt { u[vIdx] *= dt[c / dh] }
                }
                var y = [Float](repeating: 0, count: h * dh)
                for hh in 0..<h {
                    for i in 0..<dh {
                        qb[i] = u[hh * dh + i]; kb[i] = u[h * dh + hh * dh + i]; vb[i] = u[2 * h * dh + hh * dh + i]
                    }
                    a.input.round(qb, dh); a.input.round(kb, dh); a.input.round(vb, dh)
                    if v.score.traits.reluOnInputs { for i in 0..<dh { qb[i] = max(qb[i], 0); kb[i] = max(kb[i], 0) } }
                    let logAlpha = decay.map { a.decayAndState.round($0[hh]) } ?? 0
                    cores[hh].step(q: qb, k: kb, v: vb, logAlpha: logAlpha, decay: decay != nil, out: acc)
                    let (o, _) = Finish.rows(ctx, acc: acc, n: 1, dv: dh)
                    a.output.round(o, dh)
                    for i in 0..<dh { y[hh * dh + i] = o[i] }
                    o.deallocate()
                }
                result += w.finish(y, residual: r, gate: w.gate(x, rows: 1), rows: 1).map(Double.init)
            }
        }
        return result
    }
}

/// The block parameters in Float32 and the per-step maps of docs/MATH.md §2.
struct BlockWeights {
    let variant: VariantSpec
    let d: Int, heads: Int, dh: Int, channels: Int
    let wQKV: [Float], convW: [Float], convB: [Float], wDt: [Float], dtBias: [Float], aLog: [Float]
    let wA: [Float], dParam: [Float], wZ: [Float], bZ: [Float], gamma: [Float], wO: [Float]

    init(_ p: BlockProblem) {
        let q = p.parameters
        variant = p.variant
        (d, heads, dh) = (q.modelDim, q.heads, q.headDim)
        channels = 3 * q.heads * q.headDim
        func f(_ x: [Double]) -> [Float] { x.map(Float.init) }
        (wQKV, convW, convB, wDt, dtBias, aLog) = (f(q.wQKV), f(q.convWeight), f(q.convBias), f(q.wDt), f(q.dtBias), f(q.aLog))
        (wA, dParam, wZ, bZ, gamma, wO) = (f(q.wA), f(q.d), f(q.wZ), f(q.bZ), f(q.gamma), f(q.wO))
    }

    /// `A (m×k) · B (k×n)`, row-major, Float32 `cblas_sgemm`.
    static func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        guard m > 0, n > 0, k > 0 else { return c }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b,
                    Int32(n), 0, &c, Int32(n))
        return c
    }

    static func softplus(_ x: Float) -> Float { max(x, 0) + log1p(exp(-abs(x))) }
    static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

    /// Causal depthwise convolution over all `3·H·dh` channels, left zero padding.
    func convolve(_ u: [Float], rows n: Int) -> [Float] {
        let k = variant.convWindow
        guard k > 1 else { return u }
        var out = [Float](repeating: 0, count: n * channels)
        for t in 0..<n {
            for c in 0..<channels {
                var s = convB[c]
                for r in 0..<k {
                    let src = t - k + 1 + r
                    if src >= 0 { s += convW[c * k + r] * u[src * channels + c] }
                }
                out[t * channels + c] = s
            }
        }
        return out
    }

    /// One streaming convolution step; `state` holds the last `k − 1`
    /// pre-convolution rows (oldest first) and is advanced.
    func convolveStep(_ u: [Float], state: inout [Float]) -> [Float] {
        let k = variant.convWindow
        guard k > 1 else { return u }
        var out = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            var s = convB[c]
            for r in 0..<(k - 1) { s += convW[c * k + r] * state[r * channels + c] }
            s += convW[c * k + k - 1] * u[c]
            out[c] = s
        }
        if k > 2 { state.removeFirst(channels) } else { state.removeAll(keepingCapacity: true) }
        state += u
        return out
    }

    /// The activation on Q and K (and V when `activationOnValues`), in place.
    func activate(_ u: inout [Float], rows n: Int) {
        let act = variant.activation
        guard act != .none else { return }
        let hd = heads * dh
        let upto = variant.activationOnValues ? 3 * hd : 2 * hd
        for t in 0..<n {
            for c in 0..<upto {
                let x = u[t * channels + c]
                u[t * channels + c] = act == .silu ? BlockWeights.silu(x) : max(x, 0)
            }
        }
    }

    /// `dt = softplus(x·W_dt [+ dt_bias])`, `n×H`, or nil.
    func dt(_ x: [Float], rows n: Int) -> [Float]? {
        guard variant.needsDt else { return nil }
        var z = BlockWeights.matmul(x, wDt, m: n, k: d, n: heads)
        for t in 0..<n {
            for h in 0..<heads {
                let pre = z[t * heads + h] + (variant.dtBias ? dtBias[h] : 0)
                z[t * heads + h] = BlockWeights.softplus(pre)
            }
        }
        return z
    }

    /// Per-step log-decay `n×H` (`−exp(A_log)·dt` or `−softplus(x·W_A)`), or nil.
    func logDecay(_ x: [Float], dt: [Float]?, rows n: Int) -> [Float]? {
        switch variant.decay {
        case .none: return nil
        case .original:
            var a = dt!
            for t in 0..<n { for h in 0..<heads { a[t * heads + h] = -exp(aLog[h]) * a[t * heads + h] } }
            return a
        case .softplus:
            var z = BlockWeights.matmul(x, wA, m: n, k: d, n: heads)
            for i in 0..<z.count { z[i] = -BlockWeights.softplus(z[i]) }
            return z
        }
    }

    /// `SiLU(x·W_z [+ b_z])`, `n×H·dh`, or nil without a Z gate.
    func gate(_ x: [Float], rows n: Int) -> [Float]? {
        guard variant.zGate else { return nil }
        let hd = heads * dh
        var z = BlockWeights.matmul(x, wZ, m: n, k: d, n: hd)
        for t in 0..<n {
            for c in 0..<hd { z[t * hd + c] = BlockWeights.silu(z[t * hd + c] + (variant.zGateBias ? bZ[c] : 0)) }
        }
        return z
    }

    /// Steps 10–12: `+ r`, `⊙ gate`, RMSNorm (un-normalised cores), `·W_o`.
    func finish(_ y: [Float], residual r: [Float], gate: [Float]?, rows n: Int) -> [Float] {
        let hd = heads * dh
        var y = y
        for i in 0..<(n * hd) {
            if variant.dResidual { y[i] += r[i] }
            if let gate { y[i] *= gate[i] }
        }
        if variant.outputNorm {
            let eps: Float = 1.1920929e-7
            for t in 0..<n {
                var ss: Float = 0
                for c in 0..<hd { ss += y[t * hd + c] * y[t * hd + c] }
                let inv = 1 / (ss / Float(hd) + eps).squareRoot()
                for c in 0..<hd { y[t * hd + c] = y[t * hd + c] * inv * gamma[c] }
            }
        }
        return BlockWeights.matmul(y, wO, m: n, k: hd, n: d)
    }
}
