@testable import MambaKernels
import MambaVariants
import Testing

/// The 3xTF32 product model (`Arithmetic.splitTF32Gemm`, CUTLASS's
/// `OpMultiplyAddFastF32`): `x = big + small + r` with `big` the truncated
/// TF32 value and `small = tf32(x − big)`; `A·B ≈ A_s·B_b + A_b·B_s + A_b·B_b`.
@Suite("3xTF32 GEMM model")
struct SplitTF32GemmTests {
    static func gemm(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, mode: PrecisionMode = .float32,
                     split: Bool = true, beta: Float = 0, c: [Float]? = nil) -> [Float] {
        arithmeticGemm(Arithmetic(mode, splitTF32: split), a, b, m: m, n: n, k: k, beta: beta, c: c)
    }

    /// One product, worked by hand: `a = b = 1 + 2⁻¹¹ + 2⁻²³`. `big = 1`
    /// (13 low bits dropped), `x − big = 2⁻¹¹ + 2⁻²³` needs 13 bits and rounds
    /// to `small = 2⁻¹¹`; the model returns `1 + 2·2⁻¹¹` while the true product
    /// is `1 + 2⁻¹⁰ + 2⁻²² + …` — the two dropped terms, `2⁻²²` and the
    /// residuals `2·2⁻²³`, are exactly its error.
    @Test func oneProductLosesTheSmallTimesSmallTermAndTheResidual() {
        let x: Float = 1 + 0x1p-11 + 0x1p-23
        let model = Self.gemm([x], [x], m: 1, n: 1, k: 1)[0]
        #expect(model == 1 + 0x1p-10)
        let sgemm = Self.gemm([x], [x], m: 1, n: 1, k: 1, split: false)[0]
        #expect(sgemm == Float(Double(x) * Double(x)))
        #expect(sgemm != model)
    }

    /// TF32 operands split exactly (`small = 0`): the model is then one exact
    /// TF32 product per term, as sgemm's.
    @Test func tf32OperandsAreExact() {
        let a: [Float] = [1.5, -0.75, 3, 0.125], b: [Float] = [2, 0.5, -1.25, 8]
        #expect(Self.gemm(a, b, m: 1, n: 1, k: 4) == Self.gemm(a, b, m: 1, n: 1, k: 4, split: false))
    }

    /// On random operands every product errs by at most `2⁻¹⁹` relative (the
    /// dropped `a_s·b_s` ≤ 2⁻²⁰, residuals ≤ 2·2⁻²¹), so a dot of `k` terms of
    /// one sign is within `(2⁻²⁰ + 2⁻²⁰ + k·2⁻²⁴)·Σ|a_i b_i|` of the exact sum
    /// — and measurably worse than sgemm's (the point of the profile).
    @Test func errorIsBoundedAndLargerThanFloat32s() {
        var rng = SplitMix(seed: 9)
        let k = 256
        func draw() -> Float { Float(rng.next() >> 40) * 0x1p-24 + 0.5 }
        var splitErr = 0.0, ieeeErr = 0.0
        for _ in 0..<16 {
            let a = (0..<k).map { _ in draw() }, b = (0..<k).map { _ in draw() }
            let exact = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let model = Double(Self.gemm(a, b, m: 1, n: 1, k: k)[0])
            let ieee = Double(Self.gemm(a, b, m: 1, n: 1, k: k, split: false)[0])
            #expect(abs(model - exact) <= (0x1p-19 + Double(k) * 0x1p-24) * exact)
            splitErr += abs(model - exact)
            ieeeErr += abs(ieee - exact)
        }
        #expect(splitErr > ieeeErr, "3xTF32 \(splitErr), IEEE \(ieeeErr)")
    }

    /// The split applies to Float32 mode only: other modes keep their own operands.
    @Test func onlyFloat32ModeSplits() {
        let x: Float = 1 + 0x1p-11 + 0x1p-23
        #expect(Self.gemm([x], [x], m: 1, n: 1, k: 1, mode: .tf32) ==
                Self.gemm([x], [x], m: 1, n: 1, k: 1, mode: .tf32, split: false))
    }

    /// `beta·C` is the accumulator's start, added once.
    @Test func betaIsAppliedOnce() {
        let a: [Float] = [1.5, 2], b: [Float] = [2, 0.25]
        #expect(Self.gemm(a, b, m: 1, n: 1, k: 2, beta: 1, c: [10]) == [13.5])
    }
}
