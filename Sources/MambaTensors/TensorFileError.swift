import Foundation

/// Why a tensor file could not be read or written.
///
/// Every case names the file (as the caller spelled its path), and where it
/// applies the array (or archive member) and the header field involved, with
/// what was expected and what was found. Readers validate everything they
/// take from a file — lengths, shapes, offsets — before allocating or
/// slicing, and report problems through these cases; they never trap on
/// file content.
public enum TensorFileError: Error, Equatable, Sendable {
    /// The file could not be opened or read.
    case unreadable(file: String, reason: String)
    /// The file (or a temporary file beside it) could not be written or renamed.
    case unwritable(file: String, reason: String)
    /// The file ended inside a structure of known size.
    case truncated(file: String, array: String?, structure: String, expectedBytes: Int, foundBytes: Int)
    /// The leading bytes are not those of the expected format.
    case badMagic(file: String, array: String?, format: String, expected: String, found: String)
    /// Neither the extension nor the leading bytes identify a supported format.
    case unrecognizedFormat(file: String, found: String)
    /// The element type is one this library does not read (or cannot write to this format).
    case unsupportedDType(file: String, array: String?, dtype: String, supported: [String])
    /// The header is not well-formed: bad syntax, a missing or ill-typed field.
    case malformedHeader(file: String, array: String?, field: String?, detail: String)
    /// A shape that cannot be honoured: a negative axis, an element or byte
    /// count that overflows, or more data than the whole file could hold.
    case absurdShape(file: String, array: String, shape: String, detail: String)
    /// The header's shape and dtype imply one data size, the file holds another.
    case dataSizeMismatch(file: String, array: String, shape: [Int], dtype: DType, expectedBytes: Int, foundBytes: Int)
    /// A named array is not in the file.
    case missingArray(file: String, array: String, available: [String])
    /// Two arrays in one file have the same name.
    case duplicateArray(file: String, array: String)
    /// An array holds a different kind of element than the caller asked for.
    case wrongDType(file: String, array: String, expected: String, found: DType)
    /// A zip container (.npz) is damaged or uses features not supported here.
    case corruptArchive(file: String, member: String?, detail: String)
    /// The arrays handed to a writer cannot be stored in the requested format.
    case invalidArguments(file: String, detail: String)
}

extension TensorFileError: CustomStringConvertible, LocalizedError {
    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read: \(reason)"
        case let .unwritable(file, reason):
            return "\(file): cannot write: \(reason)"
        case let .truncated(file, array, structure, expected, found):
            return "\(Self.place(file, array)): truncated: \(structure) needs \(expected) bytes, only \(found) present"
        case let .badMagic(file, array, format, expected, found):
            return "\(Self.place(file, array)): not a \(format) file: expected leading bytes \(expected), found \(found)"
        case let .unrecognizedFormat(file, found):
            return "\(file): unrecognized tensor file (leading bytes \(found)); "
                + "expected .npy, .npz or .safetensors"
        case let .unsupportedDType(file, array, dtype, supported):
            return "\(Self.place(file, array)): unsupported dtype \(dtype); supported: \(supported.joined(separator: ", "))"
        case let .malformedHeader(file, array, field, detail):
            let what = field.map { "header field '\($0)'" } ?? "header"
            return "\(Self.place(file, array)): malformed \(what): \(detail)"
        case let .absurdShape(file, array, shape, detail):
            return "\(Self.place(file, array)): absurd shape \(shape): \(detail)"
        case let .dataSizeMismatch(file, array, shape, dtype, expected, found):
            let relation = found < expected ? "shorter" : "longer"
            return "\(Self.place(file, array)): header says shape \(shape) of \(dtype), which needs \(expected) "
                + "data bytes, but the data is \(found) bytes (\(relation) than the header implies)"
        case let .missingArray(file, array, available):
            let list = available.isEmpty ? "none" : available.sorted().joined(separator: ", ")
            return "\(file): no array named '\(array)'; arrays present: \(list)"
        case let .duplicateArray(file, array):
            return "\(file): array name '\(array)' occurs more than once"
        case let .wrongDType(file, array, expected, found):
            return "\(Self.place(file, array)): expected \(expected), found \(found)"
        case let .corruptArchive(file, member, detail):
            let place = member.map { "\(file), member '\($0)'" } ?? file
            return "\(place): damaged or unsupported zip archive: \(detail)"
        case let .invalidArguments(file, detail):
            return "\(file): \(detail)"
        }
    }

    public var errorDescription: String? { description }

    /// The file the error is about.
    public var file: String {
        switch self {
        case let .unreadable(file, _), let .unwritable(file, _), let .truncated(file, _, _, _, _),
             let .badMagic(file, _, _, _, _), let .unrecognizedFormat(file, _),
             let .unsupportedDType(file, _, _, _), let .malformedHeader(file, _, _, _),
             let .absurdShape(file, _, _, _), let .dataSizeMismatch(file, _, _, _, _, _),
             let .missingArray(file, _, _), let .duplicateArray(file, _), let .wrongDType(file, _, _, _),
             let .corruptArchive(file, _, _), let .invalidArguments(file, _):
            return file
        }
    }

    private static func place(_ file: String, _ array: String?) -> String {
        guard let array, !array.isEmpty else { return file }
        return "\(file), array '\(array)'"
    }

    /// Up to `limit` leading bytes, printable ASCII as-is and others as `\xNN`.
    static func describeBytes<Bytes: Collection>(_ bytes: Bytes, limit: Int = 8) -> String where Bytes.Element == UInt8 {
        if bytes.isEmpty { return "(empty)" }
        var text = "\""
        for byte in bytes.prefix(limit) {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                text += "\\x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return text + "\"" + (bytes.count > limit ? "…" : "")
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
