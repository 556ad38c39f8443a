/// The element type an array had in the file it came from (or will have in
/// the file it goes to).
///
/// Floating-point types are IEEE 754 binary formats except `bfloat16`, the
/// upper 16 bits of a binary32 (8 exponent bits, 7 stored significand bits).
/// Every value of every floating type here is exactly representable as a
/// `Double`; every `float16`/`bfloat16` value is exactly a `Float`.
/// The integer types carry offsets such as `cu_seqlens`.
public enum DType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case float16
    case bfloat16
    case float32
    case float64
    case int32
    case int64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float16, .bfloat16: 2
        case .float32, .int32: 4
        case .float64, .int64: 8
        }
    }

    /// `true` for the four floating-point types.
    public var isFloatingPoint: Bool {
        switch self {
        case .float16, .bfloat16, .float32, .float64: true
        case .int32, .int64: false
        }
    }

    public var description: String { rawValue }

    /// The little-endian NumPy `descr` string, or `nil` for `bfloat16`
    /// (NumPy has no bfloat16 type).
    public var numpyDescr: String? {
        switch self {
        case .float16: "<f2"
        case .bfloat16: nil
        case .float32: "<f4"
        case .float64: "<f8"
        case .int32: "<i4"
        case .int64: "<i8"
        }
    }

    /// The safetensors `dtype` string.
    public var safetensorsName: String {
        switch self {
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .float32: "F32"
        case .float64: "F64"
        case .int32: "I32"
        case .int64: "I64"
        }
    }

    /// The dtype named `name` in a safetensors header, if supported.
    public init?(safetensorsName name: String) {
        guard let dtype = DType.allCases.first(where: { $0.safetensorsName == name }) else { return nil }
        self = dtype
    }
}
