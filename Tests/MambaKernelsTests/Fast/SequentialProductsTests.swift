@testable import MambaKernels
import Testing

/// `KernelOptions.sequentialProducts` (Proofs/T9, "One chain per product"):
/// every Float32 product element is one fused multiply-add chain over `k`
/// from 0, then `fl(alpha·acc) + fl(beta·C)` — bit for bit, whatever the
/// BLAS of the machine would have done; other modes ignore the option.
@Suite("one fused chain per product element")
struct SequentialProductsTests {
    @Test func gemmIsOneChainPerElement() {
        var rng = SplitMix(seed: 0xC4A1_0001)
        let arith = Arithmetic(.float32, sequential: true)
        for trial in 0..<50 {
            let m = 1 + Int(rng.next() % 9), n = 1 + Int(rng.next() % 9), k = 1 + Int(rng.next() % 150)
            let transA = rng.next() & 1 == 1, transB = rng.next() & 1 == 1
            let beta: Float = [0, 1, 0.75][Int(rng.next() % 3)], alpha: Float = trial % 5 == 0 ? 0.5 : 1
            let draw = { (rng: inout SplitMix) -> Float in Float(Int(rng.next() % 20001) - 10000) / 3333 }
            let a = (0..<(m * k)).map { _ in draw(&rng) }   // logical op(A): m×k
            let b = (0..<(k * n)).map { _ in draw(&rng) }   // logical op(B): k×n
            let aStored = transA ? (0..<(k * m)).map { a[($0 % m) * k + $0 / m] } : a
            let bStored = transB ? (0..<(n * k)).map { b[($0 % k) * n + $0 / k] } : b
            let c0 = (0..<(m * n)).map { _ in draw(&rng) }
            var c = c0
            aStored.withUnsafeBufferPointer { ap in bStored.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                arith.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!,
                           lda: transA ? m : k, b: bp.baseAddress!, ldb: transB ? k : n, beta: beta,
                           c: cp.baseAddress!, ldc: n)
            } } }
            for i in 0..<m {
                for j in 0..<n {
                    var acc: Float = 0
                    for p in 0..<k { acc = acc.addingProduct(a[i * k + p], b[p * n + j]) }
                    let prod = alpha * acc
                    let want = beta == 0 ? prod : beta * c0[i * n + j] + prod
                    #expect(c[i * n + j].bitPattern == want.bitPattern, "trial \(trial) (\(i), \(j)): \(c[i * n + j]) vs \(want)")
                }
            }
        }
    }

    /// The chain is not the order of a lane-split sum: on a sum whose terms
    /// cancel, one chain and two interleaved half-chains give different bits,
    /// so the test above would catch a kernel that reordered `k`.
    @Test func chainOrderIsObservable() {
        let k = 64
        let a: [Float] = (0..<k).map { p in
            let sign: Float = p % 2 == 0 ? 1 : -1
            return Float(1 + p % 7) * sign * 1.000_123
        }
        let b: [Float] = (0..<k).map { p in 1 + Float(p) * 0x1p-20 }
        var chain: Float = 0, even: Float = 0, odd: Float = 0
        for p in 0..<k { chain = chain.addingProduct(a[p], b[p]) }
        for p in stride(from: 0, to: k, by: 2) { even = even.addingProduct(a[p], b[p]); odd = odd.addingProduct(a[p + 1], b[p + 1]) }
        var c: Float = .nan
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
            Arithmetic(.float32, sequential: true).gemm(transA: false, transB: false, m: 1, n: 1, k: k,
                                                       a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: 1,
                                                       beta: 0, c: &c, ldc: 1)
        } }
        #expect(c.bitPattern == chain.bitPattern)
        #expect((even + odd).bitPattern != chain.bitPattern, "the example no longer separates the two orders")
    }

    /// Outside Float32 mode the option changes nothing (3xTF32 and the 16-bit
    /// profiles keep their own products).
    @Test func onlyFloat32ModeChains() {
        #expect(Arithmetic(.float32, sequential: true).sequential)
        #expect(!Arithmetic(.float32, splitTF32: true, sequential: true).sequential)
        #expect(!Arithmetic(.tf32, sequential: true).sequential)
        #expect(!Arithmetic(.float16, sequential: true).sequential)
        #expect(!Arithmetic(.float16Acc32, sequential: true).sequential)
    }
}
