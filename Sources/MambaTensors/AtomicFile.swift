import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes files all-or-nothing: the new contents go to a temporary file in
/// the destination's directory, which is flushed to disk and then renamed
/// over the destination (`rename(2)` replaces atomically within a file
/// system). If anything fails, the temporary file is removed and the
/// destination is left exactly as it was — absent, or with its old contents.
///
/// Permissions: an existing regular destination keeps its permission bits; a
/// new file gets `0644` (a report or tensor dump is data, never executable).
/// A destination that is a symbolic link is written *through*: the link's
/// target is replaced and the link stays (renaming over the link itself would
/// turn it into a regular file with the link's `0777` mode). A link whose
/// target does not exist is refused.
public enum AtomicFile {
    /// Mode of newly created files.
    public static let newFileMode: mode_t = 0o644

    /// Atomically replaces (or creates) the file at `path` with `data`.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { temporaryPath in try create(temporaryPath, with: data, for: path) }
    }

    /// Writes every `(path, data)` pair, all or nothing: all contents go to
    /// temporary files first (flushed); only when every one of them is
    /// complete are they renamed into place. If any temporary cannot be
    /// written, all temporaries are removed and no destination is touched, so
    /// a failed run never leaves a partial set of reports. (`rename(2)` within
    /// a directory does not fail for lack of space; only a destination
    /// removed or replaced concurrently can stop the final renames midway.)
    ///
    /// - Throws: `TensorFileError.unwritable` naming the path that failed;
    ///   `invalidArguments` when two pairs name the same file.
    public static func writeAll(_ files: [(path: String, data: Data)]) throws {
        var targets: [String] = []
        for f in files {
            let target = try destination(f.path)
            if let twin = targets.firstIndex(of: target) {
                throw TensorFileError.invalidArguments(file: f.path, detail: "the same file as \(files[twin].path) "
                                                       + "is written twice")
            }
            targets.append(target)
        }
        var staged: [(temporary: String, target: String, path: String)] = []
        do {
            for (f, target) in zip(files, targets) {
                let temporary = try temporaryPath(for: target, path: f.path)
                staged.append((temporary, target, f.path))
                try create(temporary, with: f.data, for: f.path)
                try finish(temporary, target: target, path: f.path)
            }
        } catch {
            for s in staged { unlink(s.temporary) }
            throw error
        }
        for (k, s) in staged.enumerated() where rename(s.temporary, s.target) != 0 {
            let reason = String(cString: strerror(errno))
            for later in staged[k...] { unlink(later.temporary) }
            throw TensorFileError.unwritable(file: s.path, reason: "cannot rename the temporary file into place: \(reason)")
        }
    }

    /// Atomically replaces (or creates) the file at `path` with whatever
    /// `body` writes to the temporary path it is given.
    ///
    /// `body` must create the file at `temporaryPath` (which does not exist
    /// yet). Errors thrown by `body` are rethrown unchanged after clean-up.
    public static func write(to path: String, using body: (_ temporaryPath: String) throws -> Void) throws {
        let target = try destination(path)
        let temporary = try temporaryPath(for: target, path: path)
        do {
            try body(temporary)
            guard FileManager.default.fileExists(atPath: temporary) else {
                throw TensorFileError.unwritable(file: path, reason: "nothing was written")
            }
            try finish(temporary, target: target, path: path)
            guard rename(temporary, target) == 0 else {
                throw TensorFileError.unwritable(file: path, reason: "cannot rename the temporary file into place: "
                                                 + String(cString: strerror(errno)))
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// The file actually replaced for `path`: `path` itself, or the target of
    /// the symbolic link(s) at `path` (which must exist).
    static func destination(_ path: String) throws -> String {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { return path }
        guard let resolved = realpath(path, nil) else {
            throw TensorFileError.unwritable(file: path, reason: "it is a symbolic link to a missing file")
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// A fresh temporary name next to `target`, after checking its directory.
    static func temporaryPath(for target: String, path: String) throws -> String {
        let url = URL(fileURLWithPath: target)
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TensorFileError.unwritable(file: path, reason: "directory \(directory) does not exist")
        }
        return directory + "/." + url.lastPathComponent + ".tmp-" + UUID().uuidString
    }

    /// Creates `temporaryPath` (exclusively) holding `data`.
    static func create(_ temporaryPath: String, with data: Data, for path: String) throws {
        let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, newFileMode)
        guard fd >= 0 else {
            throw TensorFileError.unwritable(file: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var offset = 0
        let ok = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        guard ok else { throw TensorFileError.unwritable(file: path, reason: String(cString: strerror(errno))) }
    }

    /// Flushes the temporary file and gives it its final mode: the existing
    /// regular destination's permission bits, else `newFileMode`.
    private static func finish(_ temporaryPath: String, target: String, path: String) throws {
        let fd = open(temporaryPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TensorFileError.unwritable(file: path, reason: "cannot flush the temporary file: " + String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        let mode: mode_t = stat(target, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? st.st_mode & 0o7777 : newFileMode
        guard fchmod(fd, mode) == 0, fsync(fd) == 0 else {
            throw TensorFileError.unwritable(file: path, reason: "cannot flush the temporary file: " + String(cString: strerror(errno)))
        }
    }
}
