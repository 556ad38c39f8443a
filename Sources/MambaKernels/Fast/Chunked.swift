#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// The chunked (SSD) form of SPEC §3, Float32/Float16.
///
/// Chunks of `C = options.chunkSize` tokens (the last may be shorter). Within
/// the chunk starting at `c₀` the decay uses the chunk-local prefix sums
/// `ℓ_i = a_{c₀} + … + a_i` (summed in Float32 from per-step decays, or
/// `L_i − L_{c₀−1}` from given prefix sums), so no global prefix sum and no
/// cancellation between large sums occurs. Per chunk, five `cblas_sgemm`
/// calls:
///
/// 1. `X = Q_c·K_cᵀ` (`C×C×dk`);
/// 2. `[num | den] = W·[V_c | 1]` with `W_ij = f(s·X_ij)·exp(ℓ_i − ℓ_j)` on
///    `j ≤ i` (`C×(dv+1)×C`);
/// 3. `+= (c·exp(ℓ_i)·φ(q_i))·[S | z]` (`C×(dv+1)×F`);
/// 4. features `φ(K_c)` and decay-scaled values `exp(ℓ_last − ℓ_j)·[v_j | 1]`;
/// 5. `[S | z] ← exp(ℓ_last)·[S | z] + φ(K_c)ᵀ·(scaled values)`
///    (`F×(dv+1)×C`, the decay of the carried state is sgemm's `beta`).
///
/// `φ` is the identity (linear; relu-linear after ReLU on q, k) or the packed
/// second-order map (`F = dk(dk+1)/2`, √2 cross weights; full `dk²` with
/// `options.fullSecondOrderState`), `c = s` or `s²`. The normaliser `z`
/// travels as an extra column of the state, so sum normalisation costs one
/// extra column in every product. Work is `O(N·(C·(dk+dv) + F·dv))`, linear in
/// `N`; memory `O(C·F + F·dv)` besides inputs and output. Decay factors and
/// exponential-score ratios below 2⁻⁶⁰ are flushed to zero (see `decayFlushThreshold`).
///
/// Exponential score (no finite state): an honest blocked KV-cache
/// computation, not a state recurrence — each query chunk visits every
/// earlier key chunk (quadratic work) with an online row maximum; the decay
/// between query `i` (chunk `c`) and key `j` (chunk `c' < c`) is assembled
/// from chunk-local pieces `ℓ_i + Σ_{c'<c''<c} T_{c''} + (T_{c'} − ℓ_j)`
/// (`T` = chunk total), never from a global prefix sum.
enum ChunkedForm {
    static func run(_ seq: SequenceData, _ ctx: CoreContext) -> FormResult {
        if ctx.isExponential { return runExponential(seq, ctx) }
        let a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let f = ctx.internalFeatures(dk)!
        let chunk = Swift.max(1, Swift.min(ctx.options.chunkSize, Swift.max(n, 1)))
        let values = seq.augmentedValues(ldv: ldv)
        let acc = allocateFloats(n * ldv)
        var hasState = seq.s0 != nil
        let state = Features.initialState(ctx, seq) ?? allocateFloats(f * ldv, fill: 0)
        let x = allocateFloats(chunk * chunk), ell = allocateFloats(chunk), tmp = allocateFloats(chunk)
        let phi = allocateFloats(chunk * f), vd = allocateFloats(chunk * ldv), sc = allocateFloats(chunk)
        defer {
            values.deallocate(); acc.deallocate()
            x.deallocate(); ell.deallocate(); tmp.deallocate(); phi.deallocate(); vd.deallocate(); sc.deallocate()
        }
        let decay = seq.decay != nil
        var c0 = 0
        while c0 < n {
            let cc = Swift.min(chunk, n - c0)
            if decay { seq.localPrefix(start: c0, count: cc, into: ell, a) }
            let qc = seq.q + c0 * dk, kc = seq.k + c0 * dk, vc = values + c0 * ldv, out = acc + c0 * ldv
            // Intra-chunk quadratic.
            a.gemm(transA: false, transB: true, m: cc, n: cc, k: dk, a: qc, lda: dk, b: kc, ldb: dk,
                   beta: 0, c: x, ldc: cc)
            for i in 0..<cc {
                let row = x + i * cc
                Rows.weights(ctx, row, i + 1, li: decay ? ell[i] : 0, lj: decay ? UnsafePointer(ell) : nil, tmp: tmp)
                (row + i + 1).update(repeating: 0, count: cc - i - 1)
            }
            a.gemm(transA: false, transB: false, m: cc, n: ldv, k: cc, a: x, lda: cc, b: vc, ldb: ldv,
                   beta: 0, c: out, ldc: ldv)
            // Inter-chunk: queries against the carried state.
            if hasState {
                for i in 0..<cc { sc[i] = decay ? a.op(ctx.featureScale * flushed(a.op(exp(ell[i])))) : ctx.featureScale }
                Features.columns(ctx, x: qc, rows: cc, dk: dk, out: phi, rowScale: sc)
                a.gemm(transA: true, transB: false, m: cc, n: ldv, k: f, a: phi, lda: cc, b: state, ldb: ldv,
                       beta: 1, c: out, ldc: ldv)
            }
            // State carry.
            Features.columns(ctx, x: kc, rows: cc, dk: dk, out: phi, rowScale: nil)
            var vals = UnsafePointer(vc)
            var beta: Float = hasState ? 1 : 0
            if decay {
                let last = ell[cc - 1]
                for j in 0..<cc {
                    let g = flushed(a.op(exp(a.op(last - ell[j]))))
                    for col in 0..<ldv { vd[j * ldv + col] = vc[j * ldv + col] * g }
                }
                a.op(vd, cc * ldv)
                vals = UnsafePointer(vd)
                if hasState { beta = flushed(a.op(exp(last))) }
            }
            a.gemm(transA: false, transB: false, m: f, n: ldv, k: cc, a: phi, lda: cc, b: vals, ldb: ldv,
                   beta: beta, c: state, ldc: ldv)
            hasState = true
            c0 += cc
        }
        let (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        return FormResult(o: o, state: state, notes: notes)
    }

    /// Blocked KV-cache attention over chunks for the exponential score (see
    /// the type's documentation).
    static func runExponential(_ seq: SequenceData, _ ctx: CoreContext) -> FormResult {
        let a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let chunk = Swift.max(1, Swift.min(ctx.options.chunkSize, Swift.max(n, 1)))
        let values = seq.augmentedValues(ldv: ldv)
        let acc = allocateFloats(n * ldv, fill: 0)
        let x = allocateFloats(chunk * chunk), ellq = allocateFloats(chunk), ellk = allocateFloats(chunk)
        let tmp = allocateFloats(chunk)
        defer { values.deallocate(); acc.deallocate(); x.deallocate(); ellq.deallocate(); ellk.deallocate(); tmp.deallocate() }
        let decay = seq.decay != nil
        var q0 = 0
        while q0 < n {
            let cq = Swift.min(chunk, n - q0)
            if decay { seq.localPrefix(start: q0, count: cq, into: ellq, a) }
            var m = [Float](repeating: -.infinity, count: cq)
            let out = acc + q0 * ldv
            var between: Float = 0  // Σ of chunk totals strictly between key and query chunk
            var k0 = q0
            while k0 >= 0 {
                let kc = Swift.min(chunk, n - k0)
                let diagonal = k0 == q0
                if decay && !diagonal { seq.localPrefix(start: k0, count: kc, into: ellk, a) }
                a.gemm(transA: false, transB: true, m: cq, n: kc, k: dk, a: seq.q + q0 * dk, lda: dk,
                       b: seq.k + k0 * dk, ldb: dk, beta: 0, c: x, ldc: kc)
                let total: Float = decay && !diagonal ? ellk[kc - 1] : 0
                for i in 0..<cq {
                    let row = x + i * kc
                    let cnt = diagonal ? i + 1 : kc
                    var li: Float = 0
                    var lj: UnsafePointer<Float>? = nil
                    if decay {
                        li = diagonal ? ellq[i] : a.op(a.op(ellq[i] + between) + total)
                        lj = UnsafePointer(diagonal ? ellq : ellk)
                    }
                    let rowMax = Rows.logits(ctx, row, cnt, li: li, lj: lj, tmp: tmp)
                    let mNew = Swift.max(m[i], rowMax)
                    if mNew != m[i] && m[i] != -.infinity {
                        Rows.scale(ctx, out + i * ldv, ldv, by: a.op(exp(a.op(m[i] - mNew))))
                    }
                    m[i] = mNew
                    Rows.expShifted(ctx, row, cnt, m: mNew)
                    (row + cnt).update(repeating: 0, count: kc - cnt)
                }
                a.gemm(transA: false, transB: false, m: cq, n: ldv, k: kc, a: x, lda: kc, b: values + k0 * ldv,
                       ldb: ldv, beta: 1, c: out, ldc: ldv)
                if !diagonal { between = a.op(between + total) }
                k0 -= chunk
            }
            if !ctx.isSum {
                for i in 0..<cq { Rows.scale(ctx, out + i * ldv, ldv, by: a.op(exp(m[i]))) }
            }
            q0 += cq
        }
        let (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        return FormResult(o: o, state: nil, notes: notes)
    }
}
