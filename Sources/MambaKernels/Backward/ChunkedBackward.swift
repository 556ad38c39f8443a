#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// The chunked (SSD) backward pass, Float32/Float16 (see `CoreBackward`).
///
/// Chunks of `C` tokens with chunk-local prefix sums `ℓ`, exactly as
/// `ChunkedForm`. Feature-map cores, two sweeps:
///
/// 1. **Forward sweep** — only the forward's state recursion
///    `S̃_c = e^{ℓ_last}·S̃_{c−1} + φ(K_c)ᵀ·(e^{ℓ_last−ℓ_j}·ṽ_j)` (one
///    `F×ldv×C` GEMM per chunk), storing the augmented state *before* every
///    chunk (`⌈N/C⌉·F·ldv` Float32 values, as FLA's backward keeps `h` per
///    chunk: 138 MB for the 2Mamba core at N = 16,384, dk = 64, C = 64);
///    above `stateBudgetBytes` (the recurrent form, chunks of one token:
///    2.2 GB at N = 4096) only every K-th state, K = ⌈√chunks⌉, and the
///    reverse sweep recomputes a segment's states from its checkpoint when
///    it enters it (`StateCheckpoints`: same operations, identical results,
///    one more forward sweep; memory `2⌈√chunks⌉·F·ldv` values).
/// 2. **Reverse sweep** over chunks, carrying `dS = ∂ℓ/∂S̃_c`, per chunk:
///    - the pair weights of the chunk and, with the state before it,
///      `Φ̃_i = c·e^{ℓ_i}φ(q_i)` and `H = S·dO_cᵀ` (`F×C×dv` GEMM);
///    - sum normalisation, the forward quantities without forming `O`:
///      `D_i = Σ_j W_ij + Φ̃_i·z` and `num_i·dO_i = Σ_j W_ij (v_j·dO_i) +
///      Φ̃_i·H_i` (intra-chunk `W·[V|1]`, `C×ldv×C`), `δ_i = num_i·dO_i / D_i`
///      (the unrounded output, as a fused kernel that never stores `O`),
///      `dÕ_i = [dO_i | −δ_i]/D_i`, and the cotangent of `Φ̃`,
///      `(H_i − δ_i z)/D_i` — in the Float32-working modes folded into the
///      VJP as `J_φᵀH_i/D_i − (δ_i/D_i)·M(z)q_i` (`FeatureGradient.subtractShared`,
///      one `C×dk×dk` GEMM) instead of an `F×C` elementwise pass; un-normalised:
///      `dÕ = dO`, cotangent `H`;
///    - intra-chunk pairs (`PairBackward`, five GEMMs `C×C×…`);
///    - the carry, when a later chunk exists: `dṼ = φ(K_c)·dS` and
///      `dφ(K_c) = Ṽ·dSᵀ` (`C×ldv×F` GEMMs, `Ṽ_j = e^{ℓ_last−ℓ_j}ṽ_j`):
///      `dv_j += e^{ℓ_last−ℓ_j}·dṼ_j`, `dk_j += J_φ(k_j)ᵀ dφ(k_j)`, and the
///      column part of `dL_j` gains `Ṽ_j·dṼ_j` (= `Σ_{i later} w_ij·dW_ij`);
///    - the queries (`StateQueryBackward.apply`): `dq`, the row part of
///      `dL_i` (un-normalised cores), and `dS ← e^{ℓ_last}·dS + Φ̃ᵀ·dÕ_c`
///      (`F×ldv×C` GEMM; the decay is sgemm's `beta`).
///    After the first chunk `dS` is the initial-state gradient.
///
/// Work: five `F·ldv·C` GEMMs per chunk against the forward's two (the
/// forward's query product `Φ̃ᵀS` is replaced by `H`, which serves both
/// `δ` and the cotangent), plus the small intra-chunk products; time linear
/// in `N`. `Φ̃` and `z` are rounded to the operand format where a GEMM would
/// have stored them (acc32 modes).
///
/// Exponential score (no finite state): blocked KV-cache passes with the
/// forward's chunk-local decay assembly — a forward sweep with the online
/// maximum saving `m_i`, the shifted normaliser and `O`, then every
/// (query chunk, earlier key chunk) pair again with `p = exp(λ − m_i)`.
/// Quadratic work, like the forward.
enum ChunkedBackward {
    /// Above this many bytes of chunk states (`⌈N/C⌉·F·ldv` Float32) the
    /// forward sweep keeps checkpoints only (`StateCheckpoints`): 256 MiB.
    static let stateBudgetBytes = 256 << 20

    static func run(_ input: BackwardInput, _ ctx: CoreContext, chunk requested: Int,
                    stateBudgetBytes: Int = stateBudgetBytes) -> BackwardResult {
        if ctx.isExponential { return runExponential(input, ctx, chunk: requested) }
        let seq = input.seq, a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let f = ctx.internalFeatures(dk)!
        let chunk = Swift.max(1, Swift.min(requested, Swift.max(n, 1)))
        // The forward's chunks (`ChunkPlan`): a reset step starts a chunk with
        // no state before it, whose local sums skip the step.
        let cp = ChunkPlan(seq, a, chunk: chunk)
        let chunks = cp.count
        let decay = seq.decay != nil
        let values = seq.augmentedValues(ldv: ldv)
        let s0 = Features.initialState(ctx, seq)
        var result = BackwardResult.zeros(n: n, dk: dk, dv: dv, decay: decay, stateSize: s0 == nil ? nil : f * ldv)
        let plan = StateCheckpoints(chunks: chunks, stateSize: f * ldv, budgetBytes: stateBudgetBytes)
        let states = LargeBufferPool.shared.take(count: plan.bufferCount)
        /// Where the state before chunk `c` lives (its checkpoint or its slot of the current segment).
        func slot(_ c: Int) -> UnsafeMutablePointer<Float> { states.pointer + plan.offset(c) }
        let x = allocateFloats(chunk * chunk), p = allocateFloats(chunk * chunk), d = allocateFloats(chunk * chunk)
        let ell = allocateFloats(chunk), tmp = allocateFloats(chunk), sc = allocateFloats(chunk)
        let phi = allocateFloats(chunk * f), vd = allocateFloats(chunk * ldv), g = allocateFloats(chunk * Swift.max(chunk, ldv))
        let gT = allocateFloats(f * chunk), z = allocateFloats(f)
        let accC = allocateFloats(chunk * ldv), dOc = allocateFloats(chunk * ldv)
        let numdO = allocateFloats(chunk), den = allocateFloats(chunk)
        let foldScale = allocateFloats(chunk), foldShared = allocateFloats(chunk)
        let row = allocateFloats(Swift.max(n, 1), fill: 0), col = allocateFloats(Swift.max(n, 1), fill: 0)
        defer {
            values.deallocate(); s0?.deallocate(); LargeBufferPool.shared.give(states)
            x.deallocate(); p.deallocate(); d.deallocate(); ell.deallocate(); tmp.deallocate(); sc.deallocate()
            phi.deallocate(); vd.deallocate(); g.deallocate(); gT.deallocate(); z.deallocate()
            accC.deallocate(); dOc.deallocate(); numdO.deallocate(); den.deallocate()
            foldScale.deallocate(); foldShared.deallocate(); row.deallocate(); col.deallocate()
        }

        // Per-chunk helpers (the forward's arithmetic, `ChunkedForm`).
        /// `vd_j = e^{ℓ_last − ℓ_j}·ṽ_j` (the decay-scaled values of the carry,
        /// factors left in `tmp`); returns the values pointer used.
        func scaledValues(_ vc: UnsafePointer<Float>, _ cc: Int) -> UnsafePointer<Float> {
            guard decay else { return vc }
            ChunkedForm.decayedValues(ctx, vc, rows: cc, ldv: ldv, ell: ell, into: vd, factors: tmp)
            return UnsafePointer(vd)
        }

        /// Whether chunk `c` reads a state (the forward's `hasState`): not after a reset.
        func stateBefore(_ c: Int) -> Bool { !cp.reset(c) && (c > 0 || s0 != nil) }

        /// The forward's carry over chunk `c`: the state before chunk `c + 1` from the one before `c`
        /// (zero before a chunk that starts with a reset).
        /// (Uses `ell`, `phi`, `vd`, `tmp`, which the reverse sweep sets again before reading.)
        func forwardStep(_ c: Int) {
            let c0 = cp.start(c), cc = cp.size(c)
            let cur = slot(c), next = slot(c + 1)
            if cp.reset(c + 1) {
                next.update(repeating: 0, count: f * ldv)
                return
            }
            let hasState = stateBefore(c)
            if decay { seq.localPrefix(start: c0, count: cc, into: ell, a, skipFirst: cp.reset(c), scan: ctx.options.prefixScan) }
            next.update(from: cur, count: f * ldv)
            Features.columns(ctx, x: seq.k + c0 * dk, rows: cc, dk: dk, out: phi, rowScale: nil)
            let vals = scaledValues(values + c0 * ldv, cc)
            var beta: Float = hasState ? 1 : 0
            if decay && hasState { beta = flushed(a.op(exp(ell[cc - 1]))) }
            a.gemm(transA: false, transB: false, m: f, n: ldv, k: cc, a: phi, lda: cc, b: vals, ldb: ldv,
                   beta: beta, c: next, ldc: ldv)
        }

        // 1. Forward sweep: the state before every chunk (the forward's carry), or
        // before every K-th chunk when checkpointed (`StateCheckpoints`).
        if let s0 { slot(0).update(from: s0, count: f * ldv) } else { slot(0).update(repeating: 0, count: f * ldv) }
        for c in 0..<Swift.max(chunks - 1, 0) { forwardStep(c) }

        // 2. Reverse sweep.
        let dS = allocateFloats(f * ldv, fill: 0)
        defer { dS.deallocate() }
        var live = false  // dS holds a gradient (a later chunk read the state)
        var zeroRows: [Int] = []
        for c in stride(from: chunks - 1, through: 0, by: -1) {
            if plan.isCheckpointed && (c == chunks - 1 || c % plan.every == plan.every - 1) {
                // Entering a segment from its end: its states again from its checkpoint (same operations,
                // same values as the first sweep's).
                for c2 in (c / plan.every) * plan.every ..< c { forwardStep(c2) }
            }
            let c0 = cp.start(c), cc = cp.size(c)
            if decay { seq.localPrefix(start: c0, count: cc, into: ell, a, skipFirst: cp.reset(c), scan: ctx.options.prefixScan) }
            let qc = seq.q + c0 * dk, kc = seq.k + c0 * dk, vc = values + c0 * ldv, dO = input.dO + c0 * dv
            let dqc = result.dq + c0 * dk, dkc = result.dk + c0 * dk, dvc = result.dv + c0 * dv
            let rowc: UnsafeMutablePointer<Float>? = decay && !ctx.isSum ? row + c0 : nil
            let colc: UnsafeMutablePointer<Float>? = decay ? col + c0 : nil
            let state = slot(c)
            let stateBefore = stateBefore(c)
            // Pair weights of the chunk.
            a.gemm(transA: false, transB: true, m: cc, n: cc, k: dk, a: qc, lda: dk, b: kc, ldb: dk,
                   beta: 0, c: x, ldc: cc)
            PairWeights.compute(ctx, x: x, rows: cc, cols: cc, diagonalOffset: 0, li: decay ? UnsafePointer(ell) : nil,
                                lj: decay ? UnsafePointer(ell) : nil, shift: nil, p: p, d: d)
            // The queries' features against the state before the chunk, and
            // H = S·dOᵀ (F × cc): the cotangent of Φ̃ is (H − z δᵀ)/D (sum) or H.
            if stateBefore {
                ChunkedForm.queryScales(ctx, ell: decay ? UnsafePointer(ell) : nil, rows: cc, into: sc)
                Features.columns(ctx, x: qc, rows: cc, dk: dk, out: phi, rowScale: sc)
                a.operand.round(phi, f * cc)
                a.gemm(transA: false, transB: true, m: f, n: cc, k: dv, a: state, lda: ldv, b: dO, ldb: dv,
                       beta: 0, c: gT, ldc: cc)
            }
            // The augmented upstream gradient of the chunk.
            var dOt = UnsafePointer(dO)
            var folded = false
            if ctx.isSum {
                // D_i and numerator·dO_i: intra-chunk pairs, plus the state's Φ̃_i·z and Φ̃_i·H_i.
                a.gemm(transA: false, transB: false, m: cc, n: ldv, k: cc, a: p, lda: cc, b: vc, ldb: ldv,
                       beta: 0, c: accC, ldc: ldv)
                for i in 0..<cc {
                    let ai = accC + i * ldv, oi = dO + i * dv
                    var t: Float = 0
                    if a.pureHalf {
                        for e in 0..<dv { t = a.op(t + a.op(ai[e] * oi[e])) }
                    } else {
                        for e in 0..<dv { t += ai[e] * oi[e] }
                    }
                    numdO[i] = t
                    den[i] = ai[dv]
                }
                if stateBefore {
                    for e in 0..<f { z[e] = state[e * ldv + dv] }
                    a.operand.round(z, f)
                    let u = a.scratch.buffer(10, cc)
                    for e in 0..<f {
                        let pe = phi + e * cc, he = gT + e * cc, ze = z[e]
                        if a.pureHalf {
                            for i in 0..<cc { u[i] = pe[i] * ze }
                            a.op(u, cc)
                            for i in 0..<cc { den[i] += u[i] }
                            a.op(den, cc)
                            for i in 0..<cc { u[i] = pe[i] * he[i] }
                            a.op(u, cc)
                            for i in 0..<cc { numdO[i] += u[i] }
                            a.op(numdO, cc)
                        } else {
                            for i in 0..<cc { den[i] += pe[i] * ze; numdO[i] += pe[i] * he[i] }
                        }
                    }
                }
                for i in 0..<cc {
                    let delta = a.op(numdO[i] / den[i]), di = den[i]
                    if di == 0 { zeroRows.append(c0 + i) }
                    let dst = dOc + i * ldv, src = dO + i * dv
                    for e in 0..<dv { dst[e] = src[e] / di }
                    dst[dv] = -delta / di
                    numdO[i] = delta
                }
                a.op(dOc, cc * ldv)
                dOt = UnsafePointer(dOc)
                if stateBefore {
                    if a.pureHalf {
                        // The cotangent (H − z δᵀ)/D, every operation rounded.
                        for e in 0..<f {
                            let he = gT + e * cc, ze = z[e]
                            for i in 0..<cc { he[i] = a.op(a.op(he[i] - a.op(ze * numdO[i])) / den[i]) }
                        }
                    } else {
                        // Folded into the VJP (it is linear): rows of H scaled by
                        // c·e^{ℓ_i}/D_i, minus (c·e^{ℓ_i}·δ_i/D_i)·J_φ(q_i)ᵀz below.
                        for i in 0..<cc { foldScale[i] = sc[i] / den[i]; foldShared[i] = sc[i] * numdO[i] / den[i] }
                        folded = true
                    }
                }
            }
            // Intra-chunk pairs.
            PairBackward.accumulate(ctx, p: p, d: d, rows: cc, cols: cc, dOt: dOt, values: vc, q: qc, k: kc,
                                    dk: dk, dv: dv, g: g, dq: dqc, dkOut: dkc, dvOut: dvc, rowSum: rowc, colSum: colc)
            // Carry: keys of this chunk into the state read by later chunks.
            if live {
                let kphi = a.scratch.buffer(11, f * cc)
                Features.columns(ctx, x: kc, rows: cc, dk: dk, out: kphi, rowScale: nil)
                let vals = scaledValues(vc, cc)
                // dṼ = φ(K)·dS  (cc × ldv), in g.
                a.gemm(transA: true, transB: false, m: cc, n: ldv, k: f, a: kphi, lda: cc, b: dS, ldb: ldv,
                       beta: 0, c: g, ldc: ldv)
                if let colc {
                    for j in 0..<cc {
                        let vj = vals + j * ldv, gj = g + j * ldv
                        var s: Float = 0
                        if a.pureHalf {
                            for e in 0..<ldv { s = a.op(s + a.op(vj[e] * gj[e])) }
                            colc[j] = a.op(colc[j] + s)
                        } else {
                            for e in 0..<ldv { s += vj[e] * gj[e] }
                            colc[j] += s
                        }
                    }
                }
                for j in 0..<cc {
                    let gj = g + j * ldv, dst = dvc + j * dv
                    let factor: Float = decay ? tmp[j] : 1
                    if a.pureHalf {
                        for e in 0..<dv { dst[e] = a.op(dst[e] + a.op(factor * gj[e])) }
                    } else {
                        for e in 0..<dv { dst[e] += factor * gj[e] }
                    }
                }
                // dφ(K)ᵀ = dS·Ṽᵀ  (F × cc), then through J_φ.
                a.gemm(transA: false, transB: true, m: f, n: cc, k: ldv, a: dS, lda: ldv, b: vals, ldb: ldv,
                       beta: 0, c: kphi, ldc: cc)
                FeatureGradient.accumulate(ctx, x: kc, rows: cc, dk: dk, gT: kphi, rowScale: nil, out: dkc)
            }
            // Queries against the state before the chunk; dS moves to before the chunk.
            if stateBefore {
                var beta: Float = 0
                if live { beta = decay ? flushed(a.op(exp(ell[cc - 1]))) : 1 }
                StateQueryBackward.apply(ctx, q: qc, rows: cc, dk: dk, dv: dv, phiT: phi,
                                         rowScale: folded ? foldScale : sc, gT: gT,
                                         dOt: dOt, dq: dqc, rowSum: rowc, dState: dS, beta: beta)
                if folded {
                    FeatureGradient.subtractShared(ctx, x: qc, rows: cc, dk: dk, z: z, coefficient: foldShared, out: dqc)
                }
                live = true
            } else {
                // A reset chunk reads no state: earlier chunks get a zero state gradient.
                live = false
            }
        }
        if !zeroRows.isEmpty { result.notes.append(BackwardForward.zeroNote(zeroRows.sorted(), of: n)) }
        if live, let st = result.dState { st.update(from: dS, count: f * ldv) }
        if decay { result.finishDecay(ctx, row: ctx.isSum ? nil : UnsafePointer(row), col: col, n: n) }
        return result
    }

    /// Exponential score: blocked KV-cache backward with chunk-local decays.
    static func runExponential(_ input: BackwardInput, _ ctx: CoreContext, chunk requested: Int) -> BackwardResult {
        let seq = input.seq, a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let chunk = Swift.max(1, Swift.min(requested, Swift.max(n, 1)))
        let decay = seq.decay != nil
        let values = seq.augmentedValues(ldv: ldv)
        var result = BackwardResult.zeros(n: n, dk: dk, dv: dv, decay: decay, stateSize: nil)
        let acc = allocateFloats(n * ldv, fill: 0), m = allocateFloats(Swift.max(n, 1), fill: -.infinity)
        let x = allocateFloats(chunk * chunk), p = allocateFloats(chunk * chunk), d = allocateFloats(chunk * chunk)
        let g = allocateFloats(chunk * chunk)
        let row = allocateFloats(Swift.max(n, 1), fill: 0), col = allocateFloats(Swift.max(n, 1), fill: 0)
        defer {
            values.deallocate(); acc.deallocate(); m.deallocate(); x.deallocate(); p.deallocate(); d.deallocate()
            g.deallocate(); row.deallocate(); col.deallocate()
        }
        // The forward's pairs and decay assembly (`ChunkPairs`).
        let pairs = ChunkPairs(seq, ctx, chunk: chunk)
        // Forward sweep (the forward's own): online maximum m_i, shifted accumulator [num | den] (sum).
        pairs.forwardSweep(values: values, acc: acc, m: m, accumulate: false)
        // 2. The augmented upstream gradient.
        let (dOt, zeroRows) = BackwardForward.upstream(ctx, dO: input.dO, acc: acc, m: m, rows: n, dv: dv)
        if !zeroRows.isEmpty { result.notes.append(BackwardForward.zeroNote(zeroRows, of: n)) }
        defer { dOt.deallocate() }
        // Backward sweep: recompute p = exp(λ − m_i) from the saved maxima.
        pairs.visit { q0, cq, k0, kc, diagonal, liv, ljv in
            a.gemm(transA: false, transB: true, m: cq, n: kc, k: dk, a: seq.q + q0 * dk, lda: dk,
                   b: seq.k + k0 * dk, ldb: dk, beta: 0, c: x, ldc: kc)
            PairWeights.compute(ctx, x: x, rows: cq, cols: kc, diagonalOffset: diagonal ? 0 : nil, li: liv, lj: ljv,
                                shift: UnsafePointer(m + q0), p: p, d: d)
            PairBackward.accumulate(ctx, p: p, d: d, rows: cq, cols: kc, dOt: dOt + q0 * ldv, values: values + k0 * ldv,
                                    q: seq.q + q0 * dk, k: seq.k + k0 * dk, dk: dk, dv: dv, g: g,
                                    dq: result.dq + q0 * dk, dkOut: result.dk + k0 * dk, dvOut: result.dv + k0 * dv,
                                    rowSum: decay && !ctx.isSum ? row + q0 : nil, colSum: decay ? col + k0 : nil)
        }
        if decay { result.finishDecay(ctx, row: ctx.isSum ? nil : UnsafePointer(row), col: col, n: n) }
        return result
    }
}

/// Where the chunked backward keeps the state before each chunk: all of them
/// (`⌈N/C⌉` states) while they fit `budgetBytes`, else checkpoints before
/// chunks `0, K, 2K, …` plus one segment of `K − 1` states that the reverse
/// sweep refills from a checkpoint (`K = ⌈√chunks⌉`: `≈ 2√chunks` states).
struct StateCheckpoints {
    let chunks: Int, stateSize: Int
    /// Checkpoint spacing K (`chunks`-wide, i.e. everything stored, when not checkpointed).
    let every: Int
    let isCheckpointed: Bool
    private let checkpoints: Int

    init(chunks: Int, stateSize: Int, budgetBytes: Int) {
        self.chunks = Swift.max(chunks, 1); self.stateSize = stateSize
        if self.chunks * stateSize * MemoryLayout<Float>.stride <= budgetBytes || self.chunks < 4 {
            isCheckpointed = false; every = self.chunks; checkpoints = self.chunks
        } else {
            var k = Int(Double(self.chunks).squareRoot())
            if k * k < self.chunks { k += 1 }
            isCheckpointed = true; every = k; checkpoints = (self.chunks + k - 1) / k
        }
    }

    /// Floats to allocate.
    var bufferCount: Int { (isCheckpointed ? checkpoints + every : chunks) * stateSize }

    /// Offset of the state before chunk `c`.
    @inline(__always)
    func offset(_ c: Int) -> Int {
        guard isCheckpointed else { return c * stateSize }
        return c % every == 0 ? (c / every) * stateSize : (checkpoints + c % every) * stateSize
    }
}
