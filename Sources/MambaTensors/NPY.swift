import Foundation

/// NumPy's `.npy` format: one array per file.
///
/// Layout: the magic `\x93NUMPY`, a major and minor version byte, the header
/// length (little-endian `UInt16` for version 1.0, `UInt32` for 2.0 and
/// 3.0), the header — a Python dict literal `{'descr': '<f4',
/// 'fortran_order': False, 'shape': (2, 3), }` in Latin-1 (UTF-8 for 3.0),
/// padded with spaces and a newline — then the raw elements.
///
/// Reading accepts versions 1.0, 2.0 and 3.0; dtypes `f2 f4 f8 i4 i8` in
/// either byte order (`<`, `>` or native `=`); C or Fortran order (Fortran
/// data is transposed to C order); any rank from 0 to 64. Everything taken
/// from the header is validated — the header length against the file, each
/// axis and the element and byte counts against overflow and against the
/// data actually present — before anything is allocated.
///
/// Writing produces exactly what `numpy.save` writes: a version 1.0 header
/// (2.0 if it would not fit), keys sorted, spare spaces for growing axis 0,
/// padded so the data starts at a multiple of 64 bytes.
public enum NPY {
    /// A `.npy` format version.
    public enum Version: Sendable, Hashable {
        case v1, v2, v3

        var major: UInt8 {
            switch self {
            case .v1: 1
            case .v2: 2
            case .v3: 3
            }
        }
    }

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    static let magicDescription = "\\x93NUMPY"
    /// NumPy's data alignment.
    static let alignment = 64
    /// NumPy's largest supported rank (NPY_MAXDIMS).
    static let maximumRank = 64
    static let supportedDescrs = ["<f2", "<f4", "<f8", "<i4", "<i8", "(and the same with > or =)"]

    // MARK: Reading

    /// Reads the `.npy` file at `path`; the array is named by the file's stem.
    public static func read(contentsOf path: String) throws -> TensorData {
        let data = try FileBytes.read(path)
        return try read(data, file: path, name: FileBytes.stem(of: path))
    }

    /// Decodes a complete `.npy` image. `file` and `name` are used in errors
    /// and recorded in the result.
    public static func read(_ data: Data, file: String, name: String) throws -> TensorData {
        let data = data.startIndex == 0 ? data : Data(data) // zero-based indices below
        let leading = data.prefix(magic.count)
        guard leading.elementsEqual(magic.prefix(leading.count)), data.count >= magic.count else {
            if leading.elementsEqual(magic.prefix(leading.count)) {
                throw TensorFileError.truncated(file: file, array: name, structure: "npy magic",
                                                expectedBytes: magic.count, foundBytes: data.count)
            }
            throw TensorFileError.badMagic(file: file, array: name, format: "npy", expected: magicDescription,
                                           found: TensorFileError.describeBytes(leading))
        }
        guard data.count >= 8 else {
            throw TensorFileError.truncated(file: file, array: name, structure: "npy version bytes",
                                            expectedBytes: 8, foundBytes: data.count)
        }
        let major = data[6], minor = data[7]
        guard (1...3).contains(major), minor == 0 else {
            throw TensorFileError.malformedHeader(file: file, array: name, field: "version",
                                                  detail: "format version \(major).\(minor); expected 1.0, 2.0 or 3.0")
        }
        let lengthSize = major == 1 ? 2 : 4
        let headerStart = 8 + lengthSize
        let headerLength: Int
        if major == 1, let n = ByteCoding.littleEndian(UInt16.self, at: 8, in: data) {
            headerLength = Int(n)
        } else if major > 1, let n = ByteCoding.littleEndian(UInt32.self, at: 8, in: data) {
            headerLength = Int(n)
        } else {
            throw TensorFileError.truncated(file: file, array: name, structure: "npy header length",
                                            expectedBytes: headerStart, foundBytes: data.count)
        }
        guard headerLength <= data.count - headerStart else {
            throw TensorFileError.truncated(file: file, array: name, structure: "npy header",
                                            expectedBytes: headerStart + headerLength, foundBytes: data.count)
        }
        let headerBytes = data[headerStart ..< headerStart + headerLength]
        let header = try parseHeader(headerBytes, utf8: major == 3, file: file, name: name)

        let dataStart = headerStart + headerLength
        let available = data.count - dataStart
        let byteCount = try checkedByteCount(shape: header.shape, dtype: header.dtype, fileSize: data.count,
                                             file: file, name: name)
        guard byteCount == available else {
            throw TensorFileError.dataSizeMismatch(file: file, array: name, shape: header.shape, dtype: header.dtype,
                                                   expectedBytes: byteCount, foundBytes: available)
        }
        let count = byteCount / header.dtype.byteSize
        var payload = ByteCoding.payload(from: data.slice(at: dataStart, length: byteCount),
                                         byteSize: header.dtype.byteSize, count: count, bigEndian: header.bigEndian)
        if header.fortranOrder {
            payload = fortranToC(payload, shape: header.shape)
        }
        return TensorData(dtype: header.dtype, shape: header.shape, payload: payload, source: file, name: name)
    }

    /// The element count times the element size of `shape`, or an
    /// `absurdShape` error if it overflows or exceeds the whole file.
    static func checkedByteCount(shape: [Int], dtype: DType, fileSize: Int, file: String, name: String) throws -> Int {
        let shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        guard let count = Tensor<Double>.elementCount(of: shape) else {
            throw TensorFileError.absurdShape(file: file, array: name, shape: shapeText,
                                              detail: "the element count overflows a 64-bit integer")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else {
            throw TensorFileError.absurdShape(file: file, array: name, shape: shapeText,
                                              detail: "\(count) elements of \(dtype) overflow a 64-bit byte count")
        }
        guard bytes <= fileSize else {
            throw TensorFileError.absurdShape(file: file, array: name, shape: shapeText,
                                              detail: "\(count) elements of \(dtype) need \(bytes) bytes, "
                                                + "but the whole file is \(fileSize) bytes")
        }
        return bytes
    }

    struct Header {
        var dtype: DType
        var bigEndian: Bool
        var fortranOrder: Bool
        var shape: [Int]
    }

    static func parseHeader(_ bytes: Data, utf8: Bool, file: String, name: String) throws -> Header {
        func malformed(_ field: String?, _ detail: String) -> TensorFileError {
            .malformedHeader(file: file, array: name, field: field, detail: detail)
        }
        let text: String
        if utf8 {
            guard let decoded = String(bytes: bytes, encoding: .utf8) else { throw malformed(nil, "header is not valid UTF-8") }
            text = decoded
        } else {
            var latin1 = ""
            latin1.unicodeScalars.append(contentsOf: bytes.map { Unicode.Scalar($0) })
            text = latin1
        }
        let literal: PythonLiteral
        do {
            literal = try PythonLiteral.parse(text)
        } catch let error as PythonLiteral.ParseError {
            throw malformed(nil, "not a Python dict literal: \(error.message)")
        }
        guard case let .dict(entries) = literal else { throw malformed(nil, "expected a dict, found \(literal.kind)") }
        let expectedKeys = ["descr", "fortran_order", "shape"]
        for (key, _) in entries where !expectedKeys.contains(key) {
            throw malformed(key, "unexpected key; a .npy header has exactly 'descr', 'fortran_order' and 'shape'")
        }
        func field(_ key: String) throws -> PythonLiteral {
            guard let entry = entries.first(where: { $0.key == key }) else { throw malformed(key, "missing") }
            return entry.value
        }

        guard case let .string(descr) = try field("descr") else {
            throw TensorFileError.unsupportedDType(file: file, array: name, dtype: "structured or non-string descr",
                                                   supported: supportedDescrs)
        }
        guard let (dtype, bigEndian) = parseDescr(descr) else {
            throw TensorFileError.unsupportedDType(file: file, array: name, dtype: "'\(descr)'", supported: supportedDescrs)
        }
        let order = try field("fortran_order")
        guard case let .boolean(fortranOrder) = order else {
            throw malformed("fortran_order", "expected True or False, found \(order.kind)")
        }
        let shapeLiteral = try field("shape")
        guard case let .tuple(axes) = shapeLiteral else {
            throw malformed("shape", "expected a tuple of integers, found \(shapeLiteral.kind)")
        }
        var texts: [String] = []
        for axis in axes {
            guard case let .integer(digits) = axis else {
                throw malformed("shape", "expected a tuple of integers, found \(axis.kind) in it")
            }
            texts.append(digits)
        }
        let shapeText = "(" + texts.joined(separator: ", ") + (texts.count == 1 ? ",)" : ")")
        guard texts.count <= maximumRank else {
            throw TensorFileError.absurdShape(file: file, array: name, shape: "rank \(texts.count)",
                                              detail: "more than \(maximumRank) axes")
        }
        var shape: [Int] = []
        for digits in texts {
            guard let extent = Int(digits) else {
                throw TensorFileError.absurdShape(file: file, array: name, shape: shapeText,
                                                  detail: "axis \(digits) does not fit in a 64-bit integer")
            }
            guard extent >= 0 else {
                throw TensorFileError.absurdShape(file: file, array: name, shape: shapeText, detail: "negative axis \(extent)")
            }
            shape.append(extent)
        }
        return Header(dtype: dtype, bigEndian: bigEndian, fortranOrder: fortranOrder, shape: shape)
    }

    /// The dtype and byte order of a NumPy `descr` such as `<f4` or `>i8`.
    static func parseDescr(_ descr: String) -> (DType, Bool)? {
        let scalars = Array(descr.unicodeScalars)
        guard scalars.count == 3 else { return nil }
        let bigEndian: Bool
        switch scalars[0] {
        case "<": bigEndian = false
        case ">": bigEndian = true
        case "=": bigEndian = UInt16(1).bigEndian == 1
        default: return nil
        }
        let dtype: DType
        switch String(descr.unicodeScalars.dropFirst()) {
        case "f2": dtype = .float16
        case "f4": dtype = .float32
        case "f8": dtype = .float64
        case "i4": dtype = .int32
        case "i8": dtype = .int64
        default: return nil
        }
        return (dtype, bigEndian)
    }

    /// Reorders column-major (Fortran) elements into row-major order.
    static func fortranToC(_ payload: TensorData.Payload, shape: [Int]) -> TensorData.Payload {
        switch payload {
        case let .bits16(a): .bits16(fortranToC(a, shape: shape))
        case let .bits32(a): .bits32(fortranToC(a, shape: shape))
        case let .bits64(a): .bits64(fortranToC(a, shape: shape))
        }
    }

    static func fortranToC<T>(_ source: [T], shape: [Int]) -> [T] {
        guard shape.count >= 2, !source.isEmpty else { return source }
        var fortranStrides = [Int](repeating: 1, count: shape.count)
        for axis in 1 ..< shape.count { fortranStrides[axis] = fortranStrides[axis - 1] * shape[axis - 1] }
        var result: [T] = []
        result.reserveCapacity(source.count)
        var index = [Int](repeating: 0, count: shape.count)
        var offset = 0
        for _ in 0 ..< source.count {
            result.append(source[offset])
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                offset += fortranStrides[axis]
                if index[axis] < shape[axis] { break }
                offset -= fortranStrides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    // MARK: Writing

    /// The `.npy` image of `array`, byte for byte what `numpy.save` writes.
    ///
    /// - Parameters:
    ///   - version: the header version; `nil` chooses 1.0, or 2.0 when the
    ///     header is too long for 1.0, as NumPy does.
    ///   - file: used in error messages.
    /// - Throws: `unsupportedDType` for `bfloat16` (NumPy has no such type);
    ///   `invalidArguments` if the header does not fit the requested version.
    public static func encode(_ array: TensorData, version: Version? = nil, file: String = "<memory>") throws -> Data {
        guard let descr = array.dtype.numpyDescr else {
            throw TensorFileError.unsupportedDType(file: file, array: array.name, dtype: array.dtype.rawValue,
                                                   supported: ["float16", "float32", "float64", "int32", "int64 "
                                                               + "(NumPy has no bfloat16; use .safetensors)"])
        }
        let shape = array.shape
        let shapeRepr = "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeRepr), }"
        // NumPy leaves room for axis 0 to grow to 21 digits in place.
        if let first = shape.first { header += String(repeating: " ", count: max(0, 21 - String(first).count)) }
        let headerBytes = Array(header.utf8) // ASCII, so also its Latin-1 encoding

        let chosen = version ?? (wrappedLength(headerBytes.count, lengthSize: 2) <= Int(UInt16.max) ? .v1 : .v2)
        let lengthSize = chosen == .v1 ? 2 : 4
        let paddedLength = wrappedLength(headerBytes.count, lengthSize: lengthSize)
        guard chosen != .v1 || paddedLength <= Int(UInt16.max) else {
            throw TensorFileError.invalidArguments(file: file, detail: "array '\(array.name)': header of "
                                                   + "\(paddedLength) bytes does not fit a version 1.0 .npy header")
        }
        var data = Data()
        data.reserveCapacity(8 + lengthSize + paddedLength + array.count * array.dtype.byteSize)
        data.append(contentsOf: magic)
        data.append(contentsOf: [chosen.major, 0])
        if chosen == .v1 {
            ByteCoding.appendLittleEndian(UInt16(paddedLength), to: &data)
        } else {
            ByteCoding.appendLittleEndian(UInt32(paddedLength), to: &data)
        }
        data.append(contentsOf: headerBytes)
        data.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: paddedLength - headerBytes.count - 1))
        data.append(UInt8(ascii: "\n"))
        ByteCoding.appendLittleEndian(array.payload, to: &data)
        return data
    }

    /// The header length including padding and the final newline, as
    /// NumPy's `_wrap_header` computes it (the padding is never empty).
    private static func wrappedLength(_ headerCount: Int, lengthSize: Int) -> Int {
        let withNewline = headerCount + 1
        let padding = alignment - (magic.count + 2 + lengthSize + withNewline) % alignment
        return withNewline + padding
    }

    /// Writes `array` to `path` as `.npy`, atomically.
    public static func write(_ array: TensorData, to path: String, version: Version? = nil) throws {
        let data = try encode(array, version: version, file: path)
        try AtomicFile.write(data, to: path)
    }
}
