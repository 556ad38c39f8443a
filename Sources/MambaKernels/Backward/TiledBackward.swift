#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// The tiled backward pass with saved row statistics (flash style,
/// FlashAttention-2's algorithm; see `CoreBackward`).
///
/// Tiles of `T = options.tileSize`. The decay exponents `D_ij` of every
/// tile pair are those of `TiledForm` (`TileExponents`): segment sums of
/// per-step decays, never the difference `L_i − L_j` of two global Float32
/// prefix sums (docs/MATH.md §6); `L_i − L_j` of given prefix sums (or with
/// `KernelOptions.globalPrefixSums`). The initial state decays by `e^{L_i}`.
///
/// 1. **Forward sweep** (query tiles outer, key tiles inner), exactly the
///    forward's online rule (`TiledForm`): the running maximum `m_i` —
///    of the logits for the exponential score; for the other sum-normalised
///    scores of the exponent bound `ln2·(e(w) − 126) + D_ij`
///    (`stableTiledMaximum`, default) or of the raw scores `s·q·k` (faithful,
///    with the lagging-maximum hazard of docs/MATH.md §6, reported) — with the
///    initial state as a first pseudo block. It saves the row statistics
///    `m_i` and the shifted normaliser `D'_i = e^{−m_i}·D_i`, and the output.
///    Un-normalised cores keep no statistics (`m = 0`), except the
///    exponential score's row maximum.
/// 2. `δ_i = O_i·dO_i` and `dÕ'_i = [dO_i | −δ_i]/D'_i` (or `dO_i·e^{m_i}`).
/// 3. **Backward sweep**, key tiles outer, query tiles `≥` inner: recompute
///    `X = Q_blk·K_blkᵀ` and `p_ij = f(s·X)·e^{D_ij−m_i}` (`≤ 1` under the
///    stable maximum), `d_ij = f'·e^{D_ij−m_i}` from the saved `m_i`;
///    `PairBackward` accumulates `dk`, `dv` of the key tile and `dq` of the
///    query tile (the latter across key tiles, as FA2's atomic adds).
/// 4. The initial state: `StateQueryBackward` per query tile with
///    `Φ̃_i = c·e^{L_i − m_i}φ(q_i)`.
enum TiledBackward {
    static func run(_ input: BackwardInput, _ ctx: CoreContext) -> BackwardResult {
        let seq = input.seq, a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let f = ctx.internalFeatures(dk)
        let decay = seq.decay != nil
        let tile = Swift.max(1, Swift.min(ctx.options.tileSize, Swift.max(n, 1)))
        // Decay exponents D_ij of each tile pair exactly as in `TiledForm`
        // (segment sums for per-step decays, docs/MATH.md §6); `L` (the prefix sums)
        // only decays the initial state.
        let exponents = seq.exponents(ctx)
        let tiles = exponents.map { TileExponents($0, seq, ctx, tile: tile) }
        let L: UnsafeMutablePointer<Float>? = exponents?.prefix
        let dt: UnsafeMutablePointer<Float>? = decay ? allocateFloats(tile * tile) : nil
        let values = seq.augmentedValues(ldv: ldv)
        let s0 = Features.initialState(ctx, seq)
        var result = BackwardResult.zeros(n: n, dk: dk, dv: dv, decay: decay, stateSize: s0 == nil ? nil : f! * ldv)
        let shifted = ctx.isSum || ctx.isExponential
        let faithful = ctx.isSum && !ctx.isExponential && !ctx.options.stableTiledMaximum
        let acc = allocateFloats(n * ldv, fill: 0)
        let m = allocateFloats(Swift.max(n, 1), fill: shifted ? -.infinity : 0)
        let x = allocateFloats(tile * tile), p = allocateFloats(tile * tile), d = allocateFloats(tile * tile)
        let g = allocateFloats(tile * tile), tmp = allocateFloats(tile), w = allocateFloats(tile), sc = allocateFloats(tile)
        let phi = f.map { allocateFloats(tile * $0) }, gT = f.map { allocateFloats(tile * $0) }
        let row = allocateFloats(Swift.max(n, 1), fill: 0), col = allocateFloats(Swift.max(n, 1), fill: 0)
        defer {
            tiles?.deallocate(); exponents?.deallocate(); dt?.deallocate(); values.deallocate(); s0?.deallocate(); acc.deallocate(); m.deallocate()
            x.deallocate(); p.deallocate(); d.deallocate(); g.deallocate(); tmp.deallocate(); w.deallocate()
            sc.deallocate(); phi?.deallocate(); gT?.deallocate(); row.deallocate(); col.deallocate()
        }
        let ln2 = Float(M_LN2)

        // 1. Forward sweep (row statistics).
        var lost: [Int] = []
        if shifted {
            var q0 = 0
            while q0 < n {
                let tq = Swift.min(tile, n - q0)
                let out = acc + q0 * ldv, mq = m + q0
                if let s0, ctx.isSum {
                    GlobalStateTerms.addInitial(ctx, seq, s0: s0, L: nil, i0: q0, rows: tq, acc: out)
                    for r in 0..<tq {
                        let li: Float = L?[q0 + r] ?? 0
                        let den = abs(out[r * ldv + dv])
                        let bound = den == 0 ? li : a.op(li + ln2 * Float(Int((den.bitPattern >> 23) & 0xFF) - 126))
                        mq[r] = bound
                        Rows.scale(ctx, out + r * ldv, ldv, by: a.op(exp(a.op(li - bound))))
                    }
                }
                var k0 = 0
                while k0 <= q0 {
                    let tk = Swift.min(tile, n - k0), diagonal = k0 == q0
                    a.gemm(transA: false, transB: true, m: tq, n: tk, k: dk, a: seq.q + q0 * dk, lda: dk,
                           b: seq.k + k0 * dk, ldb: dk, beta: 0, c: x, ldc: tk)
                    if let tiles, let dt { tiles.fill(q0: q0, tq: tq, k0: k0, tk: tk, into: dt) }
                    for r in 0..<tq {
                        let xr = x + r * tk, cnt = diagonal ? r + 1 : tk
                        let dr: UnsafePointer<Float>? = dt.map { UnsafePointer($0 + r * tk) }
                        if ctx.isExponential {
                            let bm = Rows.logits(ctx, xr, cnt, exponents: dr)
                            raise(ctx, out + r * ldv, ldv, m: &mq[r], to: Swift.max(mq[r], bm), rescale: ctx.isSum)
                            if ctx.isSum { Rows.expShifted(ctx, xr, cnt, m: mq[r]) }
                        } else {
                            for j in 0..<cnt { xr[j] *= ctx.scale }
                            a.op(xr, cnt)
                            for j in 0..<cnt { w[j] = ctx.isSquared ? xr[j] * xr[j] : xr[j] }
                            a.op(w, cnt)
                            if let dr {
                                tmp.update(from: dr, count: cnt)
                            } else {
                                tmp.update(repeating: 0, count: cnt)
                            }
                            let bm = TiledRowBound.maximum(scores: xr, weights: w, exponents: tmp, count: cnt,
                                                           faithful: faithful, a)
                            raise(ctx, out + r * ldv, ldv, m: &mq[r], to: Swift.max(mq[r], bm), rescale: true)
                            let mi = mq[r]
                            if mi == -.infinity {
                                xr.update(repeating: 0, count: cnt)
                            } else {
                                for j in 0..<cnt { tmp[j] -= mi }
                                a.op(tmp, cnt)
                                for j in 0..<cnt { tmp[j] = exp(tmp[j]) }
                                a.op(tmp, cnt)
                                for j in 0..<cnt { xr[j] = w[j] == 0 ? 0 : w[j] * tmp[j] }
                                a.op(xr, cnt)
                            }
                        }
                        (xr + cnt).update(repeating: 0, count: tk - cnt)
                    }
                    if ctx.isSum {
                        a.gemm(transA: false, transB: false, m: tq, n: ldv, k: tk, a: x, lda: tk,
                               b: values + k0 * ldv, ldb: ldv, beta: 1, c: out, ldc: ldv)
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
        }
        if !lost.isEmpty {
            result.notes.append("forward sweep with the faithful raw-score running maximum lost rows \(Finish.describe(lost, of: n)) (lagging maximum, docs/MATH.md §6); their gradients are not finite; the stable maximum avoids it")
        }
        var o: UnsafeMutablePointer<Float>? = nil
        var rowFactor: UnsafeMutablePointer<Float>? = nil
        if ctx.isSum {
            let r = BackwardForward.outputs(ctx, acc: acc, rows: n, dv: dv)
            o = r.o
            if !r.zeroRows.isEmpty { result.notes.append(BackwardForward.zeroNote(r.zeroRows, of: n)) }
        } else if ctx.isExponential {
            rowFactor = allocateFloats(Swift.max(n, 1))
            for i in 0..<n { rowFactor![i] = a.op(exp(m[i])) }
        }
        defer { o?.deallocate(); rowFactor?.deallocate() }
        let dOt = Upstream.augmented(ctx, dO: input.dO, rows: n, dv: dv, o: o, acc: acc, rowScale: rowFactor)
        defer { dOt.deallocate() }

        // 3. Backward sweep: key tiles outer, query tiles inner.
        var k0 = 0
        while k0 < n {
            let tk = Swift.min(tile, n - k0)
            var q0 = k0
            while q0 < n {
                let tq = Swift.min(tile, n - q0)
                a.gemm(transA: false, transB: true, m: tq, n: tk, k: dk, a: seq.q + q0 * dk, lda: dk,
                       b: seq.k + k0 * dk, ldb: dk, beta: 0, c: x, ldc: tk)
                if let tiles, let dt { tiles.fill(q0: q0, tq: tq, k0: k0, tk: tk, into: dt) }
                PairWeights.compute(ctx, x: x, rows: tq, cols: tk, diagonalOffset: q0 == k0 ? 0 : nil,
                                    li: nil, lj: nil, shift: shifted ? UnsafePointer(m + q0) : nil,
                                    exponents: dt.map { UnsafePointer($0) }, p: p, d: d)
                PairBackward.accumulate(ctx, p: p, d: d, rows: tq, cols: tk, dOt: dOt + q0 * ldv,
                                        values: values + k0 * ldv, q: seq.q + q0 * dk, k: seq.k + k0 * dk, dk: dk,
                                        dv: dv, g: g, dq: result.dq + q0 * dk, dkOut: result.dk + k0 * dk,
                                        dvOut: result.dv + k0 * dv, rowSum: decay && !ctx.isSum ? row + q0 : nil,
                                        colSum: decay ? col + k0 : nil)
                q0 += tile
            }
            k0 += tile
        }
        // 4. Initial state.
        if let s0 {
            var q0 = 0
            while q0 < n {
                let tq = Swift.min(tile, n - q0)
                for r in 0..<tq {
                    let i = q0 + r
                    let logScale: Float? = L.map { l in shifted ? a.op(l[i] - m[i]) : l[i] } ?? (shifted ? -m[i] : nil)
                    sc[r] = logScale.map { a.op(ctx.featureScale * flushed(a.op(exp($0)))) } ?? ctx.featureScale
                }
                Features.columns(ctx, x: seq.q + q0 * dk, rows: tq, dk: dk, out: phi!, rowScale: sc)
                StateQueryBackward.accumulate(ctx, q: seq.q + q0 * dk, rows: tq, dk: dk, dv: dv, phiT: phi!,
                                              rowScale: sc, state: s0, dOt: dOt + q0 * ldv, gT: gT!,
                                              dq: result.dq + q0 * dk,
                                              rowSum: decay && !ctx.isSum ? row + q0 : nil,
                                              dState: result.dState!, beta: 1)
                q0 += tq
            }
        }
        if decay { result.finishDecay(ctx, row: ctx.isSum ? nil : UnsafePointer(row), col: col, n: n) }
        return result
    }

    /// Raises the running maximum to `mNew`, scaling the accumulated row by
    /// `exp(m − mNew)` when `rescale` (nothing to scale while `m = −∞`).
    private static func raise(_ ctx: CoreContext, _ row: UnsafeMutablePointer<Float>, _ n: Int,
                              m: inout Float, to mNew: Float, rescale: Bool) {
        if rescale && mNew != m && m != -.infinity {
            let a = ctx.arith
            Rows.scale(ctx, row, n, by: a.op(exp(a.op(m - mNew))))
        }
        m = mNew
    }
}

/// The decay exponents `D_ij` (`i` in query tile `[q0, q0+tq)`, `j` in key
/// tile `[k0, k0+tk)`, `k0 ≤ q0`, tiles aligned at 0) assembled exactly as
/// `TiledForm` does, so that the backward recomputes the forward's weights:
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
