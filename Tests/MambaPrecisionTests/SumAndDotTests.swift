import Testing
import MambaPrecision

@Suite("Correctly rounded sums and fma dot products")
struct SumAndDotTests {
    @Test func sumIsOneRoundingOfTheExactSum() {
        let terms = [1e100, 1, -1e100].map { BigFloat($0, precision: 53) }
        #expect(BigFloat.sum(terms) == BigFloat(1))                        // naive left-to-right gives 0
        #expect((terms[0] + terms[1]) + terms[2] == BigFloat(0))
        // 1 + 2⁻⁵³ + 2⁻⁵³ at 53 bits: exact sum 1 + 2⁻⁵² is representable
        let small = [1, pow2(-53), pow2(-53)].map { BigFloat($0, precision: 53) }
        #expect(BigFloat.sum(small) == BigFloat(1 + pow2(-52)))
        #expect(BigFloat.sum(small.reversed()) == BigFloat(1 + pow2(-52)))
        #expect(BigFloat.sum([]) .isZero && BigFloat.sum([]).sign == .plus)
        #expect(BigFloat.sum([BigFloat.zero(sign: .minus), .zero(sign: .minus)]).sign == .minus)
        #expect(BigFloat.sum([BigFloat.zero(sign: .minus), .zero()]).sign == .plus)
        #expect(BigFloat.sum([BigFloat.infinity(), .infinity(sign: .minus)]).isNaN)
        #expect(BigFloat.sum([BigFloat(1), .nan()]).isNaN)
        #expect(BigFloat.sum([BigFloat(1, precision: 20), BigFloat(2, precision: 90)]).precision == 90)
    }

    @Test func dotAccumulatesWithFMA() {
        let a = [1.0, 2, 3].map { BigFloat($0) }, b = [4.0, 5, 6].map { BigFloat($0) }
        #expect(BigFloat.dot(a, b) == BigFloat(32))
        #expect(BigFloat.dot([], []).isZero)
        // −1 + (1 + 2⁻³⁰)² at 53 bits: the fma adds the exact product 1 + 2⁻²⁹ + 2⁻⁶⁰
        // (61 bits) to −1, so nothing is lost; rounding the product first would give 2⁻²⁹
        let x = BigFloat(1 + pow2(-30), precision: 53)
        let d = BigFloat.dot([BigFloat(-1), x], [BigFloat(1), x], precision: 53)
        #expect(d == BigFloat(pow2(-29) + pow2(-60)))
        #expect((x * x) - BigFloat(1) == BigFloat(pow2(-29)))
        #expect(BigFloat.dot([BigFloat.infinity()], [BigFloat(0)]).isNaN)
        // one rounding per step at the requested precision (documented; not correctly rounded):
        // at 3 bits 1 + ⅛ ties back to 1 twice, although the exact 1.25 is representable
        let ones = [1.0, 1, 1].map { BigFloat($0) }, eighths = [1, 0.125, 0.125].map { BigFloat($0) }
        #expect(BigFloat.dot(ones, eighths, precision: 3) == BigFloat(1))
        let products = (0..<3).map { ones[$0] * eighths[$0] }
        #expect(BigFloat.sum(products, precision: 3) == BigFloat(1.25))
    }
}
