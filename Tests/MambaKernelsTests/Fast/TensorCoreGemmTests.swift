@testable import MambaKernels
import MambaVariants
import Testing

/// The tensor-core accumulation model (`Arithmetic.tensorCoreGemm`): blocks of
/// 16 exact products and the accumulator aligned to the largest exponent,
/// truncated toward zero to 24 + 3 bits of it, then to Float32.
@Suite("tensor-core GEMM model")
struct TensorCoreGemmTests {
    static func gemm(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, beta: Float = 0, c: [Float]? = nil,
                     tensorCore: Bool) -> [Float] {
        arithmeticGemm(Arithmetic(.bfloat16Acc32, tensorCore: tensorCore), a, b, m: m, n: n, k: k, beta: beta, c: c)
    }

    /// `alpha` scales the products, not `beta·C` (`gemm`'s contract; the backward
    /// passes call it with the score scale and `beta = 1`).
    @Test func alphaScalesTheProductOnly() {
        for tensorCore in [true, false] {
            let c = arithmeticGemm(Arithmetic(.bfloat16Acc32, tensorCore: tensorCore), [1.5, 2], [2, 0.25],
                                   m: 1, n: 1, k: 2, alpha: 0.5, beta: 1, c: [10])
            #expect(c == [11.75], "tensorCore \(tensorCore): \(c)")
        }
    }

    /// Sixteen products of 2⁻²⁷ beside an accumulator of 1: each sits below the
    /// block's grid 2⁻²⁶ and is shifted out, so the accumulator stays 1; a
    /// round-to-nearest sum keeps them (1 + 2⁻²³ is a Float32 number).
    @Test func productsBelowTheAlignedGridAreLost() {
        let a = [Float](repeating: 0x1p-14, count: 16), b = [Float](repeating: 0x1p-13, count: 16)
        #expect(Self.gemm(a, b, m: 1, n: 1, k: 16, beta: 1, c: [1], tensorCore: true) == [1])
        #expect(Self.gemm(a, b, m: 1, n: 1, k: 16, beta: 1, c: [1], tensorCore: false) == [1 + 0x1p-23])
    }

    /// Three extra bits: a product of 2⁻²⁶ (on the grid) survives its block, and
    /// eight of them add up to 2⁻²³; the sum is then truncated, never rounded up.
    @Test func extraBitsAreKeptAndTheSumIsTruncated() {
        let a = [Float](repeating: 0x1p-13, count: 8), b = [Float](repeating: 0x1p-13, count: 8)
        #expect(Self.gemm(a, b, m: 1, n: 1, k: 8, beta: 1, c: [1], tensorCore: true) == [1 + 0x1p-23])
        // 1 + 7·2⁻²⁶ lies between 1 and 1 + 2⁻²³ (nearer the latter): truncated to 1.
        #expect(Self.gemm(Array(a.prefix(7)), Array(b.prefix(7)), m: 1, n: 1, k: 7, beta: 1, c: [1],
                          tensorCore: true) == [1])
        #expect(Self.gemm(Array(a.prefix(7)), Array(b.prefix(7)), m: 1, n: 1, k: 7, beta: 1, c: [1],
                          tensorCore: false) == [1 + 0x1p-23])
    }

    /// On bfloat16 operands whose products and sums are exact in Float32 the
    /// model is exact too, and on random ones it is biased toward zero: a long
    /// accumulation of positive products never exceeds the exact sum.
    @Test func exactWhenNothingIsLostAndBiasedTowardZeroOtherwise() {
        let small: [Float] = [1, 2, 0.5, -1, 3, 0.25, -2, 1.5]
        let exact = Self.gemm(small, small, m: 1, n: 1, k: 8, tensorCore: true)
        #expect(exact == [small.reduce(0) { $0 + $1 * $1 }])
        var rng = SplitMix(seed: 5)
        let k = 4096
        let a = (0..<k).map { _ in Float32Rounding.bfloat16.round(Float(rng.next() >> 40) * 0x1p-24 + 0.5) }
        let b = (0..<k).map { _ in Float32Rounding.bfloat16.round(Float(rng.next() >> 40) * 0x1p-24 + 0.5) }
        let truth = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let model = Double(Self.gemm(a, b, m: 1, n: 1, k: k, tensorCore: true)[0])
        let nearest = Double(Self.gemm(a, b, m: 1, n: 1, k: k, tensorCore: false)[0])
        #expect(model < truth)
        // Several times the round-to-nearest error (measured here: see the assertion's message).
        #expect((truth - model) > 2 * abs(truth - nearest), "model \(truth - model), nearest \(truth - nearest)")
    }
}
