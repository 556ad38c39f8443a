import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header
/// length N, N bytes of UTF-8 JSON, then the data buffer.
///
/// The header maps each tensor name to `{"dtype": "F32", "shape": [2, 3],
/// "data_offsets": [begin, end]}` (offsets relative to the data buffer), plus
/// an optional `"__metadata__"` object of string values.
///
/// Reading supports `F16`, `BF16`, `F32`, `F64`, `I32` and `I64` and checks
/// what the reference implementation checks: the header length against the
/// file (and a 100 MB cap), that the header is a JSON object starting with
/// `{`, each tensor's byte size against its offsets, and that the tensors
/// tile the data buffer with no gap, overlap or trailing bytes. Repeated
/// tensor names are an error. `BF16` elements keep their 16-bit patterns;
/// `asFloat32()` widens them exactly (`bits << 16`).
///
/// Writing emits compact JSON (metadata first, tensors in name order, data
/// in that order) padded with spaces to a multiple of 8 bytes, as the
/// reference writer does.
public enum Safetensors {
    /// A safetensors file's arrays and its `__metadata__` (empty if absent).
    public struct Contents: Sendable, Equatable {
        public var arrays: [String: TensorData]
        public var metadata: [String: String]

        public init(arrays: [String: TensorData], metadata: [String: String] = [:]) {
            self.arrays = arrays
            self.metadata = metadata
        }
    }

    /// The reference implementation's limit on the header size.
    static let maximumHeaderLength = 100_000_000
    static let metadataKey = "__metadata__"
    static let supportedNames = ["F16", "BF16", "F32", "F64", "I32", "I64"]

    /// Reads the safetensors file at `path`.
    public static func read(contentsOf path: String) throws -> Contents {
        try read(FileBytes.read(path), file: path)
    }

    /// Decodes a complete safetensors image; `file` names it in errors.
    public static func read(_ data: Data, file: String) throws -> Contents {
        let data = data.startIndex == 0 ? data : Data(data)
        guard let declared = ByteCoding.littleEndian(UInt64.self, at: 0, in: data) else {
            throw TensorFileError.truncated(file: file, array: nil, structure: "safetensors header length",
                                            expectedBytes: 8, foundBytes: data.count)
        }
        guard declared <= UInt64(maximumHeaderLength) else {
            throw TensorFileError.malformedHeader(file: file, array: nil, field: nil, detail: "declared header length "
                                                  + "\(declared) exceeds the \(maximumHeaderLength)-byte limit")
        }
        let headerLength = Int(declared)
        guard headerLength <= data.count - 8 else {
            throw TensorFileError.truncated(file: file, array: nil, structure: "safetensors JSON header",
                                            expectedBytes: 8 + headerLength, foundBytes: data.count)
        }
        let headerBytes = data[8 ..< 8 + headerLength]
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw TensorFileError.badMagic(file: file, array: nil, format: "safetensors",
                                           expected: "an 8-byte header length followed by '{'",
                                           found: TensorFileError.describeBytes(data.prefix(9), limit: 9))
        }
        let json: HeaderJSON
        do {
            json = try HeaderJSON.parse(headerBytes)
        } catch let error as HeaderJSON.ParseError {
            throw TensorFileError.malformedHeader(file: file, array: nil, field: nil, detail: "invalid JSON: \(error.message)")
        }
        guard case let .object(entries) = json else {
            throw TensorFileError.malformedHeader(file: file, array: nil, field: nil, detail: "expected a JSON object")
        }

        let bufferStart = 8 + headerLength
        let bufferLength = data.count - bufferStart
        var metadata: [String: String]?
        var infos: [(name: String, dtype: DType, shape: [Int], begin: Int, end: Int)] = []
        // Names seen so far: a Set keeps the duplicate check linear (a header
        // of up to 100 MB can list millions of entries; a scan per entry was quadratic).
        var names = Set<String>()
        for entry in entries {
            let (name, value) = (entry.key, entry.value)
            if name == metadataKey {
                guard metadata == nil else { throw TensorFileError.duplicateArray(file: file, array: name) }
                metadata = try parseMetadata(value, file: file)
                continue
            }
            guard names.insert(name).inserted else {
                throw TensorFileError.duplicateArray(file: file, array: name)
            }
            let info = try parseInfo(value, name: name, file: file)
            let byteCount = try NPY.checkedByteCount(shape: info.shape, dtype: info.dtype, fileSize: data.count,
                                                     file: file, name: name)
            guard info.end <= bufferLength else {
                throw TensorFileError.truncated(file: file, array: name, structure: "tensor data "
                                                + "(data_offsets [\(info.begin), \(info.end)])",
                                                expectedBytes: bufferStart + info.end, foundBytes: data.count)
            }
            guard info.end - info.begin == byteCount else {
                throw TensorFileError.dataSizeMismatch(file: file, array: name, shape: info.shape, dtype: info.dtype,
                                                       expectedBytes: byteCount, foundBytes: info.end - info.begin)
            }
            infos.append((name, info.dtype, info.shape, info.begin, info.end))
        }

        // The tensors must tile the buffer exactly.
        var covered = 0
        var previous = "the start of the data buffer"
        for info in infos.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard info.begin == covered else {
                let problem = info.begin > covered ? "a gap" : "an overlap"
                throw TensorFileError.malformedHeader(file: file, array: info.name, field: "data_offsets",
                                                      detail: "\(problem): it starts at \(info.begin) but \(previous) "
                                                      + "ends at \(covered)")
            }
            covered = info.end
            previous = "'\(info.name)'"
        }
        guard covered == bufferLength else {
            throw TensorFileError.malformedHeader(file: file, array: nil, field: "data_offsets",
                                                  detail: "the tensors cover \(covered) bytes of the "
                                                  + "\(bufferLength)-byte data buffer; the rest is unaccounted for")
        }

        var arrays: [String: TensorData] = [:]
        for info in infos {
            let bytes = data.slice(at: bufferStart + info.begin, length: info.end - info.begin)
            let count = (info.end - info.begin) / info.dtype.byteSize
            let payload = ByteCoding.payload(from: bytes, byteSize: info.dtype.byteSize, count: count, bigEndian: false)
            arrays[info.name] = TensorData(dtype: info.dtype, shape: info.shape, payload: payload, source: file, name: info.name)
        }
        return Contents(arrays: arrays, metadata: metadata ?? [:])
    }

    private static func parseMetadata(_ value: HeaderJSON, file: String) throws -> [String: String] {
        guard case let .object(entries) = value else {
            throw TensorFileError.malformedHeader(file: file, array: nil, field: metadataKey,
                                                  detail: "expected an object of strings, found \(value.kind)")
        }
        var metadata: [String: String] = [:]
        for entry in entries {
            let (key, item) = (entry.key, entry.value)
            guard case let .string(text) = item else {
                throw TensorFileError.malformedHeader(file: file, array: nil, field: metadataKey,
                                                      detail: "value of '\(key)' should be a string, found \(item.kind)")
            }
            guard metadata.updateValue(text, forKey: key) == nil else {
                throw TensorFileError.malformedHeader(file: file, array: nil, field: metadataKey,
                                                      detail: "key '\(key)' occurs more than once")
            }
        }
        return metadata
    }

    private static func parseInfo(_ value: HeaderJSON, name: String, file: String) throws
        -> (dtype: DType, shape: [Int], begin: Int, end: Int) {
        func malformed(_ field: String?, _ detail: String) -> TensorFileError {
            .malformedHeader(file: file, array: name, field: field, detail: detail)
        }
        guard case let .object(entries) = value else { throw malformed(nil, "expected an object, found \(value.kind)") }
        func field(_ key: String) throws -> HeaderJSON {
            let matches = entries.filter { $0.key == key }
            guard matches.count <= 1 else { throw malformed(key, "occurs more than once") }
            guard let match = matches.first else { throw malformed(key, "missing") }
            return match.value
        }
        let dtypeValue = try field("dtype")
        guard case let .string(dtypeName) = dtypeValue else { throw malformed("dtype", "expected a string, found \(dtypeValue.kind)") }
        guard let dtype = DType(safetensorsName: dtypeName) else {
            throw TensorFileError.unsupportedDType(file: file, array: name, dtype: dtypeName, supported: supportedNames)
        }
        let shapeValue = try field("shape")
        guard case let .array(axes) = shapeValue else { throw malformed("shape", "expected an array, found \(shapeValue.kind)") }
        var shape: [Int] = []
        for axis in axes {
            switch axis.nonNegativeInteger {
            case let .success(extent): shape.append(extent)
            case .failure(.tooLarge):
                let text = axes.map { if case let .number(t) = $0 { t } else { "?" } }.joined(separator: ", ")
                throw TensorFileError.absurdShape(file: file, array: name, shape: "[\(text)]",
                                                  detail: "an axis does not fit in a 64-bit integer")
            case .failure(.notANonNegativeInteger):
                throw malformed("shape", "expected non-negative integers, found \(axis.kind) \(describe(axis))")
            }
        }
        guard shape.count <= NPY.maximumRank else {
            throw TensorFileError.absurdShape(file: file, array: name, shape: "rank \(shape.count)",
                                              detail: "more than \(NPY.maximumRank) axes")
        }
        let offsetsValue = try field("data_offsets")
        guard case let .array(offsets) = offsetsValue, offsets.count == 2,
              case let .success(begin) = offsets[0].nonNegativeInteger,
              case let .success(end) = offsets[1].nonNegativeInteger else {
            throw malformed("data_offsets", "expected [begin, end] as two non-negative integers, found \(describe(offsetsValue))")
        }
        guard begin <= end else { throw malformed("data_offsets", "begin \(begin) is after end \(end)") }
        return (dtype, shape, begin, end)
    }

    private static func describe(_ value: HeaderJSON) -> String {
        switch value {
        case let .number(text): text
        case let .string(text): HeaderJSON.quoted(text)
        case let .array(items): "[" + items.map(describe).joined(separator: ", ") + "]"
        default: value.kind
        }
    }

    // MARK: Writing

    /// The safetensors image of `arrays` with optional `metadata`.
    ///
    /// - Throws: `invalidArguments` for a tensor named `__metadata__`.
    public static func encode(_ arrays: [String: TensorData], metadata: [String: String] = [:],
                              file: String = "<memory>") throws -> Data {
        guard arrays[metadataKey] == nil else {
            throw TensorFileError.invalidArguments(file: file, detail: "'\(metadataKey)' is reserved and cannot name a tensor")
        }
        var fields: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { HeaderJSON.quoted($0) + ":" + HeaderJSON.quoted(metadata[$0] ?? "") }
            fields.append(HeaderJSON.quoted(metadataKey) + ":{" + items.joined(separator: ",") + "}")
        }
        let names = arrays.keys.sorted()
        var offset = 0
        for name in names {
            guard let array = arrays[name] else { continue }
            let size = array.count * array.dtype.byteSize
            fields.append(HeaderJSON.quoted(name) + ":{\"dtype\":\"\(array.dtype.safetensorsName)\",\"shape\":["
                          + array.shape.map(String.init).joined(separator: ",")
                          + "],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))

        var data = Data()
        data.reserveCapacity(8 + header.count + offset)
        ByteCoding.appendLittleEndian(UInt64(header.count), to: &data)
        data.append(contentsOf: header)
        for name in names {
            if let array = arrays[name] { ByteCoding.appendLittleEndian(array.payload, to: &data) }
        }
        return data
    }

    /// Writes `arrays` and `metadata` to `path` as safetensors, atomically.
    public static func write(_ arrays: [String: TensorData], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(encode(arrays, metadata: metadata, file: path), to: path)
    }
}
