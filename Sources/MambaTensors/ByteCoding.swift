import Foundation

/// Little- and big-endian encoding of element bit patterns and header
/// integers. Every read is bounds-checked by the caller; these helpers only
/// move bytes.
enum ByteCoding {
    /// Decodes `count` elements of `byteSize` bytes each from `bytes`
    /// (which must hold at least `count * byteSize` bytes).
    static func payload(from bytes: Data, byteSize: Int, count: Int, bigEndian: Bool) -> TensorData.Payload {
        bytes.withUnsafeBytes { raw in
            switch byteSize {
            case 2:
                return .bits16((0..<count).map { i in
                    let v = raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                    return bigEndian ? UInt16(bigEndian: v) : UInt16(littleEndian: v)
                })
            case 4:
                return .bits32((0..<count).map { i in
                    let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)
                    return bigEndian ? UInt32(bigEndian: v) : UInt32(littleEndian: v)
                })
            default:
                return .bits64((0..<count).map { i in
                    let v = raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
                    return bigEndian ? UInt64(bigEndian: v) : UInt64(littleEndian: v)
                })
            }
        }
    }

    /// Appends the payload's elements, little-endian, to `data`.
    static func appendLittleEndian(_ payload: TensorData.Payload, to data: inout Data) {
        switch payload {
        case let .bits16(a): appendLittleEndian(a, to: &data)
        case let .bits32(a): appendLittleEndian(a, to: &data)
        case let .bits64(a): appendLittleEndian(a, to: &data)
        }
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ values: [T], to data: inout Data) {
        let littleEndian = values.map(\.littleEndian)
        littleEndian.withUnsafeBytes { data.append(contentsOf: $0) }
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to data: inout Data) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    /// The little-endian integer of type `T` at `offset` in `data`, or `nil`
    /// when `data` does not hold all of it.
    static func littleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int, in data: Data) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= data.count - size else { return nil }
        return data.withUnsafeBytes { raw in
            T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
    }
}

extension Data {
    /// The bytes in `offset ..< offset + length`, counted from `startIndex`,
    /// sharing storage with `self` (callers check the range first).
    func slice(at offset: Int, length: Int) -> Data {
        let start = startIndex + offset
        return self[start ..< start + length]
    }
}
