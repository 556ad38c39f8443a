import MambaPrecision

/// One array as a file stores it: its dtype, its shape and its elements' bit
/// patterns, plus where it came from (for error messages).
///
/// Keeping the stored bits, rather than converted values, makes every
/// read-then-write round trip bit-exact — signed zeros, subnormals, NaN sign
/// and payload included. Conversions happen in the accessors:
///
/// | accessor       | from float16 / bfloat16 / float32 | from float64          | from int32/int64 |
/// |----------------|-----------------------------------|-----------------------|------------------|
/// | `asFloat64()`  | exact                             | exact                 | throws           |
/// | `asFloat32()`  | exact                             | rounded (nearest even)| throws           |
/// | `asFloat16()`  | exact / rounded / rounded         | rounded once          | throws           |
/// | `asInt64()`    | throws                            | throws                | exact            |
///
/// Widening keeps NaN payloads bitwise; see `FloatBits` for the rounding and
/// NaN rules when narrowing.
public struct TensorData: Sendable {
    /// The element type as stored.
    public let dtype: DType
    /// The shape, in C (row-major) order; Fortran-order files are transposed on reading.
    public let shape: [Int]
    /// The file this array was read from, or `"<memory>"`.
    public internal(set) var source: String
    /// The array's name in that file (empty when not from a file).
    public internal(set) var name: String

    /// The element bit patterns, row-major, in host order.
    let payload: Payload

    enum Payload: Sendable, Equatable {
        case bits16([UInt16])
        case bits32([UInt32])
        case bits64([UInt64])

        var count: Int {
            switch self {
            case let .bits16(a): a.count
            case let .bits32(a): a.count
            case let .bits64(a): a.count
            }
        }
    }

    /// Assembles an array; `payload` must match `dtype.byteSize` and the shape.
    init(dtype: DType, shape: [Int], payload: Payload, source: String = "<memory>", name: String = "") {
        self.dtype = dtype
        self.shape = shape
        self.payload = payload
        self.source = source
        self.name = name
    }

    /// The number of elements.
    public var count: Int { payload.count }

    /// Every element's bit pattern, zero-extended to 64 bits, row-major.
    /// Use it to compare arrays bit for bit.
    public var bitPatterns: [UInt64] {
        switch payload {
        case let .bits16(a): a.map { UInt64($0) }
        case let .bits32(a): a.map { UInt64($0) }
        case let .bits64(a): a
        }
    }
}

// MARK: - Building arrays to write

extension TensorData {
    /// A `float16` array holding `tensor` exactly.
    public init(_ tensor: Tensor<Float16>) {
        self.init(dtype: .float16, shape: tensor.shape, payload: .bits16(tensor.storage.map(\.bitPattern)))
    }

    /// A `float32` array holding `tensor` exactly.
    public init(_ tensor: Tensor<Float>) {
        self.init(dtype: .float32, shape: tensor.shape, payload: .bits32(tensor.storage.map(\.bitPattern)))
    }

    /// A `float64` array holding `tensor` exactly.
    public init(_ tensor: Tensor<Double>) {
        self.init(dtype: .float64, shape: tensor.shape, payload: .bits64(tensor.storage.map(\.bitPattern)))
    }

    /// An `int32` array holding `tensor` exactly.
    public init(_ tensor: Tensor<Int32>) {
        self.init(dtype: .int32, shape: tensor.shape,
                  payload: .bits32(tensor.storage.map { UInt32(bitPattern: $0) }))
    }

    /// An `int64` array holding `tensor` exactly.
    public init(_ tensor: Tensor<Int64>) {
        self.init(dtype: .int64, shape: tensor.shape,
                  payload: .bits64(tensor.storage.map { UInt64(bitPattern: $0) }))
    }

    /// A `float16` or `bfloat16` array from raw bit patterns (e.g. to write
    /// values a bf16 kernel produced).
    ///
    /// - Precondition: `dtype` is `.float16` or `.bfloat16`.
    public init(bitPatterns tensor: Tensor<UInt16>, dtype: DType) {
        precondition(dtype == .float16 || dtype == .bfloat16, "16-bit patterns need dtype float16 or bfloat16")
        self.init(dtype: dtype, shape: tensor.shape, payload: .bits16(tensor.storage))
    }

    /// `tensor` rounded once, to nearest with ties to even, to a floating `dtype`.
    ///
    /// Exact when every value is representable in `dtype`. Overflow gives
    /// ±∞; NaNs keep their sign and leading payload bits.
    ///
    /// - Precondition: `dtype.isFloatingPoint`.
    public init(rounding tensor: Tensor<Double>, to dtype: DType) {
        let values = tensor.storage
        let payload: Payload
        switch dtype {
        case .float64: payload = .bits64(values.map(\.bitPattern))
        case .float32: payload = .bits32(values.map(FloatBits.floatBits(rounding:)))
        case .float16: payload = .bits16(FloatBits.halfBits(rounding: values.map(FloatBits.floatRoundedToOdd)))
        case .bfloat16: payload = .bits16(values.map { FloatBits.bfloat16Bits(rounding: $0) })
        case .int32, .int64: preconditionFailure("TensorData(rounding:to:) needs a floating-point dtype, got \(dtype)")
        }
        self.init(dtype: dtype, shape: tensor.shape, payload: payload)
    }

    /// `tensor` rounded once, to nearest with ties to even, to a floating
    /// `dtype` (exact for `.float32` and `.float64`).
    ///
    /// - Precondition: `dtype.isFloatingPoint`.
    public init(rounding tensor: Tensor<Float>, to dtype: DType) {
        let values = tensor.storage
        let payload: Payload
        switch dtype {
        case .float64: payload = .bits64(values.map { FloatBits.double(floatBits: $0.bitPattern).bitPattern })
        case .float32: payload = .bits32(values.map(\.bitPattern))
        case .float16: payload = .bits16(FloatBits.halfBits(rounding: values))
        case .bfloat16: payload = .bits16(values.map { FloatBits.bfloat16Bits(rounding: $0) })
        case .int32, .int64: preconditionFailure("TensorData(rounding:to:) needs a floating-point dtype, got \(dtype)")
        }
        self.init(dtype: dtype, shape: tensor.shape, payload: payload)
    }

    /// The same array under another name and source (used by readers).
    func labelled(source: String, name: String) -> TensorData {
        var copy = self
        copy.source = source
        copy.name = name
        return copy
    }
}

// MARK: - Reading values

extension TensorData {
    /// The values as `Double`, exactly (every stored floating value is a `Double`).
    ///
    /// - Throws: `TensorFileError.wrongDType` for integer arrays.
    public func asFloat64() throws -> Tensor<Double> {
        let values: [Double]
        switch (dtype, payload) {
        case let (.float16, .bits16(bits)): values = FloatBits.floats(halfBits: bits).enumerated().map { i, f in
            f.isNaN ? FloatBits.double(halfBits: bits[i]) : Double(f)
        }
        case let (.bfloat16, .bits16(bits)): values = bits.map(FloatBits.double(bfloat16Bits:))
        case let (.float32, .bits32(bits)): values = bits.map(FloatBits.double(floatBits:))
        case let (.float64, .bits64(bits)): values = bits.map(Double.init(bitPattern:))
        default: throw wrongDType(expected: "a floating-point array")
        }
        return Tensor(shape: shape, storage: values)
    }

    /// The values as `Float`: exact for `float16`, `bfloat16` and `float32`;
    /// `float64` values are rounded to nearest even.
    ///
    /// - Throws: `TensorFileError.wrongDType` for integer arrays.
    public func asFloat32() throws -> Tensor<Float> {
        let values: [Float]
        switch (dtype, payload) {
        case let (.float16, .bits16(bits)): values = FloatBits.floats(halfBits: bits)
        case let (.bfloat16, .bits16(bits)): values = bits.map(FloatBits.float(bfloat16Bits:))
        case let (.float32, .bits32(bits)): values = bits.map(Float.init(bitPattern:))
        case let (.float64, .bits64(bits)): values = bits.map { Float(bitPattern: FloatBits.floatBits(rounding: Double(bitPattern: $0))) }
        default: throw wrongDType(expected: "a floating-point array")
        }
        return Tensor(shape: shape, storage: values)
    }

    /// The values as `Float16`: exact for `float16`; other types are rounded
    /// once to nearest even (overflow to ±∞).
    ///
    /// - Throws: `TensorFileError.wrongDType` for integer arrays.
    public func asFloat16() throws -> Tensor<Float16> {
        let bits: [UInt16]
        switch (dtype, payload) {
        case let (.float16, .bits16(b)): bits = b
        case let (.bfloat16, .bits16(b)): bits = FloatBits.halfBits(rounding: b.map(FloatBits.float(bfloat16Bits:)))
        case let (.float32, .bits32(b)): bits = FloatBits.halfBits(rounding: b.map(Float.init(bitPattern:)))
        case let (.float64, .bits64(b)): bits = b.map { FloatBits.halfBits(rounding: Double(bitPattern: $0)) }
        default: throw wrongDType(expected: "a floating-point array")
        }
        return Tensor(shape: shape, storage: bits.map(Float16.init(bitPattern:)))
    }

    /// The values as `Int64`, exactly.
    ///
    /// - Throws: `TensorFileError.wrongDType` for floating-point arrays.
    public func asInt64() throws -> Tensor<Int64> {
        let values: [Int64]
        switch (dtype, payload) {
        case let (.int32, .bits32(bits)): values = bits.map { Int64(Int32(bitPattern: $0)) }
        case let (.int64, .bits64(bits)): values = bits.map { Int64(bitPattern: $0) }
        default: throw wrongDType(expected: "an integer array (int32 or int64)")
        }
        return Tensor(shape: shape, storage: values)
    }

    /// The values as `BigFloat`s of `precision` bits: exact for every stored
    /// floating value when `precision ≥ 53`, for every integer when `precision ≥ 64`.
    public func asBigFloat(precision: Int = BigFloat.defaultPrecision) throws -> Tensor<BigFloat> {
        if dtype.isFloatingPoint {
            return try asFloat64().map { BigFloat($0, precision: precision) }
        }
        return try asInt64().map { BigFloat(Int($0), precision: precision) }
    }

    private func wrongDType(expected: String) -> TensorFileError {
        .wrongDType(file: source, array: name, expected: expected, found: dtype)
    }
}

extension TensorData: Equatable {
    /// Same dtype, shape and element bit patterns (so identical NaNs are
    /// equal, and `+0` differs from `-0`). Source and name are ignored.
    public static func == (lhs: TensorData, rhs: TensorData) -> Bool {
        lhs.dtype == rhs.dtype && lhs.shape == rhs.shape && lhs.payload == rhs.payload
    }
}

extension TensorData: CustomStringConvertible {
    public var description: String {
        let label = name.isEmpty ? "" : "'\(name)' "
        return "TensorData(\(label)\(dtype) \(shape))"
    }
}
