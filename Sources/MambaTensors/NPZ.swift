import Foundation
import ZIPFoundation

/// NumPy's `.npz` format: a zip archive whose members `name.npy` are `.npy`
/// images (`numpy.savez` stores them, `numpy.savez_compressed` deflates them).
///
/// Reading goes through `ZipReader`, which bounds every size by the bytes
/// present and checks CRCs; each member is then read by `NPY`, so errors
/// name the archive and the array. The array name is the member name without
/// its `.npy` suffix; directory entries are skipped; two members that give
/// the same name are an error.
///
/// Writing uses ZIPFoundation's `Archive`, members in name order with a fixed
/// timestamp (1980-01-01) so equal inputs give identical files, via a
/// temporary file renamed into place.
public enum NPZ {
    static let magic: [UInt8] = Array("PK".utf8) + [3, 4]

    /// Reads every array of the `.npz` file at `path`.
    public static func read(contentsOf path: String) throws -> [String: TensorData] {
        try read(FileBytes.read(path), file: path)
    }

    /// Decodes every array of a complete `.npz` image; `file` names it in errors.
    public static func read(_ data: Data, file: String) throws -> [String: TensorData] {
        let data = data.startIndex == 0 ? data : Data(data)
        let leading = data.prefix(4)
        guard leading.elementsEqual(magic) || leading.elementsEqual(Array("PK".utf8) + [5, 6]) else {
            throw TensorFileError.badMagic(file: file, array: nil, format: "npz (zip)", expected: "\"PK\\x03\\x04\"",
                                           found: TensorFileError.describeBytes(leading))
        }
        var arrays: [String: TensorData] = [:]
        for member in try ZipReader.members(of: data, file: file) where !member.name.hasSuffix("/") {
            let name = member.name.hasSuffix(".npy") ? String(member.name.dropLast(4)) : member.name
            guard arrays[name] == nil else { throw TensorFileError.duplicateArray(file: file, array: name) }
            let bytes = try ZipReader.contents(of: member, in: data, file: file)
            arrays[name] = try NPY.read(bytes, file: file, name: name)
        }
        return arrays
    }

    /// Writes `arrays` to `path` as `.npz`, atomically: members stored like
    /// `numpy.savez`, or deflated like `numpy.savez_compressed` when `compressed`.
    ///
    /// - Throws: `invalidArguments` for an empty name or one containing NUL;
    ///   `unsupportedDType` for `bfloat16` (NumPy has none); `unwritable`.
    public static func write(_ arrays: [String: TensorData], to path: String, compressed: Bool = false) throws {
        var members: [(path: String, data: Data)] = []
        for name in arrays.keys.sorted() {
            guard !name.isEmpty, !name.contains("\0") else {
                throw TensorFileError.invalidArguments(file: path, detail: "array name \(name.debugDescription) "
                                                       + "cannot be an .npz member name")
            }
            if let array = arrays[name] {
                members.append((name + ".npy", try NPY.encode(array.labelled(source: path, name: name), file: path)))
            }
        }
        try AtomicFile.write(to: path) { temporaryPath in
            do {
                let archive = try Archive(url: URL(fileURLWithPath: temporaryPath), accessMode: .create)
                for member in members {
                    try archive.addEntry(with: member.path, type: .file, uncompressedSize: Int64(member.data.count),
                                         modificationDate: Date(timeIntervalSince1970: 315_576_000),
                                         compressionMethod: compressed ? .deflate : .none) { position, size in
                        let start = Int(position)
                        return member.data.subdata(in: start ..< start + size)
                    }
                }
            } catch {
                throw TensorFileError.unwritable(file: path, reason: "zip archive: \(error)")
            }
        }
    }
}
