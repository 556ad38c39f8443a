import Foundation
import MambaTensors
import Testing

/// The path of a file in the test bundle's `Data` folder (made by
/// `scripts/make-tensor-test-files.py`).
func dataFile(_ name: String) throws -> String {
    let folder = try #require(Bundle.module.url(forResource: "Data", withExtension: nil), "missing Data resources")
    return folder.appendingPathComponent(name).path
}

/// One array as NumPy recorded it in `expected.json`.
struct ExpectedArray: Decodable {
    let dtype: String
    let shape: [Int]
    let bits: [String]

    var bitPatterns: [UInt64] { bits.map { UInt64($0.dropFirst(2), radix: 16) ?? .max } }
}

/// `expected.json`: file name → array name → expected array.
func expectedArrays() throws -> [String: [String: ExpectedArray]] {
    let data = try Data(contentsOf: URL(fileURLWithPath: try dataFile("expected.json")))
    return try JSONDecoder().decode([String: [String: ExpectedArray]].self, from: data)
}

/// A fresh empty directory, removed when the value is released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("MambaTensorsTests-" + UUID().uuidString).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    /// The names of the files now in the directory (hidden ones included).
    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }
}

func readBytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Runs `body`, requires it to throw a `TensorFileError`, and returns it.
func tensorFileError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> TensorFileError? {
    do {
        try body()
        Issue.record("expected a TensorFileError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as TensorFileError {
        return error
    } catch {
        Issue.record("expected a TensorFileError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Special values of each floating type, by bit pattern: ±0, ±∞, quiet and
/// signalling NaNs with payloads and both signs, the smallest and largest
/// subnormals, the smallest normal and ±the largest finite value.
enum Specials {
    static let half: [UInt16] = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01, 0x0001, 0x03FF, 0x0400,
                                 0x7BFF, 0xFBFF]
    static let bfloat16: [UInt16] = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x0001, 0x007F, 0x0080,
                                     0x7F7F, 0xFF7F]
    static let float: [UInt32] = [0x0000_0000, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0001,
                                  0x7F80_0001, 0x0000_0001, 0x007F_FFFF, 0x0080_0000, 0x7F7F_FFFF, 0xFF7F_FFFF]
    static let double: [UInt64] = [0, 0x8000_0000_0000_0000, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000,
                                   0x7FF8_0000_0000_0000, 0xFFF8_0000_0000_0001, 0x7FF0_0000_0000_0001, 1,
                                   0x000F_FFFF_FFFF_FFFF, 0x0010_0000_0000_0000, 0x7FEF_FFFF_FFFF_FFFF,
                                   0xFFEF_FFFF_FFFF_FFFF]

    /// One array of every dtype holding its special values (integers: extremes), shaped 3×4.
    static var arrays: [String: TensorData] {
        [
            "f16": TensorData(bitPatterns: Tensor(shape: [3, 4], storage: half), dtype: .float16),
            "bf16": TensorData(bitPatterns: Tensor(shape: [3, 4], storage: bfloat16), dtype: .bfloat16),
            "f32": TensorData(Tensor(shape: [3, 4], storage: float.map(Float.init(bitPattern:)))),
            "f64": TensorData(Tensor(shape: [3, 4], storage: double.map(Double.init(bitPattern:)))),
            "i32": TensorData(Tensor<Int32>(shape: [2, 2], storage: [0, -1, .min, .max])),
            "i64": TensorData(Tensor<Int64>(shape: [2, 2], storage: [0, -1, .min, .max])),
        ]
    }
}

/// CRC-32 (IEEE 802.3, as zip uses it), bit by bit: independent of the code under test.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0 ..< 8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// Builds zip archives byte by byte, so tests can make damaged ones.
struct ZipBuilder {
    struct Member {
        var name: String
        var method: UInt16 = 0
        var data: [UInt8]
        var crc: UInt32? = nil
        var uncompressedSize: Int? = nil
    }

    var members: [Member] = []

    func build() -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func le32(_ v: Int) -> [UInt8] { le16(v & 0xFFFF) + le16(v >> 16 & 0xFFFF) }
        for member in members {
            let name = Array(member.name.utf8)
            let crc = Int(member.crc ?? crc32(member.data))
            let usize = member.uncompressedSize ?? member.data.count
            let offset = out.count
            out += le32(0x0403_4B50) + le16(20) + le16(0) + le16(Int(member.method)) + le16(0) + le16(0x21)
            out += le32(crc) + le32(member.data.count) + le32(usize) + le16(name.count) + le16(0) + name + member.data
            central += le32(0x0201_4B50) + le16(20) + le16(20) + le16(0) + le16(Int(member.method)) + le16(0)
            central += le16(0x21) + le32(crc) + le32(member.data.count) + le32(usize) + le16(name.count)
            central += le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(offset) + name
        }
        let directoryOffset = out.count
        out += central
        out += le32(0x0605_4B50) + le16(0) + le16(0) + le16(members.count) + le16(members.count)
        out += le32(central.count) + le32(directoryOffset) + le16(0)
        return out
    }
}
