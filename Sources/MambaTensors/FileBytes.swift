import Foundation

/// Reading whole files, with errors that name the file.
enum FileBytes {
    static func read(_ path: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TensorFileError.unreadable(file: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw TensorFileError.unreadable(file: path, reason: "is a directory") }
        do {
            // Read, not mapped: a mapped file truncated by another process would crash us.
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TensorFileError.unreadable(file: path, reason: error.localizedDescription)
        }
    }

    /// The file name without directory and extension: `/a/q.npy` → `q`.
    static func stem(of path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
    }
}
