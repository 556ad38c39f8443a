#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// One streaming core: the state of the recurrent form of SPEC §3, advanced
/// one token at a time. Used by the recurrent core form and by the recurrent
/// block form.
///
/// Feature-map cores keep `[S | z]` (`F×(dv+1)`, FLA's unscaled convention):
/// `S_t = α_t·S_{t−1} + φ(k_t)·[v_t | 1]ᵀ`, `α_t = exp(a_t)`, and the step
/// returns `c·φ(q_t)ᵀ·[S_t | z_t]` (numerator and denominator). Float32 and
/// the acc32 modes use one fused pass over the state per token (decay,
/// rank-1 update and query product together, vectorised over `dv`; measured
/// faster than `sgemm`(k = 1) + `sgemv` with OpenBLAS's default kernels on
/// this machine, 18% slower with its AVX-512 kernels forced), in
/// Float32 as FLA's `fused_recurrent` does; pure float16 rounds every
/// operation, the query product being a binary16 dot product summed in order.
///
/// The exponential score keeps a KV cache: keys, values, and the running
/// log-decay of each cached key relative to the current token (`g_j ←
/// g_j + a_t` at every step — no global prefix sum), and combines cached
/// keys in blocks of 64 with an online maximum `m`: the step returns
/// `Σ_j exp(s·q·k_j + g_j − m)·[v_j | 1]` and `m` is folded back
/// (`·exp(m)`) for un-normalised cores.
final class RecurrentCore {
    let ctx: CoreContext
    let dk: Int, dv: Int, ldv: Int
    /// Feature dimension (nil for the exponential score).
    let features: Int?
    /// `[S | z]`, `F×ldv`, internal feature convention.
    private(set) var state: UnsafeMutablePointer<Float>?
    private let phiQ: UnsafeMutablePointer<Float>, phiK: UnsafeMutablePointer<Float>
    private let vaug: UnsafeMutablePointer<Float>
    private let work: UnsafeMutablePointer<Float>?
    // KV cache (exponential score).
    private var cacheKeys: UnsafeMutablePointer<Float>
    private var cacheValues: UnsafeMutablePointer<Float>
    private var cacheDecay: UnsafeMutablePointer<Float>
    private var cacheCount = 0, cacheCapacity = 0
    private let scores: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>
    static let cacheBlock = 64

    init(_ ctx: CoreContext, dk: Int, dv: Int, initialState: UnsafePointer<Float>?) {
        self.ctx = ctx
        (self.dk, self.dv, self.ldv) = (dk, dv, ctx.ldv(dv))
        features = ctx.internalFeatures(dk)
        let f = features ?? 1
        phiQ = allocateFloats(f)
        phiK = allocateFloats(f)
        vaug = allocateFloats(ldv, fill: 1)
        if let features {
            let s = allocateFloats(features * ldv, fill: 0)
            if let initialState { s.update(from: initialState, count: features * ldv) }
            state = s
            work = ctx.arith.pureHalf ? allocateFloats(features * ldv) : nil
        } else {
            state = nil
            work = nil
        }
        cacheKeys = allocateFloats(0); cacheValues = allocateFloats(0); cacheDecay = allocateFloats(0)
        scores = allocateFloats(RecurrentCore.cacheBlock)
        tmp = allocateFloats(RecurrentCore.cacheBlock)
    }

    deinit {
        phiQ.deallocate(); phiK.deallocate(); vaug.deallocate()
        state?.deallocate(); work?.deallocate()
        cacheKeys.deallocate(); cacheValues.deallocate(); cacheDecay.deallocate()
        scores.deallocate(); tmp.deallocate()
    }

    /// Advances by one token and writes the augmented output row (`ldv`
    /// values: numerator, then the denominator for sum normalisation) to `out`.
    /// `logAlpha` is `a_t` (ignored when `decay` is false).
    func step(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
              logAlpha: Float, decay: Bool, out: UnsafeMutablePointer<Float>) {
        vaug.update(from: v, count: dv)
        if features == nil {
            stepExponential(q: q, k: k, logAlpha: logAlpha, decay: decay, out: out)
        } else {
            stepFeatures(q: q, k: k, logAlpha: logAlpha, decay: decay, out: out)
        }
    }

    private func stepFeatures(q: UnsafePointer<Float>, k: UnsafePointer<Float>, logAlpha: Float, decay: Bool,
                              out: UnsafeMutablePointer<Float>) {
        let a = ctx.arith, f = features!, ldv = ldv, s = state!
        var c = ctx.featureScale
        Features.columns(ctx, x: k, rows: 1, dk: dk, out: phiK, rowScale: nil)
        Features.columns(ctx, x: q, rows: 1, dk: dk, out: phiQ, rowScale: &c)
        let alpha = decay ? flushed(a.op(exp(logAlpha))) : 1
        if a.pureHalf {
            let w = work!
            if decay { Rows.scale(ctx, s, f * ldv, by: alpha) }
            for r in 0..<f {
                let kf = phiK[r], wr = w + r * ldv
                for j in 0..<ldv { wr[j] = kf * vaug[j] }
            }
            a.op(w, f * ldv)
            for e in 0..<(f * ldv) { s[e] += w[e] }
            a.op(s, f * ldv)
            a.gemm(transA: false, transB: false, m: 1, n: ldv, k: f, a: phiQ, lda: f, b: s, ldb: ldv,
                   beta: 0, c: out, ldc: ldv)
            return
        }
        out.update(repeating: 0, count: ldv)
        let v = vaug
        if decay {
            for r in 0..<f {
                let row = s + r * ldv, kf = phiK[r], qf = phiQ[r]
                for j in 0..<ldv {
                    let x = alpha * row[j] + kf * v[j]
                    row[j] = x
                    out[j] += qf * x
                }
            }
        } else {
            for r in 0..<f {
                let row = s + r * ldv, kf = phiK[r], qf = phiQ[r]
                for j in 0..<ldv {
                    let x = row[j] + kf * v[j]
                    row[j] = x
                    out[j] += qf * x
                }
            }
        }
    }

    private func grow(to needed: Int) {
        guard needed > cacheCapacity else { return }
        let cap = Swift.max(needed, cacheCapacity * 2, 64)
        func regrow(_ p: UnsafeMutablePointer<Float>, _ width: Int) -> UnsafeMutablePointer<Float> {
            let q = allocateFloats(cap * width)
            q.update(from: p, count: cacheCount * width)
            p.deallocate()
            return q
        }
        cacheKeys = regrow(cacheKeys, dk)
        cacheValues = regrow(cacheValues, ldv)
        cacheDecay = regrow(cacheDecay, 1)
        cacheCapacity = cap
    }

    private func stepExponential(q: UnsafePointer<Float>, k: UnsafePointer<Float>, logAlpha: Float, decay: Bool,
                                 out: UnsafeMutablePointer<Float>) {
        let a = ctx.arith
        grow(to: cacheCount + 1)
        // Running decay: cacheDecay holds −g_j ≥ 0 for each cached key.
        if decay {
            for j in 0..<cacheCount { cacheDecay[j] -= logAlpha }
            a.op(cacheDecay, cacheCount)
        }
        (cacheKeys + cacheCount * dk).update(from: k, count: dk)
        (cacheValues + cacheCount * ldv).update(from: vaug, count: ldv)
        cacheDecay[cacheCount] = 0
        cacheCount += 1
        out.update(repeating: 0, count: ldv)
        var m = -Float.infinity
        var j0 = 0
        while j0 < cacheCount {
            let bc = Swift.min(RecurrentCore.cacheBlock, cacheCount - j0)
            a.gemm(transA: false, transB: true, m: 1, n: bc, k: dk, a: q, lda: dk, b: cacheKeys + j0 * dk, ldb: dk,
                   beta: 0, c: scores, ldc: bc)
            let blockMax = Rows.logits(ctx, scores, bc, li: 0, lj: decay ? UnsafePointer(cacheDecay + j0) : nil, tmp: tmp)
            let mNew = Swift.max(m, blockMax)
            if mNew != m && m != -.infinity { Rows.scale(ctx, out, ldv, by: a.op(exp(a.op(m - mNew)))) }
            m = mNew
            Rows.expShifted(ctx, scores, bc, m: m)
            a.gemm(transA: false, transB: false, m: 1, n: ldv, k: bc, a: scores, lda: bc,
                   b: cacheValues + j0 * ldv, ldb: ldv, beta: 1, c: out, ldc: ldv)
            j0 += bc
        }
        if !ctx.isSum { Rows.scale(ctx, out, ldv, by: a.op(exp(m))) }
    }
}

/// The recurrent form of SPEC §3 over a whole sequence: `RecurrentCore`
/// advanced token by token (`α_t = exp(a_t)`, or `exp(L_t − L_{t−1})` from
/// given prefix sums). Work `O(N·F·dv)` (`O(N²)` for the exponential KV cache).
enum RecurrentForm {
    static func run(_ seq: SequenceData, _ ctx: CoreContext) -> FormResult {
        let n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let s0 = Features.initialState(ctx, seq)
        let core = RecurrentCore(ctx, dk: dk, dv: dv, initialState: s0)
        s0?.deallocate()
        let acc = allocateFloats(n * ldv)
        defer { acc.deallocate() }
        let decay = seq.decay != nil
        for t in 0..<n {
            core.step(q: seq.q + t * dk, k: seq.k + t * dk, v: seq.v + t * dv,
                      logAlpha: seq.stepLogDecay(t, ctx.arith), decay: decay, out: acc + t * ldv)
        }
        let (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        var state: UnsafeMutablePointer<Float>? = nil
        if let f = core.features, let s = core.state {
            state = allocateFloats(f * ldv)
            state!.update(from: s, count: f * ldv)
        }
        return FormResult(o: o, state: state, notes: notes)
    }
}
