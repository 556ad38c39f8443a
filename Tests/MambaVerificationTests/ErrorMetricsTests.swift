import MambaPrecision
@testable import MambaVerification
import Testing

@Suite("Error metrics")
struct ErrorMetricsTests {
    // binary16 spacing: 2⁻¹¹ in [½, 1), 2⁻¹⁰ in [1, 2), 2⁻⁹ in [2, 4), 2⁻⁸ in [4, 8).
    let oracle: [Double] = [1, 2, -0.5, 4]
    let candidate: [Double] = [1 + 0x1p-10, 2, -0.5 - 0x1p-10, 4 - 0x1p-9]

    func check(_ m: TensorMetrics) {
        #expect(m.shape == [2, 2] && m.format == "binary16")
        #expect(m.elementCount == 4 && m.comparedCount == 4 && m.oracleNonFiniteCount == 0 && m.nonFiniteCount == 0)
        #expect(m.maxAbsoluteError == 0x1p-9)
        // relative errors 2⁻¹⁰, 0, 2⁻⁹, 2⁻¹¹ → sorted 0, 2⁻¹¹, 2⁻¹⁰, 2⁻⁹.
        #expect(m.maxRelativeError == 0x1p-9)
        #expect(m.medianRelativeError == 0x1p-11)
        // ULP errors 1, 0, 2, ½ → sorted 0, ½, 1, 2.
        #expect(m.ulpP50 == 0.5)
        #expect(m.ulpP99 == 2)
        #expect(m.ulpMax == 2)
        // ‖ŷ − y‖² = 6·2⁻²⁰, ‖y‖² = 21.25.
        let normwise = (6.0 / 21.25).squareRoot() / 1024
        #expect(Swift.abs(m.normwiseRelativeError - normwise) <= 4 * normwise.ulp)
        let rms = (6.0 * 0x1p-20 / 4).squareRoot() / ((21.25 / 4).squareRoot() + 1e-8)
        #expect(Swift.abs(m.rmsRatio - rms) <= 4 * rms.ulp)
        #expect(m.worst.map(\.index) == [[1, 0], [0, 0], [1, 1], [0, 1]])
        #expect(m.worst.map(\.ulpError) == [2, 1, 0.5, 0])
        #expect(m.worst[0] == ElementError(index: [1, 0], offset: 2, candidate: -0.5 - 0x1p-10, oracle: -0.5,
                                           absoluteError: 0x1p-10, ulpError: 2, condition: 7))
    }

    @Test func handComputedDoubleOracle() throws {
        check(try TensorMetrics(candidate: candidate, oracle: oracle, shape: [2, 2], format: .binary16,
                                condition: [1, 1, 7, 1]))
    }

    @Test func handComputedBigFloatOracle() throws {
        check(try TensorMetrics(candidate: candidate, oracle: oracle.map { BigFloat($0, precision: 200) },
                                shape: [2, 2], format: .binary16, condition: [1, 1, 7, 1]))
    }

    @Test func worstCountLimitsAndTiesKeepLowestOffset() throws {
        let m = try TensorMetrics(candidate: [1, 1, 1, 1], oracle: [0, 0, 0, 0], shape: [4], format: .binary32,
                                  worstCount: 2)
        #expect(m.worst.map(\.offset) == [0, 1])
        let none = try TensorMetrics(candidate: [1], oracle: [0], shape: [1], format: .binary32, worstCount: 0)
        #expect(none.worst.isEmpty)
    }

    @Test func bigFloatOracleShowsErrorsBelowDoubleResolution() throws {
        let y = BigFloat(1, precision: 128) + BigFloat(mantissa: 1, exponent: -60, precision: 128)
        let exact = try TensorMetrics(candidate: [1], oracle: [y], shape: [1], format: .binary32)
        #expect(exact.maxAbsoluteError == 0x1p-60)
        #expect(exact.ulpMax == 0x1p-60 / 0x1p-23)
        let rounded = try TensorMetrics(candidate: [1], oracle: [y.doubleValue], shape: [1], format: .binary32)
        #expect(rounded.maxAbsoluteError == 0)
    }

    @Test func ulpIsTakenInTheOracleBinadeNotItsDoubleRounding() {
        // 1 − 2⁻⁷⁰ rounds to 1.0 in Double, but lies in [½, 1): binary32 ulp 2⁻²⁴.
        let justBelowOne = BigFloat(1, precision: 128) - BigFloat(mantissa: 1, exponent: -70, precision: 128)
        #expect(OracleComparison.ulp(of: justBelowOne, in: .binary32) == 0x1p-24)
        for format in NumberFormat.allCases {
            for x in [0.0, -0.0, 1, -3.5, 1e-40, 6e-8, 65504, 1e300, 0x1p-1074, .infinity] {
                let b = BigFloat(x, precision: 80)
                #expect(OracleComparison.ulp(of: b, in: format) == format.ulp(at: x), "\(format) \(x)")
            }
        }
    }

    @Test func zeroOracleRelativeError() throws {
        let m = try TensorMetrics(candidate: [0, 0x1p-24, 0], oracle: [0, 0, -0.0], shape: [3], format: .binary16)
        #expect(m.maxRelativeError == .infinity)       // y = 0 ≠ ŷ
        #expect(m.medianRelativeError == 0)            // 0/0 counts as exact
        #expect(m.ulpMax == 1)                         // ulp(0) is the smallest subnormal, 2⁻²⁴
        #expect(m.normwiseRelativeError == .infinity)
        // FLA's guard: rms(ŷ−y) / (0 + 1e−8).
        let rms = (0x1p-48 / 3).squareRoot() / 1e-8
        #expect(Swift.abs(m.rmsRatio - rms) <= 4 * rms.ulp)
        let exact = try TensorMetrics(candidate: [0, 0], oracle: [0, 0], shape: [2], format: .binary16)
        #expect(exact.normwiseRelativeError == 0 && exact.rmsRatio == 0 && exact.maxRelativeError == 0)
    }

    @Test func nonFiniteCandidatesAndOracles() throws {
        // NaN candidate at a finite oracle; +∞ at an overflowing oracle (1e5 > binary16 max);
        // anything at a NaN oracle; a finite element.
        let m = try TensorMetrics(candidate: [.nan, .infinity, 3, 1], oracle: [1, 1e5, .nan, 1],
                                  shape: [4], format: .binary16)
        #expect(m.comparedCount == 2 && m.oracleNonFiniteCount == 2 && m.nonFiniteCount == 1)
        #expect(m.maxAbsoluteError == .infinity && m.ulpMax == .infinity)
        #expect(m.normwiseRelativeError == .infinity && m.rmsRatio == .infinity)
        #expect(m.ulpP50 == 0)
        #expect(m.worst.first?.offset == 0 && m.worst.first?.candidate.isNaN == true)
        let inf = try TensorMetrics(candidate: [-.infinity], oracle: [2], shape: [1], format: .binary32)
        #expect(inf.nonFiniteCount == 1 && inf.maxRelativeError == .infinity)
    }

    @Test func normsDoNotOverflowOrUnderflow() throws {
        let big = try TensorMetrics(candidate: [2e300, 2e300, -2e300], oracle: [1e300, 1e300, -1e300],
                                    shape: [3], format: .binary64)
        #expect(Swift.abs(big.normwiseRelativeError - 1) <= 1e-15)
        #expect(Swift.abs(big.rmsRatio - 1) <= 1e-15)
        let tiny = try TensorMetrics(candidate: [2e-300, 4e-300], oracle: [1e-300, 2e-300],
                                     shape: [2], format: .binary64)
        #expect(Swift.abs(tiny.normwiseRelativeError - 1) <= 1e-15)
    }

    @Test func emptyTensorHasZeroStatistics() throws {
        let m = try TensorMetrics(candidate: [], oracle: [Double](), shape: [0, 4], format: .binary16)
        #expect(m.elementCount == 0 && m.ulpMax == 0 && m.normwiseRelativeError == 0 && m.rmsRatio == 0)
    }

    @Test func shapeErrorsNameTheArray() {
        #expect(throws: VerificationError.countMismatch(what: "oracle", shape: [2, 2], expected: 4, found: 3)) {
            try TensorMetrics(candidate: [1, 2, 3, 4], oracle: [1, 2, 3], shape: [2, 2], format: .binary16)
        }
        #expect(throws: VerificationError.invalidShape([2, -1])) {
            try TensorMetrics(candidate: [], oracle: [Double](), shape: [2, -1], format: .binary16)
        }
        #expect(throws: VerificationError.countMismatch(what: "condition", shape: [1], expected: 1, found: 2)) {
            try TensorMetrics(candidate: [1], oracle: [1], shape: [1], format: .binary16, condition: [1, 1])
        }
    }
}

@Suite("Percentiles and shapes")
struct PercentileTests {
    @Test func nearestRank() {
        let ten = (1...10).map(Double.init)
        #expect(Percentile.nearestRank(of: ten, percent: 0) == 1)
        #expect(Percentile.nearestRank(of: ten, percent: 10) == 1)
        #expect(Percentile.nearestRank(of: ten, percent: 11) == 2)
        #expect(Percentile.nearestRank(of: ten, percent: 50) == 5)
        #expect(Percentile.nearestRank(of: ten, percent: 99) == 10)
        #expect(Percentile.nearestRank(of: ten, percent: 100) == 10)
        #expect(Percentile.nearestRank(of: [1, 2, 3, 4], percent: 50) == 2)   // lower middle
        #expect(Percentile.nearestRank(of: [7], percent: 99) == 7)
        #expect(Percentile.nearestRank(of: [], percent: 50) == 0)
        let hundred = (1...100).map(Double.init)
        #expect(Percentile.nearestRank(of: hundred, percent: 99) == 99)
        let thousand = (1...1000).map(Double.init)
        #expect(Percentile.nearestRank(of: thousand, percent: 99) == 990)
    }

    @Test func ulpPercentilesOverManyElements() throws {
        // 200 elements at y = 1 (binary16 ulp 2⁻¹⁰) with errors k·2⁻¹⁰, k = 0…199 in scrambled order.
        let k = (0..<200).map { ($0 * 77) % 200 }
        let m = try TensorMetrics(candidate: k.map { 1 + Double($0) * 0x1p-10 }, oracle: Array(repeating: 1, count: 200),
                                  shape: [10, 20], format: .binary16)
        #expect(m.ulpP50 == 99)      // rank 100
        #expect(m.ulpP99 == 197)     // rank 198
        #expect(m.ulpMax == 199)
        #expect(m.worst.first?.index == TensorShape.index(ofOffset: k.firstIndex(of: 199)!, in: [10, 20]))
    }

    @Test func multiIndex() throws {
        #expect(TensorShape.index(ofOffset: 0, in: [2, 3, 4]) == [0, 0, 0])
        #expect(TensorShape.index(ofOffset: 23, in: [2, 3, 4]) == [1, 2, 3])
        #expect(TensorShape.index(ofOffset: 13, in: [2, 3, 4]) == [1, 0, 1])
        #expect(TensorShape.index(ofOffset: 0, in: []) == [])
        #expect(try TensorShape.elementCount(of: []) == 1)
        #expect(throws: VerificationError.invalidShape([Int.max, 2])) { try TensorShape.elementCount(of: [Int.max, 2]) }
    }
}
