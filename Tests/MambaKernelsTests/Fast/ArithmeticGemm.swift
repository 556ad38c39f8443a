@testable import MambaKernels

/// `arith.gemm` on row-major arrays, `C = alpha·A·B + beta·C` with `A` `m×k`, `B` `k×n`
/// (`c` nil: zeros): the GEMM models' tests call the kernels' own product this way.
func arithmeticGemm(_ arith: Arithmetic, _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int,
                    alpha: Float = 1, beta: Float = 0, c: [Float]? = nil) -> [Float] {
    var out = c ?? [Float](repeating: 0, count: m * n)
    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in out.withUnsafeMutableBufferPointer { cp in
        arith.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, lda: k,
                   b: bp.baseAddress!, ldb: n, beta: beta, c: cp.baseAddress!, ldc: n)
    } } }
    return out
}
