import Foundation

/// Writes files all-or-nothing: the new contents go to a temporary file in
/// the destination's directory, which is flushed to disk and then renamed
/// over the destination (`rename(2)` replaces atomically within a file
/// system). If anything fails, the temporary file is removed and the
/// destination is left exactly as it was — absent, or with its old contents.
/// An existing destination's permission bits are carried over.
public enum AtomicFile {
    /// Atomically replaces (or creates) the file at `path` with `data`.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { temporaryPath in
            do {
                try data.write(to: URL(fileURLWithPath: temporaryPath), options: [.withoutOverwriting])
            } catch {
                throw TensorFileError.unwritable(file: path, reason: error.localizedDescription)
            }
        }
    }

    /// Atomically replaces (or creates) the file at `path` with whatever
    /// `body` writes to the temporary path it is given.
    ///
    /// `body` must create the file at `temporaryPath` (which does not exist
    /// yet). Errors thrown by `body` are rethrown unchanged after clean-up.
    public static func write(to path: String, using body: (_ temporaryPath: String) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporaryPath = directory + "/." + url.lastPathComponent + ".tmp-" + UUID().uuidString
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TensorFileError.unwritable(file: path, reason: "directory \(directory) does not exist")
        }
        do {
            try body(temporaryPath)
            guard fileManager.fileExists(atPath: temporaryPath) else {
                throw TensorFileError.unwritable(file: path, reason: "nothing was written")
            }
            try flush(temporaryPath, for: path)
            if let permissions = try? fileManager.attributesOfItem(atPath: path)[.posixPermissions] {
                try? fileManager.setAttributes([.posixPermissions: permissions], ofItemAtPath: temporaryPath)
            }
            guard rename(temporaryPath, path) == 0 else {
                throw TensorFileError.unwritable(file: path, reason: "cannot rename the temporary file into place: "
                                                 + String(cString: strerror(errno)))
            }
        } catch {
            try? fileManager.removeItem(atPath: temporaryPath)
            throw error
        }
    }

    private static func flush(_ temporaryPath: String, for path: String) throws {
        do {
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: temporaryPath))
            defer { try? handle.close() }
            try handle.synchronize()
        } catch {
            throw TensorFileError.unwritable(file: path, reason: "cannot flush the temporary file: \(error.localizedDescription)")
        }
    }
}
