import MambaPrecision

/// Precision modes of the optimized kernels (docs/MATH.md §7).
public enum PrecisionMode: String, CaseIterable, Sendable, Codable {
    /// Float32 inputs, arithmetic and outputs.
    case float32
    /// Tensor-core style: inputs rounded to binary16, products and sums in
    /// Float32, output rounded to binary16.
    case float16Acc32 = "float16-acc32"
    /// Every operation rounded to binary16.
    case float16
    /// Inputs rounded to bfloat16, Float32 arithmetic, output rounded to bfloat16.
    case bfloat16Acc32 = "bfloat16-acc32"
    /// Dot-product inputs rounded to TF32 (11 bits), Float32 accumulation and output.
    case tf32
}

/// Where the values of a computation live in one precision mode
/// (docs/MATH.md §7.2). `PrecisionMode.formats` is the one table that maps a
/// mode to formats; the kernels, the verdict and the input generators read it.
public struct PrecisionFormats: Sendable, Hashable {
    /// Format q and k (and v) are rounded to when the kernel reads them.
    public var input: NumberFormat
    /// Format of the decay input and the initial state as read.
    public var decayAndState: NumberFormat
    /// Format the operands of a matrix product are stored in.
    public var operand: NumberFormat
    /// Format products and sums are accumulated in (and elementwise work done in).
    public var accumulation: NumberFormat
    /// Format the output is rounded to.
    public var output: NumberFormat
    /// Format the outputs are judged in: `output`, except TF32, judged at the
    /// TF32 precision its dot products have.
    public var judged: NumberFormat
    /// Storage of the generated inputs a mode is tested on (TF32 rounds its
    /// inputs inside the dot product, so they are drawn in Float32).
    public var inputStorage: InputStorage

    /// Every operation is rounded to one 16-bit format (pure binary16).
    public var everyOperationRounded: Bool { accumulation != .binary32 }
}

extension PrecisionMode {
    /// This mode's formats (docs/MATH.md §7.2).
    public var formats: PrecisionFormats {
        switch self {
        case .float32:
            PrecisionFormats(input: .binary32, decayAndState: .binary32, operand: .binary32, accumulation: .binary32,
                             output: .binary32, judged: .binary32, inputStorage: .float32)
        case .float16Acc32:
            PrecisionFormats(input: .binary16, decayAndState: .binary32, operand: .binary16, accumulation: .binary32,
                             output: .binary16, judged: .binary16, inputStorage: .float16)
        case .float16:
            PrecisionFormats(input: .binary16, decayAndState: .binary16, operand: .binary16, accumulation: .binary16,
                             output: .binary16, judged: .binary16, inputStorage: .float16)
        case .bfloat16Acc32:
            PrecisionFormats(input: .bfloat16, decayAndState: .binary32, operand: .bfloat16, accumulation: .binary32,
                             output: .bfloat16, judged: .bfloat16, inputStorage: .bfloat16)
        case .tf32:
            PrecisionFormats(input: .tf32, decayAndState: .binary32, operand: .tf32, accumulation: .binary32,
                             output: .binary32, judged: .tf32, inputStorage: .float32)
        }
    }
}
