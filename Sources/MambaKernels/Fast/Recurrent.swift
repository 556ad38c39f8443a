#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// One streaming core: the state of the recurrent form of docs/MATH.md §3, advanced
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
/// Pure float16, sum-normalised cores (the row guard of `RowGuard`): the
/// binary16 state is carried scaled, `[S̃ | z̃] = 2^σ·[S | z]`, with `σ`
/// re-chosen at every step so that the larger of the decayed state and the
/// new term `φ(k_t)·[v_t | 1]ᵀ` has its largest element in `[1/2, 1)` (Float32
/// exponent arithmetic), the key normalised by a power of two before its features
/// are formed and the query likewise (`SequenceData.normaliseQueries`, here
/// per step so that the block form gets it too). All factors are powers of
/// two that multiply numerator and denominator alike, so a tiny state (small
/// keys) no longer rounds to zero and gives `0/0`, and a large one no longer
/// overflows the query product to ±Inf; the final state is
/// returned unscaled (`exportState`). Un-normalised cores are unchanged.
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
    /// Pure float16 sum-normalised cores: `state` holds `2^sigma·[S | z]`.
    private var sigma = 0
    private let guarded: Bool
    private let scaledQ: UnsafeMutablePointer<Float>, scaledK: UnsafeMutablePointer<Float>
    private let scaledV: UnsafeMutablePointer<Float>
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
        guarded = ctx.arith.pureHalf && RowGuard.active(ctx)
        scaledQ = allocateFloats(dk)
        scaledK = allocateFloats(dk)
        scaledV = allocateFloats(ctx.ldv(dv))
    }

    /// The state `[S | z]` (`F×ldv`, internal convention) unscaled, in a new
    /// buffer (nil for the exponential score).
    func exportState() -> UnsafeMutablePointer<Float>? {
        guard let f = features, let s = state else { return nil }
        let out = allocateFloats(f * ldv)
        out.update(from: s, count: f * ldv)
        if sigma != 0 { RecurrentCore.scale(ctx, out, f * ldv, byPowerOfTwo: -sigma, then: 1) }
        return out
    }

    deinit {
        phiQ.deallocate(); phiK.deallocate(); vaug.deallocate()
        state?.deallocate(); work?.deallocate(); scaledQ.deallocate(); scaledK.deallocate(); scaledV.deallocate()
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
        if guarded {
            stepGuarded(q: q, k: k, logAlpha: logAlpha, decay: decay, out: out)
            return
        }
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

    /// The pure float16 step with the scaled state (see the type).
    private func stepGuarded(q: UnsafePointer<Float>, k: UnsafePointer<Float>, logAlpha: Float, decay: Bool,
                             out: UnsafeMutablePointer<Float>) {
        let a = ctx.arith, f = features!, ldv = ldv, s = state!, w = work!
        let p = ctx.power
        func normalised(_ x: UnsafePointer<Float>, into buf: UnsafeMutablePointer<Float>) -> Int {
            var m: Float = 0
            for d in 0..<dk { m = Swift.max(m, abs(x[d])) }
            let kappa = RowGuard.lift(m)
            let g = RowGuard.power(kappa)
            for d in 0..<dk { buf[d] = x[d] * g }
            return kappa
        }
        _ = normalised(q, into: scaledQ)
        let kk = normalised(k, into: scaledK)
        var c = ctx.featureScale
        Features.columns(ctx, x: scaledK, rows: 1, dk: dk, out: phiK, rowScale: nil)
        Features.columns(ctx, x: scaledQ, rows: 1, dk: dk, out: phiQ, rowScale: &c)
        // The decay as a binary16 significand times 2^e, e folded into σ: exp(a_t)
        // below binary16's range (a_t < −17.3) would flush to 0 and turn a tiny
        // but exact state into 0/0 (property tests, seeds 0-2: relu-linear).
        if decay {
            let af = exp(logAlpha)
            if af > 0, af.isFinite {
                let e = Int(af.exponent)
                Self.scale(ctx, s, f * ldv, byPowerOfTwo: 0, then: a.op(af * RowGuard.power(-e)))
                sigma -= e
            } else {
                Rows.scale(ctx, s, f * ldv, by: flushed(a.op(af)))
            }
        }
        // log2 magnitudes of the decayed state and of the new term, unscaled.
        var ms: Float = 0, mk: Float = 0, mv: Float = 0
        for e in 0..<(f * ldv) { ms = Swift.max(ms, abs(s[e])) }
        for r in 0..<f { mk = Swift.max(mk, abs(phiK[r])) }
        for j in 0..<ldv { mv = Swift.max(mv, abs(vaug[j])) }
        var top: Int? = nil
        if ms > 0, ms.isFinite { top = Int(ms.exponent) - sigma }
        if mk * mv > 0, (mk * mv).isFinite { top = Swift.max(top ?? Int.min, Int((mk * mv).exponent) - p * kk) }
        if let top {
            // The scaled state's largest element goes to [1/2, 1): up for a tiny
            // state (no 0/0), and down for a large one, so that the F-term query
            // product (|φ(q̃)| ≤ 4 after the key/query normalisation) stays inside
            // binary16's range where the unscaled one overflowed to ±Inf (property
            // tests, seeds 0-2: squared sum cores).
            let newSigma = -top - 1
            if newSigma != sigma {
                Self.scale(ctx, s, f * ldv, byPowerOfTwo: newSigma - sigma, then: 1)
                sigma = newSigma
            }
        }
        // 2^(σ − p·κ), clamped to Float32's range: past it the new term's features
        // are all zero (σ was set by the state alone), and 0·Inf would be NaN.
        let vscale = RowGuard.power(Swift.max(-149, Swift.min(sigma - p * kk, 127)))
        for j in 0..<ldv { scaledV[j] = vaug[j] * vscale }
        a.op(scaledV, ldv)
        for r in 0..<f {
            let kf = phiK[r], wr = w + r * ldv
            for j in 0..<ldv { wr[j] = kf * scaledV[j] }
        }
        a.op(w, f * ldv)
        for e in 0..<(f * ldv) { s[e] += w[e] }
        a.op(s, f * ldv)
        a.gemm(transA: false, transB: false, m: 1, n: ldv, k: f, a: phiQ, lda: f, b: s, ldb: ldv,
               beta: 0, c: out, ldc: ldv)
    }

    /// `x ← fl(x·2^k·c)` for any integer `k` (applied in steps that stay
    /// inside Float32's exponent range; a state scaled past it is 0 or ±Inf,
    /// as its unscaled value would be), `c` a binary16 value.
    private static func scale(_ ctx: CoreContext, _ x: UnsafeMutablePointer<Float>, _ n: Int,
                              byPowerOfTwo k: Int, then c: Float) {
        var rest = k
        while rest != 0 {
            let step = Swift.max(-120, Swift.min(rest, 120))
            let g = RowGuard.power(step)
            for i in 0..<n { x[i] *= g }
            rest -= step
        }
        if c != 1 { Rows.scale(ctx, x, n, by: c) } else { ctx.arith.op(x, n) }
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

/// The recurrent form of docs/MATH.md §3 over a whole sequence: `RecurrentCore`
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
            // A 16-bit state cache stores the updated state after each token (KernelOptions.stateStorage).
            if let st = core.state, let f = core.features, !ctx.arith.pureHalf {
                ctx.options.stateStorage.format.round(st, f * ldv)
            }
        }
        let (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        return FormResult(o: o, state: core.exportState(), notes: notes)
    }
}
