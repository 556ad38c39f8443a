import Foundation
import ArgumentParser
import MambaTensors
import MambaVerification
#if canImport(Glibc)
import Glibc
import CBLASCore
#endif

/// Exit codes: 0 pass, 1 verification failure, 2 usage or input error.
enum ExitStatus: Int32 {
    case pass = 0, verificationFailure = 1, usageOrInput = 2
}

/// A verification failure (exit 1) after the report has been printed.
struct VerificationFailed: Error, CustomStringConvertible {
    var description: String
}

/// An input problem (exit 2), already phrased for the user.
struct InputProblem: Error, CustomStringConvertible {
    var description: String
}

struct MambaCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mambacheck",
        abstract: "Numerical verification for the linear-attention family (softmax, linear, Mamba-2, Mamba-2S, 2Mamba, 2Mamba-E).",
        discussion: """
            Exit codes: 0 pass, 1 verification failure, 2 usage or input error. \
            The mathematics is in docs/MATH.md; the theorems behind every tolerance are in Proofs/.
            """,
        subcommands: [VerifyCommand.self, CompareCommand.self, CalibrateCommand.self, ReferenceCommand.self, VariantsCommand.self, BenchCommand.self,
                      FixturesCommand.self, SweepCommand.self, MergeCommand.self, SuiteCommand.self, FuzzCommand.self])
}

@main
enum Main {
    static func main() {
        keepLargeBuffers()
        do {
            var command = try MambaCheck.parseAsRoot()
            try command.run()
        } catch let e as VerificationFailed {
            printError(e.description)
            exit(ExitStatus.verificationFailure.rawValue)
        } catch let e as InputProblem {
            printError("error: \(e.description)")
            exit(ExitStatus.usageOrInput.rawValue)
        } catch let e as DumpError {
            printError("error: \(e.description)")
            exit(ExitStatus.usageOrInput.rawValue)
        } catch let e as TensorFileError {
            printError("error: \(e)")
            exit(ExitStatus.usageOrInput.rawValue)
        } catch {
            // ArgumentParser: --help/--version exit 0; every parse or validation
            // error is a usage error (2), not ArgumentParser's default 64.
            let code = MambaCheck.exitCode(for: error)
            if code == .success {
                MambaCheck.exit(withError: error)
            }
            printError(MambaCheck.fullMessage(for: error))
            exit(ExitStatus.usageOrInput.rawValue)
        }
    }
}

/// Keeps freed kernel buffers (a few MiB each, allocated afresh by every
/// kernel call) in the heap instead of returning them to the system, so the
/// next call does not page-fault them in again. Measured on the 2Mamba
/// chunked bench (BENCHMARKS.md, issue 12): the page faults were about a
/// tenth of a call's time. Blocks of 32 MiB or more are still mapped afresh,
/// and at most 64 MiB of free heap top is kept.
func keepLargeBuffers() {
    _ = mc_keep_freed_buffers(32 << 20, 64 << 20)
}

func printError(_ s: String) {
    var err = StandardError()
    print(s, to: &err)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { writeStderr(string) }
}

func writeStderr(_ s: String) {
    FileHandle.standardError.write(Data(s.utf8))
}
