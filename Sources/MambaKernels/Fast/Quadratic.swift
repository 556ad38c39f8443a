#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// State terms of the parallel forms (quadratic and tiled), which use the
/// global prefix sums `L` (with `L_{−1} = 0`, so `a_0` decays the initial state).
enum GlobalStateTerms {
    /// `acc[r, :] += c·exp(L_i)·φ(q_i)ᵀ S₀` for rows `i = i0 + r`, `r < rows`
    /// (`acc` has leading dimension `ldv`; the last column gathers `z₀`).
    static func addInitial(_ ctx: CoreContext, _ seq: SequenceData, s0: UnsafePointer<Float>,
                           L: UnsafePointer<Float>?, i0: Int, rows: Int, acc: UnsafeMutablePointer<Float>) {
        let a = ctx.arith, dk = seq.dk, ldv = ctx.ldv(seq.dv)
        let f = ctx.internalFeatures(dk)!
        let phi = allocateFloats(rows * f), sc = allocateFloats(rows)
        defer { phi.deallocate(); sc.deallocate() }
        for r in 0..<rows { sc[r] = L.map { a.op(ctx.featureScale * flushed(a.op(exp($0[i0 + r])))) } ?? ctx.featureScale }
        Features.columns(ctx, x: seq.q + i0 * dk, rows: rows, dk: dk, out: phi, rowScale: sc)
        a.gemm(transA: true, transB: false, m: rows, n: ldv, k: f, a: phi, lda: rows, b: s0, ldb: ldv,
               beta: 1, c: acc, ldc: ldv)
    }

    /// Final state `exp(L_last)·S₀ + Σ_j exp(L_last − L_j)·φ(k_j)·[v_j | 1]ᵀ`
    /// (`F×ldv`), accumulated over blocks of 256 keys with `cblas_sgemm`.
    static func final(_ ctx: CoreContext, _ seq: SequenceData, s0: UnsafePointer<Float>?,
                      L: UnsafePointer<Float>?, values: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        let a = ctx.arith, n = seq.n, dk = seq.dk, ldv = ctx.ldv(seq.dv)
        let f = ctx.internalFeatures(dk)!
        let out = allocateFloats(f * ldv, fill: 0)
        let last: Float = (n > 0 ? L?[n - 1] : nil) ?? 0
        var haveState = false
        if let s0 {
            out.update(from: s0, count: f * ldv)
            if L != nil && n > 0 { Rows.scale(ctx, out, f * ldv, by: flushed(a.op(exp(last)))) }
            haveState = true
        }
        let block = 256
        let phi = allocateFloats(Swift.min(block, Swift.max(n, 1)) * f)
        let vd = allocateFloats(Swift.min(block, Swift.max(n, 1)) * ldv)
        defer { phi.deallocate(); vd.deallocate() }
        var j0 = 0
        while j0 < n {
            let cnt = Swift.min(block, n - j0)
            Features.columns(ctx, x: seq.k + j0 * dk, rows: cnt, dk: dk, out: phi, rowScale: nil)
            var vals = values + j0 * ldv
            if let L {
                for r in 0..<cnt {
                    let g = flushed(a.op(exp(a.op(last - L[j0 + r]))))
                    for c in 0..<ldv { vd[r * ldv + c] = values[(j0 + r) * ldv + c] * g }
                }
                a.op(vd, cnt * ldv)
                vals = UnsafePointer(vd)
            }
            a.gemm(transA: false, transB: false, m: f, n: ldv, k: cnt, a: phi, lda: cnt, b: vals, ldb: ldv,
                   beta: haveState ? 1 : 0, c: out, ldc: ldv)
            haveState = true
            j0 += cnt
        }
        return out
    }
}

/// The quadratic (masked matrix) form of SPEC §3, Float32/Float16.
///
/// Per block of 128 query rows `i`: `X = Q_blk·Kᵀ` over the keys `j ≤ i`
/// (`cblas_sgemm`), then `w_ij = f(s·X_ij)·exp(L_i − L_j)` for `j ≤ i`
/// (log-space decay, exact zeros above the diagonal), `[num | den] =
/// W·[V | 1]` (`cblas_sgemm`), plus `c·exp(L_i)·φ(q_i)ᵀ[S₀ | z₀]` when an
/// initial state is given. `L` is the global prefix sum, formed in Float32
/// from per-step decays exactly as real kernels do (so the prefix-sum
/// cancellation of SPEC §6 shows here), or the given prefix sums.
///
/// Exponential score: `λ_ij = s·X_ij + L_i − L_j`, row maximum `m_i`,
/// `w_ij = exp(λ_ij − m_i)`; for sum normalisation `m_i` cancels, for `none`
/// the row is multiplied by `exp(m_i)` at the end (Inf only if the true
/// result exceeds Float32).
///
/// The final state is `exp(L_last)·S₀ + Σ_j exp(L_last − L_j) φ(k_j) vⱼᵀ`.
/// Memory is `O(128·N)` per block; time `O(N²(dk + dv))`.
enum QuadraticForm {
    static func run(_ seq: SequenceData, _ ctx: CoreContext) -> FormResult {
        let a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let L = seq.globalPrefix(a)
        let values = seq.augmentedValues(ldv: ldv)
        let acc = allocateFloats(n * ldv)
        let s0 = Features.initialState(ctx, seq)
        defer { L?.deallocate(); values.deallocate(); acc.deallocate(); s0?.deallocate() }
        let blockRows = Swift.min(128, Swift.max(n, 1))
        let x = allocateFloats(blockRows * Swift.max(n, 1)), tmp = allocateFloats(Swift.max(n, 1))
        defer { x.deallocate(); tmp.deallocate() }
        var i0 = 0
        while i0 < n {
            let rows = Swift.min(blockRows, n - i0), i1 = i0 + rows
            a.gemm(transA: false, transB: true, m: rows, n: i1, k: dk, a: seq.q + i0 * dk, lda: dk,
                   b: seq.k, ldb: dk, beta: 0, c: x, ldc: i1)
            var rowMax = [Float](repeating: 0, count: rows)
            for r in 0..<rows {
                let i = i0 + r, row = x + r * i1, cnt = i + 1
                let li: Float = L?[i] ?? 0
                if ctx.isExponential {
                    let m = Rows.logits(ctx, row, cnt, li: li, lj: L, tmp: tmp)
                    Rows.expShifted(ctx, row, cnt, m: m)
                    rowMax[r] = m
                } else {
                    Rows.weights(ctx, row, cnt, li: li, lj: L, tmp: tmp)
                }
                (row + cnt).update(repeating: 0, count: i1 - cnt)
            }
            let out = acc + i0 * ldv
            a.gemm(transA: false, transB: false, m: rows, n: ldv, k: i1, a: x, lda: i1, b: values, ldb: ldv,
                   beta: 0, c: out, ldc: ldv)
            if ctx.isExponential && !ctx.isSum {
                for r in 0..<rows { Rows.scale(ctx, out + r * ldv, ldv, by: a.op(exp(rowMax[r]))) }
            }
            if let s0 {
                GlobalStateTerms.addInitial(ctx, seq, s0: s0, L: L, i0: i0, rows: rows, acc: out)
            }
            i0 = i1
        }
        let (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        let state = ctx.isExponential ? nil : GlobalStateTerms.final(ctx, seq, s0: s0, L: L, values: values)
        return FormResult(o: o, state: state, notes: notes)
    }
}
