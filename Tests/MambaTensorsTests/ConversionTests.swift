import MambaTensors
import Testing

/// Conversions between stored formats, checked against independently known
/// values (literals and IEEE 754 facts), not against the implementation.
@Suite("TensorData conversions")
struct ConversionTests {
    @Test func bfloat16BitPatternsReadAsKnownFloats() throws {
        let bits: [UInt16] = [0x3F80, 0xC000, 0x3F00, 0x0001, 0x7F7F, 0x3DCD, 0x8000, 0x7F80, 0xFF80]
        let expected: [Float] = [1, -2, 0.5, 0x1p-133, 3.3895313892515355e38, 0.10009765625, -0.0,
                                 .infinity, -.infinity]
        let values = try TensorData(bitPatterns: Tensor(bits), dtype: .bfloat16).asFloat32().storage
        #expect(values.map(\.bitPattern) == expected.map(\.bitPattern))
        let wide = try TensorData(bitPatterns: Tensor(bits), dtype: .bfloat16).asFloat64().storage
        #expect(wide.map(\.bitPattern) == expected.map { Double($0).bitPattern })
    }

    @Test func halfSpecialsWidenExactly() throws {
        let data = TensorData(bitPatterns: Tensor(Specials.half), dtype: .float16)
        let floats = try data.asFloat32().storage
        let expected: [Float] = [0, -0.0, .infinity, -.infinity]
        #expect(floats.prefix(4).map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(floats[7] == 0x1p-24)                       // smallest subnormal
        #expect(floats[8] == 0x1p-14 - 0x1p-24)             // largest subnormal
        #expect(floats[9] == 0x1p-14)                       // smallest normal
        #expect(floats[10] == 65504 && floats[11] == -65504)
    }

    @Test func nanSignAndPayloadSurviveWidening() throws {
        // Signalling half NaN 0x7C01 and negative quiet NaN with payload 0xFE01.
        let half = TensorData(bitPatterns: Tensor([0x7C01, 0xFE01] as [UInt16]), dtype: .float16)
        #expect(try half.asFloat32().storage.map(\.bitPattern) == [0x7F80_2000, 0xFFC0_2000])
        #expect(try half.asFloat64().storage.map(\.bitPattern) == [0x7FF0_0400_0000_0000, 0xFFF8_0400_0000_0000])
        let float = TensorData(Tensor([Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFC0_0001)]))
        #expect(try float.asFloat64().storage.map(\.bitPattern) == [0x7FF0_0000_2000_0000, 0xFFF8_0000_2000_0000])
        let bf = TensorData(bitPatterns: Tensor([0x7F81] as [UInt16]), dtype: .bfloat16)
        #expect(try bf.asFloat32().storage.map(\.bitPattern) == [0x7F81_0000])
    }

    @Test func roundingToHalfIsSingleRounding() throws {
        // 1 + 2⁻¹¹ + 2⁻⁴⁰ lies just above the tie between 1 and 1 + 2⁻¹⁰. Rounding
        // through Float first lands exactly on the tie and then rounds to 1.
        let values: [Double] = [1 + 0x1p-11 + 0x1p-40, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 65519.99, 65520, 0x1p-25,
                                0x1p-25 + 0x1p-60, -1.5 * 0x1p-24, 1e300, -0.0]
        let bits = TensorData(rounding: Tensor(values), to: .float16).bitPatterns
        #expect(bits == [0x3C01, 0x3C00, 0x3C02, 0x7BFF, 0x7C00, 0x0000, 0x0001, 0x8002, 0x7C00, 0x8000])
    }

    @Test func roundingToBFloat16IsSingleRounding() throws {
        let values: [Double] = [1 + 0x1p-8 + 0x1p-40, 1 + 0x1p-8, 1 + 3 * 0x1p-8, 0x1p-134, 1.5 * 0x1p-133,
                                3.4e38, -1e-45, 0.1]
        let bits = TensorData(rounding: Tensor(values), to: .bfloat16).bitPatterns
        #expect(bits == [0x3F81, 0x3F80, 0x3F82, 0x0000, 0x0002, 0x7F80, 0x8000, 0x3DCD])
    }

    @Test func narrowedNaNsStayNaNWithTheirSign() throws {
        let nans = [Double(bitPattern: 0x7FF0_0000_0000_0001), -Double.nan]
        for dtype in [DType.float16, .bfloat16, .float32] {
            let narrowed = try TensorData(rounding: Tensor(nans), to: dtype).asFloat64().storage
            #expect(narrowed.allSatisfy { $0.isNaN }, "\(dtype)")
            #expect(narrowed.map(\.sign) == [.plus, .minus], "\(dtype)")
        }
    }

    @Test func asFloat16RoundsWiderTypes() throws {
        let data = TensorData(Tensor([Float(1 + 0x1p-11), 70000, 0.1]))
        #expect(try data.asFloat16().storage.map(\.bitPattern) == [0x3C00, 0x7C00, 0x2E66])
        let exact = TensorData(bitPatterns: Tensor(Specials.half), dtype: .float16)
        #expect(try exact.asFloat16().storage.map(\.bitPattern) == Specials.half)
    }

    @Test func float64ToFloat32RoundsToNearestEven() throws {
        let data = TensorData(Tensor([0.1, 1 + 0x1p-24, 1e300]))
        #expect(try data.asFloat32().storage == [0.1, 1, .infinity])
    }

    @Test func integerAndFloatingAccessorsRefuseTheOtherKind() throws {
        let ints = TensorData(Tensor<Int32>([0, 4, 9]))
        #expect(try ints.asInt64().storage == [0, 4, 9])
        let intError = tensorFileError { _ = try ints.asFloat32() }
        guard case .wrongDType(_, _, _, .int32) = intError else {
            Issue.record("expected wrongDType, got \(String(describing: intError))")
            return
        }
        let floatError = tensorFileError { _ = try TensorData(Tensor([1.0])).asInt64() }
        guard case .wrongDType(_, _, _, .float64) = floatError else {
            Issue.record("expected wrongDType, got \(String(describing: floatError))")
            return
        }
    }

    @Test func equalityIsBitwise() {
        let a = TensorData(Tensor([Double.nan, 0.0]))
        #expect(a == TensorData(Tensor([Double.nan, 0.0])))
        #expect(a != TensorData(Tensor([Double.nan, -0.0])))
        #expect(TensorData(Tensor([Float(1)])) != TensorData(Tensor([Double(1)])))
    }
}
