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
/// 1. **Forward sweep** (query tiles outer, key tiles inner): the forward's
///    own sweep (`TiledForm.sweep`, one implementation for both directions),
///    with its online rule: the running maximum `m_i` —
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
        let acc = allocateFloats(n * ldv, fill: 0)
        let m = allocateFloats(Swift.max(n, 1), fill: shifted ? -.infinity : 0)
        let x = allocateFloats(tile * tile), p = allocateFloats(tile * tile), d = allocateFloats(tile * tile)
        let g = allocateFloats(tile * tile), sc = allocateFloats(tile)
        let phi = f.map { allocateFloats(tile * $0) }, gT = f.map { allocateFloats(tile * $0) }
        let row = allocateFloats(Swift.max(n, 1), fill: 0), col = allocateFloats(Swift.max(n, 1), fill: 0)
        defer {
            tiles?.deallocate(); exponents?.deallocate(); dt?.deallocate(); values.deallocate(); s0?.deallocate(); acc.deallocate(); m.deallocate()
            x.deallocate(); p.deallocate(); d.deallocate(); g.deallocate()
            sc.deallocate(); phi?.deallocate(); gT?.deallocate(); row.deallocate(); col.deallocate()
        }

        // 1. Forward sweep (row statistics): the forward's own sweep.
        var lost: [Int] = []
        if shifted {
            lost = TiledForm.sweep(seq, ctx, tile: tile, tiles: tiles, values: values, s0: s0, acc: acc, m: m,
                                   accumulate: false)
        }
        if !lost.isEmpty {
            result.notes.append("forward sweep with the faithful raw-score running maximum lost rows \(Finish.describe(lost, of: n)) (lagging maximum, docs/MATH.md §6); their gradients are not finite; the stable maximum avoids it")
        }
        // 2. The augmented upstream gradient. With one log-sum-exp per row (softmax,
        // `KernelOptions.logSumExpBackward`) the weights come out normalised, so
        // `dÕ_i = [dO_i | −δ_i]` without the division, and the shift is `lse_i`.
        let logSumExp = ctx.options.logSumExpBackward && ctx.isSum && ctx.isExponential
        let (dOt, zeroRows) = logSumExp
            ? BackwardForward.normalisedUpstream(ctx, dO: input.dO, acc: acc, rows: n, dv: dv)
            : BackwardForward.upstream(ctx, dO: input.dO, acc: acc, m: m, rows: n, dv: dv)
        if !zeroRows.isEmpty { result.notes.append(BackwardForward.zeroNote(zeroRows, of: n)) }
        defer { dOt.deallocate() }
        if logSumExp {
            for i in 0..<n { m[i] = a.op(m[i] + a.op(log(acc[i * ldv + dv]))) }
        }

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
}
