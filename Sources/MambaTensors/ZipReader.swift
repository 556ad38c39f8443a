import Foundation
import ZIPFoundation

/// A bounded reader for the zip containers behind `.npz` files.
///
/// It locates the end-of-central-directory record (and its ZIP64 form),
/// walks the central directory, and checks every size and offset against the
/// bytes actually present before slicing. Members may be stored or deflated;
/// inflating uses ZIPFoundation's zlib binding with an input provider that
/// never reads past the member's compressed bytes and an output consumer that
/// never accepts more than the declared uncompressed size; the CRC-32 is
/// verified.
///
/// Why not `ZIPFoundation.Archive.extract`? In ZIPFoundation 0.9.20 on Linux
/// the inflate loop keeps asking for input until the deflate stream ends; a
/// damaged stream that runs off the end of the file makes it spin forever on
/// empty reads. Here the same situation is an error naming the file and member.
/// (Writing uses `Archive`, see `NPZ`.)
enum ZipReader {
    struct Member {
        let name: String
        let method: UInt16
        let crc32: UInt32
        let compressedSize: Int
        let uncompressedSize: Int
        let dataOffset: Int
    }

    private static let localHeaderSignature: UInt32 = 0x0403_4B50
    private static let endOfCentralDirectorySignature: UInt32 = 0x0605_4B50
    private static let centralHeaderSignature: UInt32 = 0x0201_4B50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4B50
    private static let zip64EndSignature: UInt32 = 0x0606_4B50
    /// Deflate cannot expand data by more than about 1032:1.
    private static let maximumDeflateRatio = 1032

    /// The members listed in the central directory of the zip image `data`.
    static func members(of data: Data, file: String) throws -> [Member] {
        func corrupt(_ detail: String, _ member: String? = nil) -> TensorFileError {
            .corruptArchive(file: file, member: member, detail: detail)
        }
        func u16(_ at: Int) -> Int? { ByteCoding.littleEndian(UInt16.self, at: at, in: data).map(Int.init) }
        func u32(_ at: Int) -> UInt32? { ByteCoding.littleEndian(UInt32.self, at: at, in: data) }
        func int32(_ at: Int) -> Int? { u32(at).map(Int.init) }
        func int64(_ at: Int) -> Int? {
            ByteCoding.littleEndian(UInt64.self, at: at, in: data).flatMap { $0 <= UInt64(Int.max) ? Int($0) : nil }
        }

        // End-of-central-directory record: 22 bytes plus a comment of up to 65535 bytes.
        var endRecord: Int?
        var position = data.count - 22
        while position >= max(0, data.count - 22 - 65535) {
            if u32(position) == endOfCentralDirectorySignature, let commentLength = u16(position + 20),
               position + 22 + commentLength == data.count {
                endRecord = position
                break
            }
            position -= 1
        }
        guard let end = endRecord, var total = u16(end + 10), var directorySize = int32(end + 12),
              var directoryOffset = int32(end + 16), let disk = u16(end + 4), let directoryDisk = u16(end + 6) else {
            throw corrupt("no end-of-central-directory record; the file is truncated or not a complete zip archive")
        }
        guard disk == 0, directoryDisk == 0 else { throw corrupt("multi-volume archives are not supported") }
        var directoryLimit = end
        if total == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            guard end >= 20, u32(end - 20) == zip64LocatorSignature, let zip64End = int64(end - 12),
                  zip64End <= end - 20 - 56, u32(zip64End) == zip64EndSignature,
                  let t = int64(zip64End + 32), let s = int64(zip64End + 40), let o = int64(zip64End + 48) else {
                throw corrupt("the ZIP64 end-of-central-directory record is missing or damaged")
            }
            (total, directorySize, directoryOffset, directoryLimit) = (t, s, o, zip64End)
        }
        guard directoryOffset <= directoryLimit, directorySize <= directoryLimit - directoryOffset else {
            throw corrupt("the central directory (\(directorySize) bytes at offset \(directoryOffset)) "
                          + "lies outside the \(data.count)-byte file")
        }
        guard total <= directorySize / 46 else {
            throw corrupt("\(total) entries cannot fit a \(directorySize)-byte central directory")
        }

        var members: [Member] = []
        var record = directoryOffset
        let directoryEnd = directoryOffset + directorySize
        for _ in 0 ..< total {
            guard record <= directoryEnd - 46, u32(record) == centralHeaderSignature,
                  let flags = u16(record + 8), let method = u16(record + 10), let crc = u32(record + 16),
                  var compressed = int32(record + 20), var uncompressed = int32(record + 24),
                  let nameLength = u16(record + 28), let extraLength = u16(record + 30),
                  let commentLength = u16(record + 32), var localOffset = int32(record + 42) else {
                throw corrupt("central directory entry \(members.count) is damaged")
            }
            let next = record + 46 + nameLength + extraLength + commentLength
            guard next <= directoryEnd else { throw corrupt("central directory entry \(members.count) overruns the directory") }
            let name = String(decoding: data.slice(at: record + 46, length: nameLength), as: UTF8.self)

            // ZIP64 extended information holds, in order, each 32-bit field that is 0xFFFFFFFF.
            var extra = record + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd, let id = u16(extra), let size = u16(extra + 2), extra + 4 + size <= extraEnd {
                if id == 0x0001 {
                    var field = extra + 4
                    func next64() throws -> Int {
                        guard field + 8 <= extra + 4 + size, let value = int64(field) else {
                            throw corrupt("ZIP64 extra field too short", name)
                        }
                        field += 8
                        return value
                    }
                    if uncompressed == 0xFFFF_FFFF { uncompressed = try next64() }
                    if compressed == 0xFFFF_FFFF { compressed = try next64() }
                    if localOffset == 0xFFFF_FFFF { localOffset = try next64() }
                }
                extra += 4 + size
            }

            guard flags & 1 == 0 else { throw corrupt("encrypted members are not supported", name) }
            guard method == 0 || method == 8 else {
                throw corrupt("compression method \(method) is not supported (only stored and deflate)", name)
            }
            guard localOffset <= data.count - 30, u32(localOffset) == localHeaderSignature,
                  let localNameLength = u16(localOffset + 26), let localExtraLength = u16(localOffset + 28) else {
                throw corrupt("local header at offset \(localOffset) is missing or damaged", name)
            }
            let dataOffset = localOffset + 30 + localNameLength + localExtraLength
            guard dataOffset <= data.count, compressed <= data.count - dataOffset else {
                throw corrupt("member data (\(compressed) bytes at offset \(dataOffset)) runs past the end of "
                              + "the \(data.count)-byte file", name)
            }
            if method == 0, compressed != uncompressed {
                throw corrupt("stored member has compressed size \(compressed) but uncompressed size \(uncompressed)", name)
            }
            if method == 8, uncompressed / maximumDeflateRatio > compressed + 1 {
                throw corrupt("declares \(uncompressed) uncompressed bytes from \(compressed) compressed bytes, "
                              + "more than deflate can encode", name)
            }
            members.append(Member(name: name, method: UInt16(method), crc32: crc, compressedSize: compressed,
                                  uncompressedSize: uncompressed, dataOffset: dataOffset))
            record = next
        }
        return members
    }

    /// The uncompressed bytes of `member`, CRC-checked.
    static func contents(of member: Member, in data: Data, file: String) throws -> Data {
        func corrupt(_ detail: String) -> TensorFileError {
            .corruptArchive(file: file, member: member.name, detail: detail)
        }
        let compressed = data.slice(at: member.dataOffset, length: member.compressedSize)
        let output: Data
        let checksum: CRC32
        if member.method == 0 {
            output = compressed
            checksum = compressed.crc32(checksum: 0)
        } else {
            var inflated = Data()
            var consumed = 0
            var exhausted = false
            let limit = member.uncompressedSize
            do {
                checksum = try Data.decompress(
                    size: Int64(member.compressedSize), bufferSize: 64 * 1024, skipCRC32: false,
                    provider: { _, size in
                        guard !exhausted else {
                            throw corrupt("the deflate stream does not end within its \(member.compressedSize) compressed bytes")
                        }
                        let n = min(size, compressed.count - consumed)
                        let start = compressed.startIndex + consumed
                        var chunk = Data(compressed[start ..< start + n])
                        consumed += n
                        exhausted = consumed == compressed.count
                        // zlib is told `size` bytes are available; pad so it never reads beyond the chunk.
                        if n < size { chunk.count = size } // zero-fills
                        return chunk
                    },
                    consumer: { piece in
                        guard piece.count <= limit - inflated.count else {
                            throw corrupt("inflates to more than the declared \(limit) bytes")
                        }
                        inflated.append(piece)
                    })
            } catch let error as TensorFileError {
                throw error
            } catch {
                throw corrupt("the deflate stream is damaged (\(error))")
            }
            guard inflated.count == limit else {
                throw corrupt("inflates to \(inflated.count) bytes, the directory declares \(limit)")
            }
            output = inflated
        }
        guard checksum == member.crc32 else {
            throw corrupt("CRC-32 mismatch: the directory records \(hex(member.crc32)), the data gives \(hex(checksum))")
        }
        return output
    }

    private static func hex(_ value: UInt32) -> String {
        "0x" + String(value, radix: 16, uppercase: true).leftPadded(to: 8)
    }
}
