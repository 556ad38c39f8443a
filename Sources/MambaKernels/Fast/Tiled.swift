#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// The tiled form with online normalisation (flash style, SPEC §3).
///
/// Query blocks of `T = options.tileSize` rows visit key blocks of `T` keys
/// up to the diagonal; per key block `X = Q_blk·K_blkᵀ` and `acc ←
/// acc·exp(m_old − m_new) + P·[V_blk | 1]` (`cblas_sgemm`), with a running
/// row maximum `m_i` that cancels in `num/den`. Decay uses the global prefix
/// sums `L` (Float32, like the quadratic form).
///
/// Sum-normalised cores:
/// - exponential: `λ_ij = s·q·k + L_i − L_j`, `m_i = max λ`, `p = exp(λ − m)`
///   (standard, stable);
/// - linear/relu-linear/squared, `options.stableTiledMaximum == false` — the
///   faithful rule of SPEC §3/§6: `m_i` is the running maximum of the *raw*
///   scores `s·q·k`, `p_ij = f(s·q·k)·exp(L_i − L_j − m_i)`. NOT stable: a
///   row whose first key block has raw scores ≈ −200 gets `exp(200) = Inf`
///   in Float32 (lagging maximum); when a later block raises `m_i`,
///   `Inf·exp(−200) = Inf·0 = NaN`. The kernel does not hide this: the rows
///   are reported in a diagnostic (`lagging maximum`) and come out NaN/Inf.
/// - same, `stableTiledMaximum == true` (default) — stable: `m_i` is the
///   running maximum of `λ̂_ij = ln2·(e(w_ij) − 126) + L_i − L_j`, where
///   `w = f(s·q·k)` and `e(w)` is its biased Float32 exponent, i.e. an upper
///   bound of `log w_ij + L_i − L_j` within `ln 2` (no logarithm evaluated).
///   Hence every `p_ij = w_ij·exp(L_i − L_j − m_i) ≤ 1` (nothing overflows
///   for `|s·q·k| < 2⁶³`) and the entry attaining the maximum has
///   `p ≥ 1/2` (the row is never lost to underflow); zero weights stay
///   exactly 0.
///
/// An initial state enters as a first pseudo block with log-weight
/// `L_i + ln2·(e(den₀) − 126)`, `den₀ = c·φ(q_i)ᵀz₀` (both rules). The final
/// state is formed as in the quadratic form.
///
/// Un-normalised cores have nothing to normalise: the tiled form is plain
/// blocked accumulation `acc += P·V` with `p = f(s·q·k)·exp(L_i − L_j)`
/// (exponential: an online maximum, folded back by `exp(m_i)` at the end).
enum TiledForm {
    static func run(_ seq: SequenceData, _ ctx: CoreContext) -> FormResult {
        let a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let tile = Swift.max(1, Swift.min(ctx.options.tileSize, Swift.max(n, 1)))
        let L = seq.globalPrefix(a)
        let values = seq.augmentedValues(ldv: ldv)
        let acc = allocateFloats(n * ldv, fill: 0)
        let s0 = Features.initialState(ctx, seq)
        let x = allocateFloats(tile * tile), tmp = allocateFloats(tile), w = allocateFloats(tile)
        defer { L?.deallocate(); values.deallocate(); acc.deallocate(); s0?.deallocate()
                x.deallocate(); tmp.deallocate(); w.deallocate() }
        let online = ctx.isSum || ctx.isExponential
        let faithful = ctx.isSum && !ctx.isExponential && !ctx.options.stableTiledMaximum
        let ln2 = Float(M_LN2)
        var lost: [Int] = []
        var q0 = 0
        while q0 < n {
            let tq = Swift.min(tile, n - q0)
            let out = acc + q0 * ldv
            var m = [Float](repeating: -.infinity, count: tq)
            if let s0 {
                if ctx.isSum {
                    GlobalStateTerms.addInitial(ctx, seq, s0: s0, L: nil, i0: q0, rows: tq, acc: out)
                    for r in 0..<tq {
                        let li: Float = L?[q0 + r] ?? 0
                        let den = abs(out[r * ldv + dv])
                        let bound = den == 0 ? li : a.op(li + ln2 * Float(Int((den.bitPattern >> 23) & 0xFF) - 126))
                        m[r] = bound
                        Rows.scale(ctx, out + r * ldv, ldv, by: a.op(exp(a.op(li - bound))))
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
                let lj: UnsafePointer<Float>? = L.map { UnsafePointer($0 + k0) }
                for r in 0..<tq {
                    let i = q0 + r, row = x + r * tk, cnt = diagonal ? r + 1 : tk
                    let li: Float = L?[i] ?? 0
                    if !online {
                        Rows.weights(ctx, row, cnt, li: li, lj: lj, tmp: tmp)
                    } else if ctx.isExponential {
                        let bm = Rows.logits(ctx, row, cnt, li: li, lj: lj, tmp: tmp)
                        rescale(ctx, out + r * ldv, ldv, m: &m[r], to: Swift.max(m[r], bm))
                        Rows.expShifted(ctx, row, cnt, m: m[r])
                    } else {
                        // Raw scores, then weights w = f(raw).
                        for j in 0..<cnt { row[j] *= ctx.scale }
                        a.op(row, cnt)
                        for j in 0..<cnt { w[j] = ctx.isSquared ? row[j] * row[j] : row[j] }
                        a.op(w, cnt)
                        // Log-decay D_j = L_i − L_j.
                        if let lj {
                            for j in 0..<cnt { tmp[j] = li - lj[j] }
                            a.op(tmp, cnt)
                        } else {
                            tmp.update(repeating: 0, count: cnt)
                        }
                        var bm = -Float.infinity
                        if faithful {
                            for j in 0..<cnt { bm = Swift.max(bm, row[j]) }
                        } else {
                            for j in 0..<cnt where w[j] > 0 {
                                let e = Int((w[j].bitPattern >> 23) & 0xFF) - 126
                                bm = Swift.max(bm, a.op(ln2 * Float(e) + tmp[j]))
                            }
                        }
                        rescale(ctx, out + r * ldv, ldv, m: &m[r], to: Swift.max(m[r], bm))
                        let mi = m[r]
                        if mi == -.infinity {
                            row.update(repeating: 0, count: cnt)
                        } else {
                            for j in 0..<cnt { tmp[j] -= mi }
                            a.op(tmp, cnt)
                            for j in 0..<cnt { tmp[j] = exp(tmp[j]) }
                            a.op(tmp, cnt)
                            for j in 0..<cnt { row[j] = w[j] == 0 ? 0 : w[j] * tmp[j] }
                            a.op(row, cnt)
                        }
                    }
                    (row + cnt).update(repeating: 0, count: tk - cnt)
                }
                a.gemm(transA: false, transB: false, m: tq, n: ldv, k: tk, a: x, lda: tk, b: values + k0 * ldv,
                       ldb: ldv, beta: 1, c: out, ldc: ldv)
                k0 += tile
            }
            if ctx.isExponential && !ctx.isSum {
                for r in 0..<tq { Rows.scale(ctx, out + r * ldv, ldv, by: a.op(exp(m[r]))) }
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
        var (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        if !lost.isEmpty {
            notes.insert("tiled form with the faithful raw-score running maximum lost rows \(Finish.describe(lost, of: n)) (lagging maximum, SPEC §6: exp(L_i − L_j − m_i) overflowed or was cancelled); the stable maximum avoids it", at: 0)
        }
        let state = ctx.isExponential ? nil : GlobalStateTerms.final(ctx, seq, s0: s0, L: L, values: values)
        return FormResult(o: o, state: state, notes: notes)
    }

    /// Raises the running maximum to `mNew`, scaling the accumulated row by
    /// `exp(m − mNew)` (nothing to scale while `m = −∞`).
    private static func rescale(_ ctx: CoreContext, _ row: UnsafeMutablePointer<Float>, _ n: Int,
                                m: inout Float, to mNew: Float) {
        if mNew != m && m != -.infinity {
            let a = ctx.arith
            Rows.scale(ctx, row, n, by: a.op(exp(a.op(m - mNew))))
        }
        m = mNew
    }
}
