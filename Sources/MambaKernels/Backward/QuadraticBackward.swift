#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// The quadratic (masked matrix) backward pass, Float32/Float16 (see `CoreBackward`).
///
/// Per block of 128 query rows `i` (keys `j ≤ i`), one pass. The decay
/// exponents `D_ij = a_{j+1} + … + a_i` are those of `QuadraticForm`
/// (`DecayExponents`): segment sums for per-step decays (never the difference
/// of two global Float32 prefix sums, docs/MATH.md §6), `L_i − L_j` of given prefix
/// sums (or with `KernelOptions.globalPrefixSums`):
///
/// 1. `X = Q_blk·Kᵀ`; `p = w` (exponential: `exp(λ − m_i)` with the row
///    maximum `m_i` of `λ = s·X + D_ij`) and `d = f'·Γ` (`PairWeights`);
/// 2. sum normalisation: the forward `[num | den] = p·[V | 1] + Φ̃ᵀ[S₀|z₀]`
///    (`GlobalStateTerms.addInitial`), `O`, `δ` and `dÕ`; un-normalised:
///    `dÕ = dO` (exponential: `dO·e^{m_i}`);
/// 3. `PairBackward` (five GEMMs over `128 × (i₁)`): `dq` of the block, and
///    `dk`, `dv` and the column part of `dL` of all keys up to the block end
///    accumulated across blocks (working format);
/// 4. the initial state: `StateQueryBackward` with `Φ̃_i = c·e^{L_i}φ(q_i)`
///    (`dq`, the state's row part of `dL`, `[dS₀|dz₀] += Φ̃ᵀ·dÕ`).
///
/// Memory `O(128·N)`; time `O(N²(dk + dv))`.
enum QuadraticBackward {
    static func run(_ input: BackwardInput, _ ctx: CoreContext) -> BackwardResult {
        let seq = input.seq, a = ctx.arith, n = seq.n, dk = seq.dk, dv = seq.dv, ldv = ctx.ldv(dv)
        let f = ctx.internalFeatures(dk)
        let decay = seq.decay != nil
        // Decay exponents D_ij as in `QuadraticForm`: segment sums built row by
        // row (`DecayExponents.advance`), or L_i − L_j of given prefix sums;
        // `L` (the prefix sums) only decays the initial state.
        let exponents = seq.exponents(ctx)
        let L: UnsafeMutablePointer<Float>? = exponents?.prefix
        let values = seq.augmentedValues(ldv: ldv)
        let s0 = Features.initialState(ctx, seq)
        var result = BackwardResult.zeros(n: n, dk: dk, dv: dv, decay: decay, stateSize: s0 == nil ? nil : f! * ldv)
        let blockRows = Swift.min(128, Swift.max(n, 1)), width = Swift.max(n, 1)
        let x = allocateFloats(blockRows * width), p = allocateFloats(blockRows * width)
        let d = allocateFloats(blockRows * width), g = allocateFloats(blockRows * width)
        let dm: UnsafeMutablePointer<Float>? = decay ? allocateFloats(blockRows * width) : nil
        let drow: UnsafeMutablePointer<Float>? = decay ? allocateFloats(width) : nil
        let m = allocateFloats(blockRows), tmp = allocateFloats(width), sc = allocateFloats(blockRows)
        let out = allocateFloats(blockRows * ldv)
        let phi = f.map { allocateFloats(blockRows * $0) }, gT = f.map { allocateFloats(blockRows * $0) }
        let row = allocateFloats(width, fill: 0), col = allocateFloats(width, fill: 0)
        defer {
            exponents?.deallocate(); dm?.deallocate(); drow?.deallocate(); values.deallocate(); s0?.deallocate()
            x.deallocate(); p.deallocate(); d.deallocate(); g.deallocate(); m.deallocate(); tmp.deallocate()
            sc.deallocate(); out.deallocate(); phi?.deallocate(); gT?.deallocate(); row.deallocate(); col.deallocate()
        }
        var zeroRows: [Int] = []
        var i0 = 0
        while i0 < n {
            let rows = Swift.min(blockRows, n - i0), i1 = i0 + rows
            let qb = seq.q + i0 * dk
            a.gemm(transA: false, transB: true, m: rows, n: i1, k: dk, a: qb, lda: dk, b: seq.k, ldb: dk,
                   beta: 0, c: x, ldc: i1)
            if let exponents, let dm, let drow {
                for r in 0..<rows {
                    exponents.advance(drow, to: i0 + r)
                    (dm + r * i1).update(from: drow, count: i0 + r + 1)
                    (dm + r * i1 + i0 + r + 1).update(repeating: 0, count: rows - r - 1)
                }
            }
            if ctx.isExponential {
                for r in 0..<rows {
                    tmp.update(from: x + r * i1, count: i0 + r + 1)
                    m[r] = Rows.logits(ctx, tmp, i0 + r + 1, exponents: dm.map { UnsafePointer($0 + r * i1) })
                }
            }
            PairWeights.compute(ctx, x: x, rows: rows, cols: i1, diagonalOffset: i0, li: nil, lj: nil,
                                shift: ctx.isExponential ? UnsafePointer(m) : nil,
                                exponents: dm.map { UnsafePointer($0) }, p: p, d: d)
            if s0 != nil {
                for r in 0..<rows {
                    sc[r] = L.map { a.op(ctx.featureScale * flushed(a.op(exp($0[i0 + r])))) } ?? ctx.featureScale
                }
                Features.columns(ctx, x: qb, rows: rows, dk: dk, out: phi!, rowScale: sc)
            }
            // Upstream gradient of the block.
            if ctx.isSum {
                a.gemm(transA: false, transB: false, m: rows, n: ldv, k: i1, a: p, lda: i1, b: values, ldb: ldv,
                       beta: 0, c: out, ldc: ldv)
                if let s0 {
                    a.gemm(transA: true, transB: false, m: rows, n: ldv, k: f!, a: phi!, lda: rows, b: s0, ldb: ldv,
                           beta: 1, c: out, ldc: ldv)
                }
            }
            let (dOt, zero) = BackwardForward.upstream(ctx, dO: input.dO + i0 * dv, acc: out, m: m, rows: rows, dv: dv)
            zeroRows += zero.map { $0 + i0 }
            defer { dOt.deallocate() }
            let rowb: UnsafeMutablePointer<Float>? = decay && !ctx.isSum ? row + i0 : nil
            PairBackward.accumulate(ctx, p: p, d: d, rows: rows, cols: i1, dOt: dOt, values: values, q: qb, k: seq.k,
                                    dk: dk, dv: dv, g: g, dq: result.dq + i0 * dk, dkOut: result.dk, dvOut: result.dv,
                                    rowSum: rowb, colSum: decay ? col : nil)
            if let s0 {
                StateQueryBackward.accumulate(ctx, q: qb, rows: rows, dk: dk, dv: dv, phiT: phi!, rowScale: sc,
                                              state: s0, dOt: dOt, gT: gT!, dq: result.dq + i0 * dk, rowSum: rowb,
                                              dState: result.dState!, beta: 1)
            }
            i0 = i1
        }
        if !zeroRows.isEmpty { result.notes.append(BackwardForward.zeroNote(zeroRows, of: n)) }
        if decay { result.finishDecay(ctx, row: ctx.isSum ? nil : UnsafePointer(row), col: col, n: n) }
        return result
    }
}
