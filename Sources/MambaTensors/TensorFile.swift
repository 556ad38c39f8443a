import Foundation

/// The tensor file formats MambaCheck reads and writes.
public enum TensorFileFormat: String, Sendable, Hashable, CaseIterable {
    /// NumPy `.npy`: exactly one array.
    case npy
    /// NumPy `.npz` with stored members (`numpy.savez`).
    case npz
    /// NumPy `.npz` with deflated members (`numpy.savez_compressed`); reads as `.npz`.
    case npzCompressed
    /// Hugging Face safetensors.
    case safetensors

    /// The format a path's extension names (`.npy`, `.npz`, `.safetensors`,
    /// case-insensitively), or `nil`. `.npz` means stored members.
    public init?(pathExtensionOf path: String) {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "npy": self = .npy
        case "npz": self = .npz
        case "safetensors": self = .safetensors
        default: return nil
        }
    }
}

/// Reading and writing tensor files whatever their format.
///
/// Reading picks the format from the extension when it is `.npy`, `.npz` or
/// `.safetensors` (and then insists on that format's magic), otherwise from
/// the leading bytes. Writing picks it from `format:` or the extension.
/// Every write is atomic (see `AtomicFile`).
public enum TensorFile {
    /// Every array in the file at `path`, by name. A `.npy` file's single
    /// array is named by the file's stem (`q.npy` → `"q"`).
    public static func read(_ path: String) throws -> [String: TensorData] {
        let data = try FileBytes.read(path)
        switch try format(of: data, path: path) {
        case .npy:
            let name = FileBytes.stem(of: path)
            return [name: try NPY.read(data, file: path, name: name)]
        case .npz, .npzCompressed:
            return try NPZ.read(data, file: path)
        case .safetensors:
            return try Safetensors.read(data, file: path).arrays
        }
    }

    /// The array called `name` in the file at `path`.
    ///
    /// - Throws: `missingArray` (listing the names present) if there is none.
    public static func read(_ path: String, array name: String) throws -> TensorData {
        let arrays = try read(path)
        guard let array = arrays[name] else {
            throw TensorFileError.missingArray(file: path, array: name, available: Array(arrays.keys))
        }
        return array
    }

    /// The format of the file at `path`, by extension or else by content.
    public static func format(of path: String) throws -> TensorFileFormat {
        try format(of: FileBytes.read(path), path: path)
    }

    static func format(of data: Data, path: String) throws -> TensorFileFormat {
        if let format = TensorFileFormat(pathExtensionOf: path) { return format }
        let leading = Array(data.prefix(9))
        if leading.starts(with: NPY.magic) { return .npy }
        if leading.starts(with: NPZ.magic) || leading.starts(with: Array("PK".utf8) + [5, 6]) { return .npz }
        if leading.count == 9, leading[8] == UInt8(ascii: "{"),
           let length = ByteCoding.littleEndian(UInt64.self, at: 0, in: data), length <= UInt64(data.count - 8) {
            return .safetensors
        }
        throw TensorFileError.unrecognizedFormat(file: path, found: TensorFileError.describeBytes(leading))
    }

    /// Writes `arrays` to `path` atomically, each in its own dtype.
    ///
    /// - Parameter format: the format, or `nil` to take it from the extension.
    /// - Throws: `invalidArguments` if the format is unknown, or a `.npy`
    ///   file is given other than exactly one array (its name is not stored:
    ///   reading names it by the file's stem); `unsupportedDType` for
    ///   `bfloat16` in `.npy`/`.npz`; `unwritable`.
    public static func write(_ arrays: [String: TensorData], to path: String, format: TensorFileFormat? = nil) throws {
        guard let format = format ?? TensorFileFormat(pathExtensionOf: path) else {
            throw TensorFileError.invalidArguments(file: path, detail: "cannot tell the format from the extension; "
                                                   + "use .npy, .npz or .safetensors, or pass format:")
        }
        switch format {
        case .npy:
            guard arrays.count == 1, let array = arrays.values.first else {
                throw TensorFileError.invalidArguments(file: path, detail: "a .npy file holds exactly one array, "
                                                       + "got \(arrays.count): \(arrays.keys.sorted())")
            }
            try NPY.write(array.labelled(source: path, name: arrays.keys.first ?? ""), to: path)
        case .npz, .npzCompressed:
            try NPZ.write(arrays, to: path, compressed: format == .npzCompressed)
        case .safetensors:
            try Safetensors.write(arrays, to: path)
        }
    }

    /// Writes `arrays` to `path` atomically, every value rounded once (to
    /// nearest, ties to even) to the floating-point `dtype`.
    public static func write(_ arrays: [String: Tensor<Double>], to path: String, dtype: DType,
                             format: TensorFileFormat? = nil) throws {
        try checkFloating(dtype, path)
        try write(arrays.mapValues { TensorData(rounding: $0, to: dtype) }, to: path, format: format)
    }

    /// Writes `arrays` to `path` atomically, every value rounded once (to
    /// nearest, ties to even) to the floating-point `dtype`.
    public static func write(_ arrays: [String: Tensor<Float>], to path: String, dtype: DType,
                             format: TensorFileFormat? = nil) throws {
        try checkFloating(dtype, path)
        try write(arrays.mapValues { TensorData(rounding: $0, to: dtype) }, to: path, format: format)
    }

    private static func checkFloating(_ dtype: DType, _ path: String) throws {
        guard dtype.isFloatingPoint else {
            throw TensorFileError.invalidArguments(file: path, detail: "values can only be rounded to a floating-point "
                                                   + "dtype, not \(dtype); build TensorData from Tensor<Int64> instead")
        }
    }
}
