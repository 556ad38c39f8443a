import CHalf
import COpenBLAS
import MambaPrecision
import MambaVariants

/// How a precision mode is realised by the optimized kernels: which values
/// are rounded to which format, and where (docs/MATH.md §7).
///
/// The model, per `PrecisionMode`:
///
/// - `float32`: Float32 inputs, arithmetic and outputs; GEMMs are
///   `cblas_sgemm`.
/// - `float16Acc32` (tensor-core style, as FLA's chunk kernels do): q, k, v
///   are rounded to binary16 once; the decay input and the initial state are
///   read in Float32 (real kernels form `exp` of Float32 prefix sums and keep
///   `h0` in Float32; rounding given Float32 prefix sums of size 100 to
///   bfloat16 would move exponents by O(1));
///   every *operand of a matrix product* is stored in binary16 — this covers
///   the inputs and also the intermediates a tensor-core kernel keeps in
///   half before its next GEMM (the intra-chunk/tile score matrix `P`, the
///   decay-scaled features `exp(ℓ)·φ(q)`, the decay-scaled values, and the
///   chunk state `S` when it multiplies queries; the carried state itself
///   stays Float32, as FLA keeps `b_h` in registers). Products and sums are
///   Float32 (`cblas_sgemm` on rounded copies); elementwise work (`exp`,
///   decay, division) is Float32; the output is rounded to binary16; the
///   final state is returned in Float32. The recurrent form follows FLA's
///   `fused_recurrent`: half inputs upcast once, all arithmetic in Float32.
/// - `float16`: every arithmetic operation is rounded to binary16 — each
///   product and each partial sum of every dot product (own GEMM loops,
///   sequential order over the reduction index), each elementwise operation,
///   the state after each update. It is emulated in Float32 by rounding after
///   each operation; for `+ − × ÷` of binary16 operands this is exactly the
///   correctly rounded binary16 result (Float32 has 24 ≥ 2·11 + 2 bits, so
///   the double rounding is innocuous). `exp` and `log` are evaluated in
///   Float32 and rounded (not always correctly rounded). No fused
///   multiply-add. The constant √2 of the packed second-order map is itself
///   binary16 (1.4140625), as a half kernel would store it.
/// - `bfloat16Acc32`: as `float16Acc32` with bfloat16 in place of binary16.
/// - `tf32`: q, k, v and every matrix-product operand rounded to TF32
///   (11-bit significand, Float32 range); decay, state, accumulation and
///   output in Float32.
/// - `float32` with `KernelOptions.splitTF32Products` (3xTF32): as `float32`,
///   but every matrix product is three TF32 products of split operands
///   (`splitTF32Gemm`).
///
/// Binary16 storage (both float16 modes) underflows below 2⁻²⁴: for
/// sum-normalised cores the forms lift small rows by powers of two before
/// storing (`RowGuard`, see `CoreKernels`).
@usableFromInline
struct Arithmetic {
    @usableFromInline let mode: PrecisionMode
    /// Format of q, k, v (and, except for TF32, of decay and initial state).
    @usableFromInline let input: Float32Rounding
    /// Format of the decay input and the initial state.
    @usableFromInline let decayAndState: Float32Rounding
    /// Format GEMM operands are rounded to before a Float32-accumulating product.
    @usableFromInline let operand: Float32Rounding
    /// Format the output is rounded to.
    @usableFromInline let output: Float32Rounding
    /// Every operation rounded to binary16.
    @usableFromInline let pureHalf: Bool
    /// Products of narrowed operands accumulate as a tensor core does (`tensorCoreGemm`).
    @usableFromInline let tensorCore: Bool
    /// Float32 mode, every matrix product in 3xTF32 (`splitTF32Gemm`).
    @usableFromInline let splitTF32: Bool
    /// Float32 mode, every matrix product as one fused multiply-add chain per
    /// element (`sequentialGemm`, `KernelOptions.sequentialProducts`).
    @usableFromInline let sequential: Bool
    /// Reusable buffers for operand copies and the binary16 GEMM (one
    /// `Arithmetic` serves one kernel call on one thread).
    @usableFromInline private(set) var scratch = Scratch()

    /// The same arithmetic with scratch buffers of its own, for another thread.
    func detached() -> Arithmetic {
        var copy = self
        copy.scratch = Scratch()
        return copy
    }

    /// - Parameter truncateTF32: in `tf32` mode, form TF32 operands by
    ///   truncation instead of rounding to nearest (`KernelOptions.tf32Truncation`).
    @usableFromInline
    init(_ mode: PrecisionMode, truncateTF32: Bool = false, tensorCore: Bool = false, splitTF32: Bool = false,
         sequential: Bool = false) {
        self.mode = mode
        let f = mode.formats
        input = Float32Rounding(f.input, truncating: truncateTF32)
        decayAndState = Float32Rounding(f.decayAndState)
        // Operands need a rounded copy only when they are narrower than the
        // accumulation; pure binary16 rounds inside its own GEMM (`halfGemm`).
        operand = f.operand == f.accumulation ? .float32 : Float32Rounding(f.operand, truncating: truncateTF32)
        output = Float32Rounding(f.output)
        pureHalf = f.everyOperationRounded
        self.splitTF32 = splitTF32 && mode == .float32
        self.sequential = sequential && mode == .float32 && !self.splitTF32
        self.tensorCore = tensorCore && (operand != .float32 || self.splitTF32) && !pureHalf
    }

    /// The format every intermediate result lives in: binary16 in pure
    /// `float16` mode, Float32 otherwise.
    @inlinable var working: Float32Rounding { pureHalf ? .float16 : .float32 }

    /// Rounds the result of an elementwise operation (no-op unless pure float16).
    @inlinable
    func op(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        if pureHalf { mc_round_float_through_half(p, n) }
    }

    /// One scalar result rounded to the working format.
    @inlinable
    func op(_ x: Float) -> Float { pureHalf ? Float32Rounding.float16.round(x) : x }

    /// `C ← alpha·op(A)·op(B) + beta·C`, row-major, `op(A)` is `m×k`,
    /// `op(B)` is `k×n`. Float32 modes call `cblas_sgemm` (operands rounded
    /// to `operand` first when that is not Float32); pure float16 uses
    /// `halfGemm`. `beta == 0` overwrites `C` (NaN in `C` is not propagated).
    /// `scaleB` (a power of two, `RowGuard`) multiplies `B` in Float32
    /// *before* it is rounded to the operand format.
    @inlinable
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, scaleB: Float = 1) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for i in 0..<m {
                let row = c + i * ldc
                for j in 0..<n { row[j] = beta == 0 ? 0 : op(beta * row[j]) }
            }
            return
        }
        if pureHalf {
            halfGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, scaleB: scaleB)
            return
        }
        if splitTF32 {
            splitTF32Gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                          b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, scaleB: scaleB)
            return
        }
        if operand == .float32 && scaleB != 1 {
            let (rb, cb) = transB ? (n, k) : (k, n)
            let bc = scratch.buffer(1, rb * cb)
            for i in 0..<rb { for j in 0..<cb { bc[i * cb + j] = b[i * ldb + j] * scaleB } }
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), bc, Int32(cb), beta, c, Int32(ldc))
            return
        }
        if sequential && scaleB == 1 {
            Self.sequentialGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if operand == .float32 {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        // Operands stored in the low-precision format: rounded tight copies.
        let (ra, ca) = transA ? (k, m) : (m, k)
        let (rb, cb) = transB ? (n, k) : (k, n)
        let ac = scratch.buffer(0, ra * ca)
        let bc = scratch.buffer(1, rb * cb)
        for i in 0..<ra { (ac + i * ca).update(from: a + i * lda, count: ca) }
        if scaleB == 1 {
            for i in 0..<rb { (bc + i * cb).update(from: b + i * ldb, count: cb) }
        } else {
            for i in 0..<rb { for j in 0..<cb { bc[i * cb + j] = b[i * ldb + j] * scaleB } }
        }
        operand.round(ac, ra * ca)
        operand.round(bc, rb * cb)
        if tensorCore {
            tensorCoreGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ac, lda: ca,
                           b: bc, ldb: cb, beta: beta, c: c, ldc: ldc)
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, ac, Int32(ca), bc, Int32(cb), beta, c, Int32(ldc))
    }

    /// `C ← alpha·op(A)·op(B) + beta·C` with each element's sum one fused
    /// multiply-add chain `acc ← fma(a_ip, b_pj, acc)` over `p = 0, 1, …, k−1`
    /// from `acc = 0`, then `fl(alpha·acc) + fl(beta·C)` (`beta = 0` overwrites
    /// `C`): the order of a GPU thread that owns its output element. Its
    /// rounding error is the sequential sum's, `γ_k`-bounded and about `√k·u`
    /// typical (`KernelOptions.sequentialProducts`).
    @usableFromInline
    static func sequentialGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                               a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                               beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for p in 0..<k {
                    let x = transA ? a[p * lda + i] : a[i * lda + p]
                    let y = transB ? b[j * ldb + p] : b[p * ldb + j]
                    acc = acc.addingProduct(x, y)
                }
                let prod = alpha == 1 ? acc : alpha * acc
                c[i * ldc + j] = beta == 0 ? prod : beta * c[i * ldc + j] + prod
            }
        }
    }

    /// `C ← alpha·op(A)·op(B) + beta·C` in 3xTF32 (CUTLASS's `OpMultiplyAddFastF32`,
    /// `KernelOptions.splitTF32Products`): each operand `x` becomes
    /// `big = x` with its 13 low significand bits dropped (exactly a TF32
    /// value) and `small = tf32(x − big)` (the difference is exact; its
    /// rounding to nearest leaves a residual `≤ 2⁻²¹|x|`), and the product is
    /// `A_s·B_b + A_b·B_s + A_b·B_b`, accumulated in that order into `C` —
    /// one GEMM after another, each of exact TF32 products. `A_s·B_s`
    /// (`≤ 2⁻²⁰|ab|`) is dropped. Non-finite values have no small part.
    @usableFromInline
    func splitTF32Gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                       a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                       beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, scaleB: Float) {
        let (ra, ca) = transA ? (k, m) : (m, k)
        let (rb, cb) = transB ? (n, k) : (k, n)
        // Slots 4–7: `tensorCoreGemm` uses 2 and 3.
        let aBig = scratch.buffer(4, ra * ca), aSmall = scratch.buffer(5, ra * ca)
        let bBig = scratch.buffer(6, rb * cb), bSmall = scratch.buffer(7, rb * cb)
        for i in 0..<ra { (aBig + i * ca).update(from: a + i * lda, count: ca) }
        for i in 0..<rb { for j in 0..<cb { bBig[i * cb + j] = b[i * ldb + j] * scaleB } }
        func split(_ big: UnsafeMutablePointer<Float>, _ small: UnsafeMutablePointer<Float>, _ count: Int) {
            small.update(from: big, count: count)
            truncateToTF32(big, count)
            for i in 0..<count { small[i] = small[i].isFinite ? small[i] - big[i] : 0 }
            roundToTF32(small, count)
        }
        split(aBig, aSmall, ra * ca)
        split(bBig, bSmall, rb * cb)
        for (i, (x, y)) in [(aSmall, bBig), (aBig, bSmall), (aBig, bBig)].enumerated() {
            let betaNow: Float = i == 0 ? beta : 1
            if tensorCore {
                tensorCoreGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: x, lda: ca,
                               b: y, ldb: cb, beta: betaNow, c: c, ldc: ldc)
            } else {
                cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(n), Int32(k), alpha, x, Int32(ca), y, Int32(cb), betaNow, c, Int32(ldc))
            }
        }
    }

    /// Products per aligned block of `tensorCoreGemm` (with the accumulator):
    /// the `k` of one Hopper `wgmma` for 16-bit operands.
    @usableFromInline static let tensorCoreBlock = 16
    /// Bits kept below the largest term's 24 when the block is aligned.
    @usableFromInline static let tensorCoreExtraBits = 3

    /// `C ← alpha·op(A)·op(B) + beta·C` accumulated as a tensor core does
    /// (Fasi, Higham, Mikaitis & Pranesh, "Numerical behavior of NVIDIA tensor
    /// cores", 2021): the products of the (already narrowed) operands are
    /// exact; for each block of `tensorCoreBlock` products along `k`, in order,
    /// the accumulator and the products are aligned to the largest exponent
    /// `e` among them, each is truncated toward zero to the grid `2^{e−26}`
    /// (24 bits and `tensorCoreExtraBits` = 3 more; bits shifted out are lost),
    /// the truncated terms are summed exactly and the sum is truncated toward
    /// zero to Float32. With `alpha = 1` the accumulator starts at `fl(beta·C)`
    /// (a product accumulated into `C`); otherwise it starts at 0 and the
    /// result is `fl(fl(alpha·acc) + fl(beta·C))`, as `gemm`'s contract
    /// `alpha·A·B + beta·C` says (the chained 3xTF32 products rely on it). Each block's terms are multiples
    /// of `2^{e−26}` below `2^{e+1}` in magnitude, so their sum is exact in Double.
    ///
    /// Fitted to an H100 (Triton 3.6 `tl.dot`, FLA's chunk_linear_attn final
    /// state, 5 dumps, N = 100 and 1000, fp16 and bf16): model vs real relative
    /// error 1.14e-7 vs 1.09e-7, 1.08e-6 vs 9.84e-7, 1.40e-6 vs 1.23e-6, bias
    /// toward zero (mean of `err·sign(y)` over rms err) −0.60…−0.69 in both;
    /// 24 bits (no extra) gives a third of the real error and half its bias,
    /// round-to-nearest sgemm a tenth and none.
    @usableFromInline
    func tensorCoreGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let block = Arithmetic.tensorCoreBlock
        // op(A) row-major m×k, op(B) column-major (one column of k per j): unit strides inside.
        let ap = scratch.buffer(2, m * k), bp = scratch.buffer(3, n * k)
        for i in 0..<m { for p in 0..<k { ap[i * k + p] = transA ? a[p * lda + i] : a[i * lda + p] } }
        for j in 0..<n { for p in 0..<k { bp[j * k + p] = transB ? b[j * ldb + p] : b[p * ldb + j] } }
        var prod = [Double](repeating: 0, count: block)
        for i in 0..<m {
            let ai = ap + i * k
            for j in 0..<n {
                let bj = bp + j * k
                let start: Float = beta == 0 ? 0 : beta * c[i * ldc + j]
                var acc: Float = alpha == 1 ? start : 0
                var p0 = 0
                while p0 < k {
                    let cnt = Swift.min(block, k - p0)
                    var top = Double(acc).magnitude
                    for t in 0..<cnt {
                        let x = Double(ai[p0 + t]) * Double(bj[p0 + t])  // exact: ≤ 24-bit significands
                        prod[t] = x
                        top = Swift.max(top, x.magnitude)
                    }
                    p0 += cnt
                    guard top.isFinite, top >= 0x1p-1000 else {
                        // Zero, tiny or non-finite: plain Float32 sums (nothing to align).
                        var s = Double(acc)
                        for t in 0..<cnt { s += prod[t] }
                        acc = Float(s)
                        continue
                    }
                    let grid = Double(sign: .plus, exponent: top.exponent - 23 - Arithmetic.tensorCoreExtraBits,
                                      significand: 1)
                    let inv = 1 / grid
                    var s = (Double(acc) * inv).rounded(.towardZero)
                    for t in 0..<cnt { s += (prod[t] * inv).rounded(.towardZero) }
                    s *= grid
                    var f = Float(s)
                    if Double(f).magnitude > s.magnitude { f = f > 0 ? f.nextDown : f.nextUp }
                    acc = f
                }
                c[i * ldc + j] = alpha == 1 ? acc : alpha * acc + start
            }
        }
    }

    /// `out[j·ldo + i] = x[i·ldx + j]` for a `rows × columns` `x`
    /// (`mc_transpose_float`: 8 × 8 register blocks; a plain double loop
    /// strides through memory on one side and was a tenth of pure binary16's
    /// chunked time at F = 2080, 16 × 16 scalar tiles still 8%).
    static func transpose(_ x: UnsafePointer<Float>, _ ldx: Int, rows: Int, columns: Int,
                          into out: UnsafeMutablePointer<Float>, _ ldo: Int) {
        mc_transpose_float(x, ldx, rows, columns, out, ldo)
    }

    /// Pure binary16 matrix product: every product `a_ip·b_pj` and every
    /// partial sum is rounded to binary16, summing over `p = 0, 1, …, k−1`
    /// in order from 0 (`mc_half_gemm`: native AVX512-FP16, or binary32
    /// operations rounded by F16C/AVX-512 conversions, chosen at run time —
    /// exact either way, docs/MATH.md §7.2); then `alpha·acc` (rounded),
    /// `beta·C` (rounded) and their sum (rounded). Steps and rows whose
    /// products are all exactly ±0 are not formed (`HalfGemmSkips`: the
    /// same bits).
    @usableFromInline
    func halfGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, scaleB: Float = 1) {
        let h = Float32Rounding.float16
        // Pack op(A) as mp×k and op(B) as k×np, row-major, zero-padded to the
        // vector kernel's multiples (padding rows/columns are computed, then dropped).
        let rowMultiple = Int(MC_HALF_GEMM_ROWS), columnMultiple = Int(mc_half_gemm_columns())
        let mp = (m + rowMultiple - 1) / rowMultiple * rowMultiple
        let np = (n + columnMultiple - 1) / columnMultiple * columnMultiple
        let ap = scratch.buffer(0, mp * k)
        let bp = scratch.buffer(1, k * np)
        if transA {
            Self.transpose(a, lda, rows: k, columns: m, into: ap, k)
        } else {
            for i in 0..<m { (ap + i * k).update(from: a + i * lda, count: k) }
        }
        (ap + m * k).update(repeating: 0, count: (mp - m) * k)
        if transB {
            Self.transpose(b, ldb, rows: n, columns: k, into: bp, np)
        } else {
            for p in 0..<k { (bp + p * np).update(from: b + p * ldb, count: n) }
        }
        if np > n { for p in 0..<k { (bp + p * np + n).update(repeating: 0, count: np - n) } }
        if scaleB != 1 {
            for p in 0..<k { let row = bp + p * np; for j in 0..<n { row[j] *= scaleB } }
            h.round(bp, k * np)
        }
        // Steps and rows whose products are all exactly ±0 are dropped (HalfGemmSkips).
        let (kept, kk) = HalfGemmSkips.compact(a: ap, m: m, k: k, b: bp, n: n, np: np, rowMultiple: rowMultiple)
        let mk = (kept.count + rowMultiple - 1) / rowMultiple * rowMultiple
        let alphaH = h.round(alpha), betaH = h.round(beta)
        // Row blocks of at most ~64K accumulators (256 KiB): bounded scratch
        // for any m (the quadratic form's N×N scores included).
        let blockRows = Swift.min(mp, Swift.max(rowMultiple, 65_536 / np / rowMultiple * rowMultiple))
        let acc = scratch.buffer(2, blockRows * np)
        var i0 = 0
        while i0 < kept.count {
            let rows = Swift.min(blockRows, mk - i0)
            if kk == 0 {
                acc.update(repeating: 0, count: rows * np)
            } else {
                mc_half_gemm(ap + i0 * kk, bp, acc, rows, np, kk)
            }
            for r in 0..<Swift.min(rows, kept.count - i0) {
                finishRow(c + kept[i0 + r] * ldc, acc + r * np, n: n, alphaH: alphaH, betaH: betaH)
            }
            i0 += rows
        }
        if kept.count < m {
            // Dropped rows: every sum is +0.
            let zero = scratch.buffer(3, n)
            var next = 0
            for i in 0..<m {
                if next < kept.count && kept[next] == i { next += 1; continue }
                zero.update(repeating: 0, count: n)
                finishRow(c + i * ldc, zero, n: n, alphaH: alphaH, betaH: betaH)
            }
        }
    }

    /// `crow ← alpha·arow (rounded) [+ beta·crow (rounded), rounded]`: the
    /// end of `halfGemm` for one row (`arow` is overwritten).
    @usableFromInline
    func finishRow(_ crow: UnsafeMutablePointer<Float>, _ arow: UnsafeMutablePointer<Float>, n: Int,
                   alphaH: Float, betaH: Float) {
        if alphaH != 1 {
            for j in 0..<n { arow[j] *= alphaH }
            mc_round_float_through_half(arow, n)
        }
        if betaH == 0 {
            crow.update(from: arow, count: n)
        } else {
            if betaH != 1 {
                for j in 0..<n { crow[j] *= betaH }
                mc_round_float_through_half(crow, n)
            }
            for j in 0..<n { crow[j] += arow[j] }
            mc_round_float_through_half(crow, n)
        }
    }
}

/// Growable scratch buffers, by slot; contents are undefined on return.
@usableFromInline
final class Scratch {
    private var buffers: [(UnsafeMutablePointer<Float>, Int)] = []

    @usableFromInline init() {}

    /// A buffer of at least `count` Float32 values for `slot` (reused across calls).
    @usableFromInline
    func buffer(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        while buffers.count <= slot { buffers.append((UnsafeMutablePointer<Float>.allocate(capacity: 1), 1)) }
        if buffers[slot].1 < count {
            buffers[slot].0.deallocate()
            let cap = Swift.max(count, buffers[slot].1 * 2)
            buffers[slot] = (UnsafeMutablePointer<Float>.allocate(capacity: cap), cap)
        }
        return buffers[slot].0
    }

    deinit { for (p, _) in buffers { p.deallocate() } }
}
