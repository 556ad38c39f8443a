#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// The tiled form with online normalisation (flash style, docs/MATH.md §3).
///
/// Query blocks of `T = options.tileSize` rows visit key blocks of `T` keys
/// up to the diagonal; per key block `X = Q_blk·K_blkᵀ` and `acc ←
/// acc·exp(m_old − m_new) + P·[V_blk | 1]` (`cblas_sgemm`), with a running
/// row maximum `m_i` that cancels in `num/den`.
///
/// Decay exponents `D_ij = a_{j+1} + … + a_i` are segment sums, never
/// differences of global prefix sums (docs/MATH.md §6): for key block `b` (last key
/// `e_b`) and query `i` in a later block starting at `q0`,
/// `D_ij = (ℓ_i + C_b) + σ_j` with the query-local prefix sum
/// `ℓ_i = a_{q0} + … + a_i`, the sum of the block totals in between
/// `C_b = Σ_{t=e_b+1}^{q0−1} a_t` and the key-block suffix sum
/// `σ_j = a_{j+1} + … + a_{e_b}` (`DecayExponents.blockSums`): three sums of
/// one sign added without cancellation, each accurate to a few `γ_T`. On the
/// diagonal block, `D_ij` is summed backwards from `i` (at most `T` terms per
/// row). Given prefix sums, and `KernelOptions.globalPrefixSums` (the docs/MATH.md §6
/// hazard), use `L_i − L_j`. The initial state decays by `exp(L_i)`.
///
/// Sum-normalised cores:
/// - exponential: `λ_ij = s·q·k + L_i − L_j`, `m_i = max λ`, `p = exp(λ − m)`
///   (standard, stable);
/// - linear/relu-linear/squared, `options.stableTiledMaximum == false` — the
///   faithful rule of docs/MATH.md §3/§6: `m_i` is the running maximum of the *raw*
///   scores `s·q·k`, `p_ij = f(s·q·k)·exp(L_i − L_j − m_i)`. NOT stable: a
///   row whose first key block has raw scores ≈ −200 gets `exp(200) = Inf`
///   in Float32 (lagging maximum); when a later block raises `m_i`,
///   `Inf·exp(−200) = Inf·0 = NaN`. The kernel does not hide this: the rows
///   are reported in a diagnostic (`lagging maximum`) and come out NaN/Inf.
/// - same, `stableTiledMaximum == true` (default) — stable: `m_i` is the
///   running maximum of `λ̂_ij = ln2·(e(w_ij) − 126) + D_ij`, where
///   `w = f(s·q·k)` is evaluated in Float32 from the (rounded) score `t = s·q·k`
///   (`t²` of a binary16 `t` is exact in Float32, so the bound is right even
///   where the binary16 product `t²` underflows) and `e(w)` is its biased
///   Float32 exponent, i.e. an upper bound of `log w_ij + D_ij` within
///   `ln 2` (no logarithm evaluated). Hence every
///   `p_ij = w_ij·exp(D_ij − m_i) ≤ 1` (nothing overflows for
///   `|s·q·k| < 2⁶³`) and the entry attaining the maximum has `p ≥ 1/2`
///   (the row is never lost to underflow); zero weights stay exactly 0.
///   Pure float16 evaluates `p = t²·exp(D − m)` as
///   `(t·2^k)²·(exp(D − m)·2^{−2k})` (linear: `(t·2^k)·(exp(D − m)·2^{−k})`)
///   with `k ≥ 0` the power of two that brings `|t|` into `[1/2, 1)` (0 when
///   `|t| ≥ 1/2`; the scalings are exact, `exp` is Float32 scaled then
///   rounded), so neither `t²` underflows nor `exp(D − m)` overflows
///   binary16; the result is the same as the plain evaluation wherever that
///   neither underflows nor overflows.
///
/// An initial state enters as a first pseudo block with log-weight
/// `L_i + ln2·(e(den₀) − 126)`, `den₀ = c·φ(q_i)ᵀz₀` (both rules); with
/// binary16 storage its query features and `S₀` are lifted by powers of two
/// before they are stored (`RowGuard`; the lift is taken out of the bound and
/// the scaling), so a tiny `c·φ(q_i)` does not lose its digits. The final
/// state is formed as in the quadratic form (segment sums `D_{N−1,j}`).
///
/// Un-normalised cores have nothing to normalise: the tiled form is plain
/// blocked accumulation `acc += P·V` with `p = f(s·q·k)·exp(D_ij)`
/// (exponential: an online maximum, folded back by `exp(m_i)` at the end).
enum TiledForm {
    static func run(_ seq: SequenceData, _ ctx: CoreContext) -> FormResult {
        let n = seq.n, dv = seq.dv, ldv = ctx.ldv(dv)
        let tile = Swift.max(1, Swift.min(ctx.options.tileSize, Swift.max(n, 1)))
        let decay = seq.exponents(ctx)
        let tiles = decay.map { TileExponents($0, seq, ctx, tile: tile) }
        let values = seq.augmentedValues(ldv: ldv)
        let acc = allocateFloats(n * ldv, fill: 0), m = allocateFloats(Swift.max(n, 1))
        let s0 = Features.initialState(ctx, seq)
        defer { tiles?.deallocate(); decay?.deallocate(); values.deallocate(); acc.deallocate(); m.deallocate(); s0?.deallocate() }
        let lost = sweep(seq, ctx, tile: tile, tiles: tiles, values: values, s0: s0, acc: acc, m: m, accumulate: true)
        if ctx.isExponential && !ctx.isSum {
            for i in 0..<n { Rows.scale(ctx, acc + i * ldv, ldv, by: ctx.arith.op(exp(m[i]))) }
        }
        var (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        if !lost.isEmpty {
            notes.insert("tiled form with the faithful raw-score running maximum lost rows \(Finish.describe(lost, of: n)) (lagging maximum, docs/MATH.md §6: exp(D_ij − m_i) overflowed or was cancelled); the stable maximum avoids it", at: 0)
        }
        let state = ctx.isExponential ? nil : GlobalStateTerms.final(ctx, seq, s0: s0, decay: decay, values: values)
        return FormResult(o: o, state: state, notes: notes)
    }

    /// The forward sweep (query tiles outer, key tiles up to the diagonal
    /// inner), shared by the forward and by the first sweep of `TiledBackward`
    /// (which saves its row statistics), so both directions form the same
    /// weights, the same running maxima and the same lost rows.
    ///
    /// Fills `acc` (`n×ldv`, zeroed by the caller) with the accumulated rows —
    /// sum-normalised cores: `e^{−m_i}·[num_i | den_i]`; exponential
    /// un-normalised: `e^{−m_i}·num_i` (the caller folds `e^{m_i}` back);
    /// others: `num_i` — and `m` (`n`) with the running maxima (−∞ for rows
    /// without weight; left −∞ for un-normalised non-exponential cores).
    /// `accumulate == false` (un-normalised exponential backward, which only
    /// needs `m`) skips the weights and the value products of those cores.
    /// Returns the rows lost by the faithful raw-score maximum (non-finite or
    /// zero accumulated row; the lagging-maximum hazard of docs/MATH.md §6).
    static func sweep(_ seq: SequenceData, _ ctx: CoreContext, tile: Int, tiles: TileExponents?,
                      values: UnsafePointer<Float>, s0: UnsafePointer<Float>?,
                      acc: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, accumulate: Bool) -> [Int] {
        let a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let L: UnsafePointer<Float>? = tiles.map { UnsafePointer($0.exponents.prefix) }
        let x = allocateFloats(tile * tile), tmp = allocateFloats(tile), w = allocateFloats(tile)
        let dt: UnsafeMutablePointer<Float>? = tiles != nil ? allocateFloats(tile * tile) : nil
        defer { x.deallocate(); tmp.deallocate(); w.deallocate(); dt?.deallocate() }
        let accumulate = accumulate || ctx.isSum
        let guarded = RowGuard.active(ctx)
        let eta = guarded && s0 != nil ? RowGuard.stateLift(s0!, ctx.internalFeatures(dk)! * ldv) : 0
        let online = ctx.isSum || ctx.isExponential
        let faithful = ctx.isSum && !ctx.isExponential && !ctx.options.stableTiledMaximum
        let ln2 = Float(M_LN2)
        m.update(repeating: -.infinity, count: n)
        var lost: [Int] = []
        var q0 = 0
        while q0 < n {
            let tq = Swift.min(tile, n - q0)
            let out = acc + q0 * ldv, mq = m + q0
            if let s0 {
                if ctx.isSum {
                    // Row guard of the binary16-stored pseudo block: features
                    // lifted by 2^{γ_r − η}, S₀ by 2^η (so `out` holds 2^{γ_r}×
                    // the term); the bound and the scaling below undo 2^{γ_r}.
                    var shifts: [Int]? = nil
                    if guarded {
                        shifts = (0..<tq).map { r in
                            let other = ctx.featureScale * RowGuard.featureMax(ctx, seq.q + (q0 + r) * dk, dk: dk)
                                * RowGuard.power(-eta)
                            return Swift.min(RowGuard.lift(other), RowGuard.cap(ctx, base: ctx.featureScale, eta: eta))
                        }
                    }
                    GlobalStateTerms.addInitial(ctx, seq, s0: s0, L: nil, i0: q0, rows: tq, acc: out,
                                                rowShift: shifts, stateShift: eta)
                    for r in 0..<tq {
                        let li: Float = L?[q0 + r] ?? 0
                        let gamma = Swift.max(0, shifts?[r] ?? 0)
                        let den = abs(out[r * ldv + dv])
                        let e = Int((den.bitPattern >> 23) & 0xFF) - 126 - gamma
                        let bound = den == 0 ? li : a.op(li + ln2 * Float(e))
                        mq[r] = bound
                        liftPseudoRow(ctx, out + r * ldv, ldv, exponent: a.op(li - bound), gamma: gamma)
                    }
                } else {
                    GlobalStateTerms.addInitial(ctx, seq, s0: s0, L: L, i0: q0, rows: tq, acc: out)
                }
            }
            var k0 = 0
            while k0 <= q0 {
                let tk = Swift.min(tile, n - k0), diagonal = k0 == q0
                a.gemm(transA: false, transB: true, m: tq, n: tk, k: dk, a: seq.q + q0 * dk, lda: dk,
                       b: seq.k + k0 * dk, ldb: dk, beta: 0, c: x, ldc: tk)
                // Exponents D_ij of the tile pair (segment sums, `TileExponents`).
                if let tiles, let dt { tiles.fill(q0: q0, tq: tq, k0: k0, tk: tk, into: dt) }
                for r in 0..<tq {
                    let row = x + r * tk, cnt = diagonal ? r + 1 : tk
                    let d: UnsafePointer<Float>? = dt.map { UnsafePointer($0 + r * tk) }
                    if !online {
                        Rows.weights(ctx, row, cnt, exponents: d, tmp: tmp)
                    } else if ctx.isExponential {
                        let bm = Rows.logits(ctx, row, cnt, exponents: d)
                        Rows.raise(ctx, out + r * ldv, ldv, m: &mq[r], to: Swift.max(mq[r], bm), rescale: accumulate)
                        if accumulate { Rows.expShifted(ctx, row, cnt, m: mq[r]) }
                    } else {
                        // Raw scores t = s·q·k, weights w = f(t) in Float32
                        // (exact for binary16 t: never an underflowed product).
                        for j in 0..<cnt { row[j] *= ctx.scale }
                        a.op(row, cnt)
                        for j in 0..<cnt { w[j] = ctx.isSquared ? row[j] * row[j] : row[j] }
                        if let d {
                            tmp.update(from: d, count: cnt)
                        } else {
                            tmp.update(repeating: 0, count: cnt)
                        }
                        let bm = TiledRowBound.maximum(scores: row, weights: w, exponents: tmp, count: cnt,
                                                       faithful: faithful, a)
                        Rows.raise(ctx, out + r * ldv, ldv, m: &mq[r], to: Swift.max(mq[r], bm))
                        let mi = mq[r]
                        if mi == -.infinity {
                            row.update(repeating: 0, count: cnt)
                        } else if a.pureHalf {
                            halfWeights(ctx, row, w, tmp, cnt, m: mi)
                        } else {
                            for j in 0..<cnt { tmp[j] = exp(tmp[j] - mi) }
                            for j in 0..<cnt { row[j] = w[j] == 0 ? 0 : w[j] * tmp[j] }
                        }
                    }
                    (row + cnt).update(repeating: 0, count: tk - cnt)
                }
                if accumulate {
                    a.gemm(transA: false, transB: false, m: tq, n: ldv, k: tk, a: x, lda: tk, b: values + k0 * ldv,
                           ldb: ldv, beta: 1, c: out, ldc: ldv)
                }
                k0 += tile
            }
            if faithful {
                for r in 0..<tq {
                    let den = out[r * ldv + dv]
                    if !den.isFinite || den == 0 || Finish.nonFiniteRows(out + r * ldv, n: 1, width: ldv).count > 0 {
                        lost.append(q0 + r)
                    }
                }
            }
            q0 += tq
        }
        return lost
    }

    /// Pure float16 `p_j = f(t_j)·exp(D_j − m)` (`row` holds the binary16
    /// scores `t`, `w` their Float32 `f(t)`, `d` the exponents `D`),
    /// evaluated as `(t·2^k)^p · (exp(D − m)·2^{−p·k})` with
    /// `k = RowGuard.lift(|t|)` (see the type): exact power-of-two scalings,
    /// every operation rounded to binary16.
    private static func halfWeights(_ ctx: CoreContext, _ row: UnsafeMutablePointer<Float>,
                                    _ w: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ cnt: Int, m: Float) {
        let a = ctx.arith, p = ctx.power
        for j in 0..<cnt { d[j] -= m }
        a.op(d, cnt)
        for j in 0..<cnt {
            let k = Swift.min(RowGuard.lift(abs(row[j])), 60)
            let t = row[j] * RowGuard.power(k)
            let f = p == 2 ? a.op(t * t) : t
            let e = a.op(exp(d[j]) * RowGuard.power(-p * k))
            row[j] = w[j] == 0 ? 0 : a.op(f * e)
        }
    }
    /// Scales a pseudo-block row by `exp(x)·2^{−γ}` (`x = L_i − bound`, so the
    /// factor is ≈ `1/den₀`, taking the denominator into `[1/2, 1)`). When
    /// that factor is not representable in the working format — pure
    /// float16 with a (lifted) `den₀ < 2⁻¹⁵`, e.g. a subnormal binary16
    /// denominator of a decayed state: the factor ≥ 2¹⁶ rounds to +Inf and
    /// the row became Inf, then `Inf·exp(m − m′) → Inf`, `Inf − Inf`/`Inf·0`
    /// gave NaN — it is applied as `(exp(x)·2^{−γ−s})·2^s` with the first
    /// factor in `[2¹⁴, 2¹⁵)` (one rounding, as before) and `2^s` applied in
    /// exact power-of-two steps of at most `2¹⁴` (the row only grows, so the
    /// steps neither underflow nor lose digits).
    private static func liftPseudoRow(_ ctx: CoreContext, _ row: UnsafeMutablePointer<Float>, _ n: Int,
                                      exponent x: Float, gamma: Int) {
        let a = ctx.arith
        let f = a.op(exp(x) * RowGuard.power(-gamma))
        if f.isFinite {
            Rows.scale(ctx, row, n, by: f)
            return
        }
        let t = exp(Double(x)) * Double(sign: .plus, exponent: -gamma, significand: 1)
        guard t.isFinite, t > 0 else { Rows.scale(ctx, row, n, by: f); return }
        var s = Swift.max(0, Int(t.exponent) - 14)
        Rows.scale(ctx, row, n, by: a.op(Float(t * Double(sign: .plus, exponent: -s, significand: 1))))
        while s > 0 {
            let k = Swift.min(s, 14)
            Rows.scale(ctx, row, n, by: RowGuard.power(k))
            s -= k
        }
    }
}

/// The running-maximum candidate of one row of a key block, shared by the
/// tiled forward and backward (the backward recomputes the forward's weights,
/// so both must use the same rule). Faithful (docs/MATH.md §3 as written): the
/// largest raw score `s·q·k`. Stable: the largest bound
/// `ln2·(e(w_j) − 126) + D_j` on the log of the actual weight, read from the
/// Float32 exponent field of `w_j` (Proofs/T4); weights of 0 are skipped.
enum TiledRowBound {
    static func maximum(scores: UnsafePointer<Float>, weights w: UnsafePointer<Float>, exponents d: UnsafePointer<Float>,
                        count: Int, faithful: Bool, _ a: Arithmetic) -> Float {
        var bm = -Float.infinity
        if faithful {
            for j in 0..<count { bm = Swift.max(bm, scores[j]) }
        } else {
            let ln2 = Float(M_LN2)
            for j in 0..<count where w[j] > 0 {
                let e = Int((w[j].bitPattern >> 23) & 0xFF) - 126
                bm = Swift.max(bm, a.op(ln2 * Float(e) + d[j]))
            }
        }
        return bm
    }
}

/// The decay exponents `D_ij` (`i` in query tile `[q0, q0+tq)`, `j` in key
/// tile `[k0, k0+tk)`, `k0 ≤ q0`, tiles aligned at 0) of the tiled form,
/// used by its forward sweep (`TiledForm.sweep`) and by the backward sweep of
/// `TiledBackward`, so both directions see the same exponents:
///
/// - per-step decays (segment sums, docs/MATH.md §6): on the diagonal tile `D_ij`
///   summed backwards from `i`; off the diagonal `(ℓ_i + C_b) + σ_j` with the
///   query-local prefix `ℓ_i`, the block totals in between `C_b` (summed
///   backwards from the query tile) and the key-tile suffix sums `σ_j`
///   (`DecayExponents.blockSums`) — sums of one sign, no cancellation;
/// - given prefix sums, or `KernelOptions.globalPrefixSums`: `L_i − L_j`.
///
/// Entries above the diagonal are set to 0.
struct TileExponents {
    let exponents: DecayExponents
    let blocks: (suffix: UnsafeMutablePointer<Float>, total: [Float])?
    let seq: SequenceData
    let arith: Arithmetic
    let tile: Int
    let ellq: UnsafeMutablePointer<Float>

    init(_ exponents: DecayExponents, _ seq: SequenceData, _ ctx: CoreContext, tile: Int) {
        self.exponents = exponents
        self.blocks = exponents.steps != nil ? exponents.blockSums(tile: tile) : nil
        self.seq = seq
        self.arith = ctx.arith
        self.tile = tile
        self.ellq = allocateFloats(tile)
    }

    func deallocate() { blocks?.suffix.deallocate(); ellq.deallocate() }

    /// `out[r·tk + j] = D_{q0+r, k0+j}` (`tq × tk`).
    func fill(q0: Int, tq: Int, k0: Int, tk: Int, into out: UnsafeMutablePointer<Float>) {
        let a = arith, diagonal = k0 == q0
        if let steps = exponents.steps, let blocks {
            var between: Float = 0
            if !diagonal {
                seq.localPrefix(start: q0, count: tq, into: ellq, a)
                // C_b = total[qb−1] + … + total[b+1], in the forward's order.
                let qb = q0 / tile, kb = k0 / tile
                var c: Float = 0
                var b = qb - 1
                while b > kb { c = a.op(c + blocks.total[b]); b -= 1 }
                between = c
            }
            for r in 0..<tq {
                let row = out + r * tk
                if diagonal {
                    var s: Float = 0
                    row[r] = 0
                    var j = r - 1
                    while j >= 0 { s = a.op(s + steps[q0 + j + 1]); row[j] = s; j -= 1 }
                    (row + r + 1).update(repeating: 0, count: tk - r - 1)
                } else {
                    let p = a.op(ellq[r] + between)
                    for j in 0..<tk { row[j] = p + blocks.suffix[k0 + j] }
                    a.op(row, tk)
                }
            }
        } else {
            let l = exponents.prefix
            for r in 0..<tq {
                let row = out + r * tk, li = l[q0 + r], cnt = diagonal ? r + 1 : tk
                for j in 0..<cnt { row[j] = li - l[k0 + j] }
                a.op(row, cnt)
                (row + cnt).update(repeating: 0, count: tk - cnt)
            }
        }
    }
}
