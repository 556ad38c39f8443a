#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// The chunked (SSD) form of docs/MATH.md §3, Float32/Float16.
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
/// Sum-normalised feature-map cores in `float16Acc32` and `float16`: the row
/// guard (`RowGuard`) lifts each row whose intra-chunk weights and
/// inter-chunk query features `c·exp(ℓ_i)·φ(q_i)` are all below 1/2 by one
/// power of two `2^{γ_i}` — weights and features alike, so numerator and
/// denominator carry the same factor — and the state copy that multiplies
/// the queries by `2^η` (features by `2^{−η}`), before they are stored in
/// binary16; tiny rows therefore do not round to `0/0`. In pure float16,
/// whose carried state is itself binary16, the state is also carried scaled
/// (`2^σ·[S | z]`, keys normalised by powers of two, `carryScaled`) and
/// returned unscaled.
///
/// Two threads (`ChunkedPipeline`, `KernelOptions.concurrentStateCarry`): the
/// carries (steps 4–5) run on a second thread while the calling thread forms
/// each chunk's outputs (steps 1–3) from the state before it; the same
/// operations in the same order, so bit-identical.
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
        let n = seq.n, dv = seq.dv, ldv = ctx.ldv(dv), f = ctx.internalFeatures(seq.dk)!
        let chunk = Swift.max(1, Swift.min(ctx.options.chunkSize, Swift.max(n, 1)))
        let values = seq.augmentedValues(ldv: ldv)
        let acc = allocateFloats(n * ldv)
        defer { values.deallocate(); acc.deallocate() }
        // A reset step starts a chunk of its own (`ChunkPlan`, shared with the backward).
        let plan = ChunkPlan(seq, ctx.arith, chunk: chunk)
        let initial = Features.initialState(ctx, seq)
        let carried: (state: UnsafeMutablePointer<Float>, sigma: Int)
        if ChunkedPipeline.worthwhile(ctx, chunks: plan.count, chunk: chunk, stateSize: f * ldv),
           let done = ChunkedPipeline.run(seq, ctx, plan: plan, chunk: chunk, values: values, acc: acc, initial: initial) {
            carried = done
        } else {
            let state = initial ?? allocateFloats(f * ldv, fill: 0)
            var hasState = initial != nil, sigma = 0
            let query = QuerySide(ctx, seq, chunk: chunk), carry = CarrySide(ctx, seq, chunk: chunk)
            for c in 0..<plan.count {
                if seq.decay != nil, plan.reset(c), hasState {
                    state.update(repeating: 0, count: f * ldv)
                    hasState = false
                    sigma = 0
                }
                query.outputs(plan, c, state: hasState ? UnsafePointer(state) : nil, sigma: sigma, values: values, acc: acc)
                carry.carry(plan, c, hasState: hasState, state: state, sigma: &sigma, values: values,
                            prefix: UnsafePointer(query.ell))
                hasState = true
            }
            carried = (state, sigma)
        }
        let state = carried.state
        if carried.sigma != 0 { Rows.scale(ctx, state, f * ldv, by: RowGuard.power(-carried.sigma)) }
        let (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        return FormResult(o: o, state: state, notes: notes)
    }

    /// One chunk's outputs given the state before it (steps 1–3): the intra-chunk
    /// quadratic and the queries against the carried state, into `acc`. Buffers
    /// of one thread.
    final class QuerySide {
        let ctx: CoreContext, seq: SequenceData
        let x: UnsafeMutablePointer<Float>, ell: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>
        let phi: UnsafeMutablePointer<Float>, sc: UnsafeMutablePointer<Float>, dbuf: UnsafeMutablePointer<Float>
        var shifts: [Int]

        init(_ ctx: CoreContext, _ seq: SequenceData, chunk: Int) {
            let f = ctx.internalFeatures(seq.dk)!
            (self.ctx, self.seq) = (ctx, seq)
            x = allocateFloats(chunk * chunk); ell = allocateFloats(chunk); tmp = allocateFloats(chunk)
            phi = allocateFloats(chunk * f); sc = allocateFloats(chunk); dbuf = allocateFloats(chunk)
            shifts = [Int](repeating: 0, count: chunk)
        }

        deinit { x.deallocate(); ell.deallocate(); tmp.deallocate(); phi.deallocate(); sc.deallocate(); dbuf.deallocate() }

        /// `state`: `[S | z]` before chunk `c` (scaled by `2^sigma` in pure float16), nil for none.
        func outputs(_ plan: ChunkPlan, _ c: Int, state: UnsafePointer<Float>?, sigma: Int,
                     values: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>) {
            let a = ctx.arith, dk = seq.dk, ldv = ctx.ldv(seq.dv), f = ctx.internalFeatures(dk)!
            let c0 = plan.start(c), cc = plan.size(c), decay = seq.decay != nil
            if decay { seq.localPrefix(start: c0, count: cc, into: ell, a, skipFirst: plan.reset(c), scan: ctx.options.prefixScan) }
            let guarded = RowGuard.active(ctx)
            let qc = seq.q + c0 * dk, kc = seq.k + c0 * dk, vc = values + c0 * ldv, out = acc + c0 * ldv
            // Query-side factors c·exp(ℓ_i) of the inter-chunk term.
            if state != nil { ChunkedForm.queryScales(ctx, ell: decay ? UnsafePointer(ell) : nil, rows: cc, into: sc) }
            // Row guard (binary16 storage, sum normalisation): the state copy
            // multiplying the queries is lifted by 2^η, each row by 2^γ_i.
            let eta = guarded && state != nil ? RowGuard.stateLift(state!, f * ldv) : 0
            let shift = eta + sigma  // features carry 2^{γ_i − η − σ}
            // Intra-chunk quadratic.
            a.gemm(transA: false, transB: true, m: cc, n: cc, k: dk, a: qc, lda: dk, b: kc, ldb: dk,
                   beta: 0, c: x, ldc: cc)
            for i in 0..<cc {
                let row = x + i * cc
                if guarded {
                    var d: UnsafePointer<Float>? = nil
                    if decay {
                        for j in 0...i { dbuf[j] = ell[i] - ell[j] }
                        a.op(dbuf, i + 1)
                        d = UnsafePointer(dbuf)
                    }
                    var other: Float = 0, cap = Int.max
                    if state != nil {
                        other = sc[i] * RowGuard.featureMax(ctx, qc + i * dk, dk: dk) * RowGuard.power(-shift)
                        cap = RowGuard.cap(ctx, base: sc[i], eta: shift)
                    }
                    shifts[i] = Rows.guardedWeights(ctx, row, i + 1, exponents: d, other: other, cap: cap, tmp: tmp)
                } else {
                    Rows.weights(ctx, row, i + 1, li: decay ? ell[i] : 0, lj: decay ? UnsafePointer(ell) : nil, tmp: tmp)
                }
                (row + i + 1).update(repeating: 0, count: cc - i - 1)
            }
            a.gemm(transA: false, transB: false, m: cc, n: ldv, k: cc, a: x, lda: cc, b: vc, ldb: ldv,
                   beta: 0, c: out, ldc: ldv)
            // Inter-chunk: queries against the carried state.
            if let state {
                if guarded {
                    for i in 0..<cc { sc[i] = a.op(sc[i] * RowGuard.power(shifts[i] - shift)) }
                }
                Features.columns(ctx, x: qc, rows: cc, dk: dk, out: phi, rowScale: sc)
                a.gemm(transA: true, transB: false, m: cc, n: ldv, k: f, a: phi, lda: cc, b: state, ldb: ldv,
                       beta: 1, c: out, ldc: ldv, scaleB: RowGuard.power(eta))
            }
        }
    }

    /// The state carry over one chunk (steps 4–5): `[S | z] ← exp(ℓ_last)·[S | z] + φ(K_c)ᵀ·(decayed values)`,
    /// in place. Buffers of one thread.
    final class CarrySide {
        let ctx: CoreContext, seq: SequenceData
        let ell: UnsafeMutablePointer<Float>, phi: UnsafeMutablePointer<Float>, vd: UnsafeMutablePointer<Float>
        let ks: UnsafeMutablePointer<Float>

        init(_ ctx: CoreContext, _ seq: SequenceData, chunk: Int) {
            let f = ctx.internalFeatures(seq.dk)!, ldv = ctx.ldv(seq.dv)
            (self.ctx, self.seq) = (ctx, seq)
            ell = allocateFloats(chunk); phi = allocateFloats(chunk * f); vd = allocateFloats(chunk * ldv)
            // Pure float16 with the row guard: the binary16 state is carried as
            // 2^σ·[S | z] and each key is normalised before its features are formed.
            ks = allocateFloats(RowGuard.active(ctx) && ctx.arith.pureHalf ? chunk * seq.dk : 0)
        }

        deinit { ell.deallocate(); phi.deallocate(); vd.deallocate(); ks.deallocate() }

        /// `hasState == false`: the state before chunk `c` is none (its contents are not read).
        /// `prefix`: chunk `c`'s local prefix sums if the caller has them (the single-thread
        /// loop's query side just formed them), else formed here.
        func carry(_ plan: ChunkPlan, _ c: Int, hasState: Bool, state: UnsafeMutablePointer<Float>, sigma: inout Int,
                   values: UnsafePointer<Float>, prefix: UnsafePointer<Float>? = nil) {
            let a = ctx.arith, dk = seq.dk, ldv = ctx.ldv(seq.dv), f = ctx.internalFeatures(dk)!
            let c0 = plan.start(c), cc = plan.size(c), decay = seq.decay != nil
            var ell = UnsafePointer(self.ell)
            if let prefix { ell = prefix } else if decay {
                seq.localPrefix(start: c0, count: cc, into: self.ell, a, skipFirst: plan.reset(c), scan: ctx.options.prefixScan)
            }
            let kc = seq.k + c0 * dk, vc = values + c0 * ldv
            if RowGuard.active(ctx) && a.pureHalf {
                ChunkedForm.carryScaled(ctx, kc: kc, vc: vc, rows: cc, dk: dk, ldv: ldv,
                                        ell: decay ? UnsafePointer(ell) : nil, hasState: hasState, state: state,
                                        sigma: &sigma, ks: ks, phi: phi, vd: vd)
                return
            }
            Features.columns(ctx, x: kc, rows: cc, dk: dk, out: phi, rowScale: nil)
            var vals = vc
            var beta: Float = hasState ? 1 : 0
            if decay {
                ChunkedForm.decayedValues(ctx, vc, rows: cc, ldv: ldv, ell: ell, into: vd)
                vals = UnsafePointer(vd)
                if hasState { beta = flushed(a.op(exp(ell[cc - 1]))) }
            }
            a.gemm(transA: false, transB: false, m: f, n: ldv, k: cc, a: phi, lda: cc, b: vals, ldb: ldv,
                   beta: beta, c: state, ldc: ldv)
            ctx.options.stateStorage.format.round(state, f * ldv)   // a 16-bit state cache (KernelOptions)
        }
    }

    /// Pure float16 state carry with the row guard: `state` holds
    /// `2^σ·[S | z]`. Each key `k_j` is multiplied by `2^{κ_j}`
    /// (`κ_j = RowGuard.lift(max|k_j|)`) before `φ` is formed, and its decayed
    /// value row `exp(ℓ_last − ℓ_j)·[v_j | 1]` by `2^{σ' − p·κ_j}` (`p` = 2
    /// squared, 1 linear), so every term enters as `2^{σ'}·φ(k_j)·[v_j | 1]ᵀ`;
    /// `σ' ≥ 0` lifts the larger of the decayed state and the largest new
    /// term into `[1/2, 1)` (Float32 exponent arithmetic), and the carried state
    /// is rescaled from `2^σ` to `2^{σ'}` first. All factors are powers of two:
    /// a tiny state (small keys) no longer underflows binary16.
    static func carryScaled(_ ctx: CoreContext, kc: UnsafePointer<Float>, vc: UnsafePointer<Float>, rows cc: Int,
                            dk: Int, ldv: Int, ell: UnsafePointer<Float>?, hasState: Bool,
                            state: UnsafeMutablePointer<Float>, sigma: inout Int, ks: UnsafeMutablePointer<Float>,
                            phi: UnsafeMutablePointer<Float>, vd: UnsafeMutablePointer<Float>) {
        let a = ctx.arith, f = ctx.internalFeatures(dk)!, p = ctx.power
        var kappa = [Int](repeating: 0, count: cc)
        for j in 0..<cc {
            var m: Float = 0
            for d in 0..<dk { m = Swift.max(m, abs(kc[j * dk + d])) }
            kappa[j] = RowGuard.lift(m)
            let g = RowGuard.power(kappa[j])
            for d in 0..<dk { ks[j * dk + d] = kc[j * dk + d] * g }
        }
        Features.columns(ctx, x: ks, rows: cc, dk: dk, out: phi, rowScale: nil)
        var beta: Float = hasState ? 1 : 0
        if let ell {
            decayedValues(ctx, vc, rows: cc, ldv: ldv, ell: ell, into: vd)
            if hasState { beta = flushed(a.op(exp(ell[cc - 1]))) }
        } else {
            vd.update(from: vc, count: cc * ldv)
        }
        // log2 magnitudes (unscaled) of the decayed state and of the new terms.
        var top: Int? = nil
        if hasState {
            let ms = maxMagnitude(state, f * ldv)
            if ms * beta > 0, (ms * beta).isFinite { top = Int((ms * beta).exponent) - sigma }
        }
        // Column maxima of φ (f × cc) in one row-major sweep.
        var mks = [Float](repeating: 0, count: cc)
        mks.withUnsafeMutableBufferPointer { mk in
            for r in 0..<f { let row = phi + r * cc; for j in 0..<cc { mk[j] = Swift.max(mk[j], abs(row[j])) } }
        }
        for j in 0..<cc {
            let mk = mks[j]
            var mv: Float = 0
            for col in 0..<ldv { mv = Swift.max(mv, abs(vd[j * ldv + col])) }
            if mk * mv > 0, (mk * mv).isFinite { top = Swift.max(top ?? Int.min, Int((mk * mv).exponent) - p * kappa[j]) }
        }
        let newSigma = top.map { $0 <= -2 ? Swift.min(-$0 - 1, 126) : 0 } ?? sigma
        if hasState && newSigma != sigma { Rows.scale(ctx, state, f * ldv, by: RowGuard.power(newSigma - sigma)) }
        sigma = newSigma
        for j in 0..<cc {
            let g = RowGuard.power(sigma - p * kappa[j])
            for col in 0..<ldv { vd[j * ldv + col] *= g }
        }
        a.op(vd, cc * ldv)
        a.gemm(transA: false, transB: false, m: f, n: ldv, k: cc, a: phi, lda: cc, b: vd, ldb: ldv,
               beta: beta, c: state, ldc: ldv)
    }

    /// `max |x_e|` over `count` values, NaN ignored (as `Swift.max(m, |x|)`
    /// from 0 ignores it), sixteen lanes at a time (`v > m ? v : m` is false
    /// for a NaN `v`, so NaN is ignored there too): the maximum of a set does
    /// not depend on the order, so the result is the sequential loop's.
    static func maxMagnitude(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var lanes = SIMD16<Float>(repeating: 0)
        var e = 0
        let raw = UnsafeRawPointer(x)
        while e + 16 <= count {
            let bits = raw.loadUnaligned(fromByteOffset: e * 4, as: SIMD16<UInt32>.self) & 0x7FFF_FFFF
            let a = unsafeBitCast(bits, to: SIMD16<Float>.self)  // |x|, NaN stays NaN
            lanes.replace(with: a, where: a .> lanes)
            e += 16
        }
        var m = lanes.max()
        while e < count { m = Swift.max(m, abs(x[e])); e += 1 }
        return m
    }

    /// Blocked KV-cache attention over chunks for the exponential score (see
    /// the type's documentation).
    static func runExponential(_ seq: SequenceData, _ ctx: CoreContext) -> FormResult {
        let n = seq.n, dv = seq.dv, ldv = ctx.ldv(dv)
        let chunk = Swift.max(1, Swift.min(ctx.options.chunkSize, Swift.max(n, 1)))
        let values = seq.augmentedValues(ldv: ldv)
        let acc = allocateFloats(n * ldv, fill: 0), m = allocateFloats(Swift.max(n, 1))
        defer { values.deallocate(); acc.deallocate(); m.deallocate() }
        ChunkPairs(seq, ctx, chunk: chunk).forwardSweep(values: values, acc: acc, m: m, accumulate: true)
        if !ctx.isSum {
            for i in 0..<n { Rows.scale(ctx, acc + i * ldv, ldv, by: ctx.arith.op(exp(m[i]))) }
        }
        let (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        return FormResult(o: o, state: nil, notes: notes)
    }

    /// The carry's decay-scaled values `vd_j = e^{ℓ_last − ℓ_j}·ṽ_j`
    /// (`rows × ldv`, one rounding) from the chunk-local log decays `ell`,
    /// with the factors `e^{ℓ_last − ℓ_j}` also written to `factors` when
    /// given; shared by the forward carries and the backward's recomputed
    /// carry (`ChunkedBackward`).
    static func decayedValues(_ ctx: CoreContext, _ vc: UnsafePointer<Float>, rows cc: Int, ldv: Int,
                              ell: UnsafePointer<Float>, into vd: UnsafeMutablePointer<Float>,
                              factors: UnsafeMutablePointer<Float>? = nil) {
        let a = ctx.arith, last = ell[cc - 1]
        for j in 0..<cc {
            let g = flushed(a.op(exp(a.op(last - ell[j]))))
            factors?[j] = g
            for col in 0..<ldv { vd[j * ldv + col] = vc[j * ldv + col] * g }
        }
        a.op(vd, cc * ldv)
    }

    /// The query-side factors `c·e^{ℓ_i}` of the inter-chunk term (`c`
    /// without decay), into `sc`; shared with `ChunkedBackward`.
    static func queryScales(_ ctx: CoreContext, ell: UnsafePointer<Float>?, rows cc: Int,
                            into sc: UnsafeMutablePointer<Float>) {
        let a = ctx.arith
        for i in 0..<cc { sc[i] = ell.map { a.op(ctx.featureScale * flushed(a.op(exp($0[i])))) } ?? ctx.featureScale }
    }
}

/// The chunk boundaries of the chunked form, computed once and used by the
/// forward (`ChunkedForm`, both scores through `ChunkPairs` for the
/// exponential one) and by the backward (`ChunkedBackward`), so forward and
/// backward cannot disagree.
///
/// Chunks hold at most `chunk` tokens; without decay (or without resets)
/// they start at `0, C, 2C, …`. A **reset step** — a per-step log-decay
/// below `resetLogDecay` (exp(a_t) below the flush threshold, e.g.
/// a = −1e9, the "forget everything" value) — always starts a chunk of its
/// own: everything before it decays to exactly 0, so that chunk has no state
/// before it (zero; the backward passes a zero state gradient to earlier
/// chunks), and its local prefix sums start *after* the step
/// (`localPrefix(…, skipFirst: true)`). Summing it into ℓ would leave
/// ℓ_i − ℓ_j = (−1e9 + x_i) − (−1e9 + x_j), which loses every small decay
/// after the step (errors O(1) measured).
struct ChunkPlan {
    /// Chunk `c` is `starts[c] ..< starts[c + 1]`; `starts.last == n`.
    private(set) var starts: [Int] = [0]
    /// Whether chunk `c` begins with a reset step.
    private(set) var resets: [Bool] = []

    init(_ seq: SequenceData, _ a: Arithmetic, chunk: Int) {
        let n = seq.n, decay = seq.decay != nil
        var c0 = 0
        while c0 < n {
            var cc = Swift.min(chunk, n - c0)
            var reset = false
            if decay {
                for t in (c0 + 1)..<(c0 + cc) where seq.stepLogDecay(t, a) < resetLogDecay { cc = t - c0; break }
                reset = seq.stepLogDecay(c0, a) < resetLogDecay
            }
            resets.append(reset)
            c0 += cc
            starts.append(c0)
        }
    }

    /// The number of chunks.
    var count: Int { resets.count }
    /// The first token of chunk `c`.
    func start(_ c: Int) -> Int { starts[c] }
    /// The number of tokens of chunk `c` (at most `chunk`).
    func size(_ c: Int) -> Int { starts[c + 1] - starts[c] }
    /// Whether chunk `c` begins with a reset step (no state before it; its
    /// local sums skip the step).
    func reset(_ c: Int) -> Bool { resets[c] }
}

/// The (query chunk, key chunk) pairs of the exponential score's blocked
/// KV-cache form, visited from the diagonal backwards with chunk-local
/// decay assembly: the decay between query `i` (chunk `c`) and key `j`
/// (chunk `c' < c`) is `ℓ_i + Σ_{c'<c''<c} T_{c''} + (T_{c'} − ℓ_j)`
/// (`T` = chunk total), never a global prefix sum. One implementation for
/// `ChunkedForm.runExponential` and both sweeps of
/// `ChunkedBackward.runExponential`, so forward and backward see the same
/// log decays, logits and row maxima.
struct ChunkPairs {
    let seq: SequenceData
    let ctx: CoreContext
    let chunk: Int

    init(_ seq: SequenceData, _ ctx: CoreContext, chunk: Int) {
        self.seq = seq
        self.ctx = ctx
        self.chunk = chunk
    }

    /// Calls `body(q0, cq, k0, kc, diagonal, li, lj)` for every pair: `li`
    /// (`cq`, rows) and `lj` (`kc`, columns) are the log decays of the pair
    /// block, used as `li_r − lj_j` (nil without decay).
    ///
    /// The chunks are those of `ChunkPlan`: a chunk that starts with a reset
    /// step skips it in its local sums, and no query visits a key chunk
    /// before it (those weights are exactly 0).
    func visit(_ body: (_ q0: Int, _ cq: Int, _ k0: Int, _ kc: Int, _ diagonal: Bool,
                        _ li: UnsafePointer<Float>?, _ lj: UnsafePointer<Float>?) -> Void) {
        let a = ctx.arith, decay = seq.decay != nil
        let plan = ChunkPlan(seq, a, chunk: chunk)
        let ellq = allocateFloats(chunk), ellk = allocateFloats(chunk), li = allocateFloats(chunk)
        defer { ellq.deallocate(); ellk.deallocate(); li.deallocate() }
        for qc in 0..<plan.count {
            let q0 = plan.start(qc), cq = plan.size(qc)
            if decay { seq.localPrefix(start: q0, count: cq, into: ellq, a, skipFirst: plan.reset(qc), scan: ctx.options.prefixScan) }
            var between: Float = 0  // Σ of chunk totals strictly between key and query chunk
            var kb = qc
            while kb >= 0 {
                let k0 = plan.start(kb), kc = plan.size(kb)
                let diagonal = kb == qc
                if decay && !diagonal {
                    seq.localPrefix(start: k0, count: kc, into: ellk, a, skipFirst: plan.reset(kb), scan: ctx.options.prefixScan)
                }
                let total: Float = decay && !diagonal ? ellk[kc - 1] : 0
                if decay {
                    for i in 0..<cq { li[i] = diagonal ? ellq[i] : a.op(a.op(ellq[i] + between) + total) }
                }
                body(q0, cq, k0, kc, diagonal, decay ? UnsafePointer(li) : nil,
                     decay ? UnsafePointer(diagonal ? ellq : ellk) : nil)
                if !diagonal { between = a.op(between + total) }
                if plan.reset(kb) { break }  // everything before a reset step decays to 0
                kb -= 1
            }
        }
    }

    /// The forward sweep with the online row maximum: `m` (`n`, filled here)
    /// the running maxima of the logits, `acc` (`n×ldv`, zeroed by the
    /// caller) the shifted rows `e^{−m_i}·[num_i | den_i]` (un-normalised:
    /// `e^{−m_i}·num_i`). `accumulate == false` (the un-normalised backward,
    /// which only needs `m`) skips the weights and the value products.
    func forwardSweep(values: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
                      accumulate: Bool) {
        let a = ctx.arith, dk = seq.dk, ldv = ctx.ldv(seq.dv), accumulate = accumulate || ctx.isSum
        let x = allocateFloats(chunk * chunk), tmp = allocateFloats(chunk)
        defer { x.deallocate(); tmp.deallocate() }
        m.update(repeating: -.infinity, count: seq.n)
        visit { q0, cq, k0, kc, diagonal, li, lj in
            a.gemm(transA: false, transB: true, m: cq, n: kc, k: dk, a: seq.q + q0 * dk, lda: dk,
                   b: seq.k + k0 * dk, ldb: dk, beta: 0, c: x, ldc: kc)
            let out = acc + q0 * ldv
            for i in 0..<cq {
                let row = x + i * kc, cnt = diagonal ? i + 1 : kc
                let rowMax = Rows.logits(ctx, row, cnt, li: li?[i] ?? 0, lj: lj, tmp: tmp)
                let mNew = Swift.max(m[q0 + i], rowMax)
                Rows.raise(ctx, out + i * ldv, ldv, m: &m[q0 + i], to: mNew, rescale: accumulate)
                if accumulate { Rows.expShifted(ctx, row, cnt, m: mNew) }
                (row + cnt).update(repeating: 0, count: kc - cnt)
            }
            if accumulate {
                a.gemm(transA: false, transB: false, m: cq, n: ldv, k: kc, a: x, lda: kc, b: values + k0 * ldv,
                       ldb: ldv, beta: 1, c: out, ldc: ldv)
            }
        }
    }
}
