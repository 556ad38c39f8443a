import ArgumentParser
import Foundation
import MambaTensors
#if canImport(Glibc)
import Glibc
#endif

/// Output paths checked before any computation, so that a run that would
/// end by failing to write (or by destroying a user's file) fails at once,
/// with exit 2, instead of after minutes of oracle time.
///
/// Refused: an output that is one of the inputs (same device and inode,
/// whatever the spelling: `./in.npz`, a hard link, a symlink to it), two
/// options naming the same file, a directory or other non-regular file, a
/// symbolic link (replacing it would either destroy the link or write
/// somewhere the user did not name; pass the target instead), and a parent
/// directory that is missing or not writable.
enum OutputPaths {
    /// `(option, path)` pairs; nil paths (options not given) are skipped.
    static func check(_ outputs: [(option: String, path: String?)],
                      inputs: [(option: String, path: String?)] = []) throws {
        var seen: [(option: String, key: String)] = []
        for (option, maybePath) in outputs {
            guard let path = maybePath else { continue }
            guard !path.isEmpty else { throw InputProblem(description: "\(option): empty path") }
            var st = stat()
            let exists = lstat(path, &st) == 0
            if exists {
                switch st.st_mode & S_IFMT {
                case S_IFLNK:
                    throw InputProblem(description: "\(option) \(path) is a symbolic link; refusing to write through it "
                                       + "(name the file itself)")
                case S_IFDIR:
                    throw InputProblem(description: "\(option) \(path) is a directory")
                case S_IFREG:
                    break
                default:
                    throw InputProblem(description: "\(option) \(path) is not a regular file")
                }
                for (inputOption, input) in inputs {
                    guard let input, let id = identity(input) else { continue }
                    if id.0 == UInt64(st.st_dev) && id.1 == UInt64(st.st_ino) {
                        throw InputProblem(description: "\(option) \(path) is the \(inputOption) file; refusing to "
                                           + "overwrite an input (choose another output path)")
                    }
                }
            }
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var dst = stat()
            guard stat(directory, &dst) == 0, (dst.st_mode & S_IFMT) == S_IFDIR else {
                throw InputProblem(description: "\(option) \(path): directory \(directory) does not exist")
            }
            guard access(directory, W_OK | X_OK) == 0 else {
                throw InputProblem(description: "\(option) \(path): directory \(directory) is not writable")
            }
            let key = canonical(path, directory: directory)
            if let twin = seen.first(where: { $0.key == key }) {
                throw InputProblem(description: "\(option) and \(twin.option) name the same file \(path)")
            }
            seen.append((option, key))
        }
    }

    /// `(device, inode)` of the file at `path`, following symbolic links.
    static func identity(_ path: String) -> (UInt64, UInt64)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// The resolved directory plus the file name: one spelling per file.
    static func canonical(_ path: String, directory: String) -> String {
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard let resolved = realpath(directory, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved) + "/" + name
    }
}

/// Arguments shared by the commands that run the oracle on a dump.
enum OracleArguments {
    /// Oracle precision range in bits. Floor 64: the oracle's results are
    /// written and compared as Float64 (53 bits), so fewer bits would make the
    /// "exact" reference coarser than the numbers it is written as, with
    /// margin for its O(N·2^−p) accumulated error. Ceiling 2^16 = 65,536 bits
    /// (~19,700 digits), far beyond any verification need, because the
    /// oracles hold O(N·(dk + dv + F)) MPFR numbers (8 KiB each at the ceiling)
    /// and GMP aborts the process, rather than failing, when an allocation
    /// cannot be made (`--precision 99999999999`).
    static let precisionRange = 64...65_536

    static func validate(precision: Int, scale: Double?) throws {
        guard precisionRange.contains(precision) else {
            throw ValidationError("--precision must be in \(precisionRange.lowerBound)…\(precisionRange.upperBound) bits, "
                                  + "found \(precision)")
        }
        if let scale, !scale.isFinite || scale == 0 {
            // Non-finite scores have no oracle; s = 0 makes every score 0 (0/0 rows when sum-normalised).
            throw ValidationError("--scale must be a finite, non-zero number, found \(scale)")
        }
    }
}
