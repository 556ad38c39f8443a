import Foundation
import Testing

/// Runs the built `mambacheck` executable (end-to-end tests: exit codes,
/// messages and files exactly as a user sees them).
///
/// The binary is looked up, in order: `$MAMBACHECK_BINARY`; next to the test
/// bundle (the same build directory as the tests, which `swift build` /
/// `swift test` fills); `.build/debug` and `.build/release` under the package
/// root derived from this file's path. Tests fail with a clear message if
/// none exists (run `swift build` first).
enum CLI {
    struct Result: CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        var description: String {
            "exit \(status) after \(String(format: "%.2f", seconds)) s\n--- stdout ---\n\(stdout.suffix(3000))\n--- stderr ---\n\(stderr.suffix(3000))"
        }
    }

    struct BinaryNotFound: Error, CustomStringConvertible {
        var searched: [String]
        var description: String {
            "the mambacheck executable was not found; build it first (`swift build`) or set MAMBACHECK_BINARY. Searched: "
                + searched.joined(separator: ", ")
        }
    }

    /// The package root: three levels above this file (Tests/MambaCheckCLITests/CLI.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func binary() throws -> String {
        var candidates: [String] = []
        if let env = ProcessInfo.processInfo.environment["MAMBACHECK_BINARY"], !env.isEmpty { candidates.append(env) }
        if let exe = Bundle.main.executableURL {
            // …/.build/<triple>/debug/MambaCheckPackageTests.xctest (a file on Linux, a bundle on macOS)
            var dir = exe.deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("mambacheck").path)
                dir = dir.deletingLastPathComponent()
            }
        }
        for config in ["debug", "release"] {
            candidates.append(packageRoot.appendingPathComponent(".build/\(config)/mambacheck").path)
        }
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: c, isDirectory: &isDirectory), !isDirectory.boolValue { return c }
        }
        throw BinaryNotFound(searched: candidates)
    }

    /// Runs `mambacheck arguments…` in `directory`, capturing both streams.
    /// - Parameter executable: another program to run instead of `mambacheck` (e.g. a checking script).
    static func run(_ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:],
                    executable: String? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable ?? binary())
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("mambacheck-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout"), err = scratch.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        let start = Date()
        try process.run()
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: try Data(contentsOf: out), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self),
                      seconds: Date().timeIntervalSince(start))
    }

    /// A fresh temporary directory, removed by the caller's `defer`.
    static func temporaryDirectory(_ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mambacheck-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
