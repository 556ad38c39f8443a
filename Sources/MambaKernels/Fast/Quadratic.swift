#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// State terms of the parallel forms (quadratic and tiled): the initial
/// state decays by the prefix sum `L_i = a_0 + … + a_i` (a sum of one sign,
/// `L_{−1} = 0`, so `a_0` decays the initial state), the final state's terms
/// by the segment sums `D_{N−1,j}` of `DecayExponents`.
enum GlobalStateTerms {
    /// The query-side factor `c·exp(L_i)` of the initial-state term (`c`
    /// without decay), in the working format.
    static func base(_ ctx: CoreContext, L: UnsafePointer<Float>?, _ i: Int) -> Float {
        let a = ctx.arith
        return L.map { a.op(ctx.featureScale * flushed(a.op(exp($0[i])))) } ?? ctx.featureScale
    }

    /// `acc[r, :] += c·exp(L_i)·φ(q_i)ᵀ S₀` for rows `i = i0 + r`, `r < rows`
    /// (`acc` has leading dimension `ldv`; the last column gathers `z₀`).
    /// With the row guard (`RowGuard`), row `r`'s features carry the factor
    /// `2^{rowShift[r] − stateShift}` and `S₀` the factor `2^{stateShift}`
    /// (both applied before the operands are rounded), so the term is added
    /// times `2^{rowShift[r]}`, like the row's weights.
    static func addInitial(_ ctx: CoreContext, _ seq: SequenceData, s0: UnsafePointer<Float>,
                           L: UnsafePointer<Float>?, i0: Int, rows: Int, acc: UnsafeMutablePointer<Float>,
                           rowShift: [Int]? = nil, stateShift: Int = 0) {
        let a = ctx.arith, dk = seq.dk, ldv = ctx.ldv(seq.dv)
        let f = ctx.internalFeatures(dk)!
        let phi = allocateFloats(rows * f), sc = allocateFloats(rows)
        defer { phi.deallocate(); sc.deallocate() }
        for r in 0..<rows {
            let b = base(ctx, L: L, i0 + r)
            sc[r] = rowShift.map { a.op(b * RowGuard.power($0[r] - stateShift)) } ?? b
        }
        Features.columns(ctx, x: seq.q + i0 * dk, rows: rows, dk: dk, out: phi, rowScale: sc)
        a.gemm(transA: true, transB: false, m: rows, n: ldv, k: f, a: phi, lda: rows, b: s0, ldb: ldv,
               beta: 1, c: acc, ldc: ldv, scaleB: RowGuard.power(stateShift))
    }

    /// Final state `exp(L_{N−1})·S₀ + Σ_j exp(D_{N−1,j})·φ(k_j)·[v_j | 1]ᵀ`
    /// (`F×ldv`), accumulated over blocks of 256 keys with `cblas_sgemm`;
    /// `D_{N−1,j}` are the segment sums `a_{j+1} + … + a_{N−1}`
    /// (`DecayExponents.toEnd`).
    static func final(_ ctx: CoreContext, _ seq: SequenceData, s0: UnsafePointer<Float>?,
                      decay: DecayExponents?, values: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        let a = ctx.arith, n = seq.n, dk = seq.dk, ldv = ctx.ldv(seq.dv)
        let f = ctx.internalFeatures(dk)!
        let out = allocateFloats(f * ldv, fill: 0)
        var haveState = false
        if let s0 {
            out.update(from: s0, count: f * ldv)
            if let decay, n > 0 { Rows.scale(ctx, out, f * ldv, by: flushed(a.op(exp(decay.prefix[n - 1])))) }
            haveState = true
        }
        let G: UnsafeMutablePointer<Float>? = decay.map { d in
            let g = allocateFloats(Swift.max(n, 1))
            d.toEnd(g)
            return g
        }
        let block = 256
        let phi = allocateFloats(Swift.min(block, Swift.max(n, 1)) * f)
        let vd = allocateFloats(Swift.min(block, Swift.max(n, 1)) * ldv)
        defer { phi.deallocate(); vd.deallocate(); G?.deallocate() }
        var j0 = 0
        while j0 < n {
            let cnt = Swift.min(block, n - j0)
            Features.columns(ctx, x: seq.k + j0 * dk, rows: cnt, dk: dk, out: phi, rowScale: nil)
            var vals = values + j0 * ldv
            if let G {
                for r in 0..<cnt {
                    let g = flushed(a.op(exp(G[j0 + r])))
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

/// The quadratic (masked matrix) form of docs/MATH.md §3, Float32/Float16.
///
/// Per block of 128 query rows `i`: `X = Q_blk·Kᵀ` over the keys `j ≤ i`
/// (`cblas_sgemm`), then `w_ij = f(s·X_ij)·exp(D_ij)` for `j ≤ i`
/// (log-space decay, exact zeros above the diagonal), `[num | den] =
/// W·[V | 1]` (`cblas_sgemm`), plus `c·exp(L_i)·φ(q_i)ᵀ[S₀ | z₀]` when an
/// initial state is given.
///
/// Decay exponents (`DecayExponents`): `D_ij = a_{j+1} + … + a_i` is a
/// *segment sum* (Mamba's stable `segsum`), built row by row as
/// `D_{i,j} = D_{i−1,j} + a_i` (`D_{i,i} = 0`; one vectorised pass of `i`
/// additions per row, `O(N²)` in total, far below the `O(N²·dk)` products),
/// so each exponent is accurate to `γ_{i−j}` relative whatever the size of
/// the global prefix sums; given prefix sums are used as `L_i − L_j` of the
/// given numbers. `KernelOptions.globalPrefixSums` restores the naive
/// `L_i − L_j` of global Float32 prefix sums, which exhibits the docs/MATH.md §6
/// cancellation hazard. The initial state decays by `exp(L_i)` (prefix sum).
///
/// Exponential score: `λ_ij = s·X_ij + D_ij`, row maximum `m_i`,
/// `w_ij = exp(λ_ij − m_i)`; for sum normalisation `m_i` cancels, for `none`
/// the row is multiplied by `exp(m_i)` at the end (Inf only if the true
/// result exceeds Float32).
///
/// Sum-normalised feature-map cores in `float16Acc32` and `float16`: the
/// row guard (`RowGuard`, `Rows.guardedWeights`) lifts rows whose weights and
/// state-term features are all below 1/2 by a power of two before they are
/// stored in binary16, so tiny rows do not round to `0/0`.
///
/// The final state is `exp(L_{N−1})·S₀ + Σ_j exp(D_{N−1,j}) φ(k_j) vⱼᵀ`.
/// Memory is `O(128·N)` per block; time `O(N²(dk + dv))`.
enum QuadraticForm {
    static func run(_ seq: SequenceData, _ ctx: CoreContext) -> FormResult {
        let a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let decay = seq.exponents(ctx)
        let values = seq.augmentedValues(ldv: ldv)
        let acc = allocateFloats(n * ldv)
        let s0 = Features.initialState(ctx, seq)
        let drow = allocateFloats(Swift.max(n, 1))
        defer { decay?.deallocate(); values.deallocate(); acc.deallocate(); s0?.deallocate(); drow.deallocate() }
        let d: UnsafePointer<Float>? = decay == nil ? nil : UnsafePointer(drow)
        let L: UnsafePointer<Float>? = decay.map { UnsafePointer($0.prefix) }
        let guarded = RowGuard.active(ctx)
        let eta = guarded && s0 != nil ? RowGuard.stateLift(s0!, ctx.internalFeatures(dk)! * ldv) : 0
        let blockRows = Swift.min(128, Swift.max(n, 1))
        let x = allocateFloats(blockRows * Swift.max(n, 1)), tmp = allocateFloats(Swift.max(n, 1))
        defer { x.deallocate(); tmp.deallocate() }
        var shifts = [Int](repeating: 0, count: blockRows)
        var i0 = 0
        while i0 < n {
            let rows = Swift.min(blockRows, n - i0), i1 = i0 + rows
            a.gemm(transA: false, transB: true, m: rows, n: i1, k: dk, a: seq.q + i0 * dk, lda: dk,
                   b: seq.k, ldb: dk, beta: 0, c: x, ldc: i1)
            var rowMax = [Float](repeating: 0, count: rows)
            for r in 0..<rows {
                let i = i0 + r, row = x + r * i1, cnt = i + 1
                decay?.advance(drow, to: i)
                if ctx.isExponential {
                    let m = Rows.logits(ctx, row, cnt, exponents: d)
                    Rows.expShifted(ctx, row, cnt, m: m)
                    rowMax[r] = m
                } else if guarded {
                    var other: Float = 0, cap = Int.max
                    if s0 != nil {
                        let b = GlobalStateTerms.base(ctx, L: L, i)
                        other = b * RowGuard.featureMax(ctx, seq.q + i * dk, dk: dk) * RowGuard.power(-eta)
                        cap = RowGuard.cap(ctx, base: b, eta: eta)
                    }
                    shifts[r] = Rows.guardedWeights(ctx, row, cnt, exponents: d, other: other, cap: cap, tmp: tmp)
                } else {
                    Rows.weights(ctx, row, cnt, exponents: d, tmp: tmp)
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
                GlobalStateTerms.addInitial(ctx, seq, s0: s0, L: L, i0: i0, rows: rows, acc: out,
                                            rowShift: guarded ? Array(shifts[0..<rows]) : nil, stateShift: eta)
            }
            i0 = i1
        }
        let (o, notes) = Finish.rows(ctx, acc: acc, n: n, dv: dv)
        let state = ctx.isExponential ? nil : GlobalStateTerms.final(ctx, seq, s0: s0, decay: decay, values: values)
        return FormResult(o: o, state: state, notes: notes)
    }
}
