import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MambaVariants

/// A seeded mutational fuzzer over byte strings (issue 15).
///
/// Execution `i` of a run with seed `s` mutates one corpus entry with a
/// generator seeded from `(s, i)` alone — no state carries over between
/// executions — so any execution can be regenerated on its own
/// (`input(_:)`, `MAMBACHECK_FUZZ_REPLAY=i`). Mutations: bit flips, byte
/// overwrites with boundary values, 2/4/8-byte little-endian integers set
/// to boundary values (sizes, offsets, counts), ASCII digit runs replaced
/// by large or negative numbers (the text headers of npy and safetensors),
/// chunk deletion, duplication and insertion, truncation, and splicing two
/// corpus entries. 1–8 mutations are stacked per execution.
///
/// A crash (Swift trap, fatal signal) ends the process: the signal handler
/// first writes `fuzz: crashed in execution i (seed s)` to stderr, which is
/// what `MAMBACHECK_FUZZ_REPLAY=i` reproduces. A slow execution (a hang or
/// a blow-up in progress) is reported with its index by `run`.
public struct ByteFuzzer: Sendable {
    public var corpus: [[UInt8]]
    public var seed: UInt64

    public init(corpus: [[UInt8]], seed: UInt64) {
        precondition(!corpus.isEmpty, "a mutational fuzzer needs a corpus")
        self.corpus = corpus
        self.seed = seed
    }

    /// The input of execution `i`.
    public func input(_ i: Int) -> [UInt8] {
        var g = SeededGenerator(seed: seed ^ (UInt64(i) &* 0x9E37_79B9_7F4A_7C15) ^ 0xF022)
        func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(g.next() % UInt64(n)) }
        var bytes = corpus[below(corpus.count)]
        let mutations = 1 + below(8)
        for _ in 0..<mutations { mutate(&bytes, &g) }
        return bytes
    }

    static let boundaryBytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x2C, 0x22, 0x7B, 0x7D, 0x28, 0x29, 0x3A, 0x2D]
    static let boundaryIntegers: [UInt64] = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000,
                                              0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
                                              0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, .max]
    static let numbers = ["0", "-1", "1", "65536", "4294967295", "4294967296", "9223372036854775807",
                          "9223372036854775808", "99999999999999999999", "1e308", "-0", "1073741824"]

    private func mutate(_ b: inout [UInt8], _ g: inout SeededGenerator) {
        func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(g.next() % UInt64(n)) }
        let choice = below(b.isEmpty ? 1 : 11)
        switch choice {
        case 0:  // insert a short run of random or boundary bytes
            let at = below(b.count + 1), n = 1 + below(8)
            b.insert(contentsOf: (0..<n).map { _ in
                g.next() % 2 == 0 ? ByteFuzzer.boundaryBytes[below(ByteFuzzer.boundaryBytes.count)] : UInt8(truncatingIfNeeded: g.next())
            }, at: at)
        case 1:  // flip one bit
            let at = below(b.count)
            b[at] ^= UInt8(1 << below(8))
        case 2:  // overwrite a byte with a boundary value
            b[below(b.count)] = ByteFuzzer.boundaryBytes[below(ByteFuzzer.boundaryBytes.count)]
        case 3, 4:  // a little-endian integer of 2, 4 or 8 bytes set to a boundary value
            let width = [2, 4, 8][below(3)]
            guard b.count >= width else { return }
            let at = below(b.count - width + 1)
            var x = ByteFuzzer.boundaryIntegers[below(ByteFuzzer.boundaryIntegers.count)]
            if g.next() % 4 == 0 { x = x &+ UInt64(below(5)) &- 2 }
            for k in 0..<width { b[at + k] = UInt8(truncatingIfNeeded: x >> (8 * UInt64(k))) }
        case 5:  // an ASCII digit run replaced by an extreme number
            let digits = b.indices.filter { (0x30...0x39).contains(b[$0]) }
            guard !digits.isEmpty else { return }
            var lo = digits[below(digits.count)], hi = lo
            while lo > 0 && (0x30...0x39).contains(b[lo - 1]) { lo -= 1 }
            while hi + 1 < b.count && (0x30...0x39).contains(b[hi + 1]) { hi += 1 }
            b.replaceSubrange(lo...hi, with: Array(ByteFuzzer.numbers[below(ByteFuzzer.numbers.count)].utf8))
        case 6:  // delete a chunk
            let at = below(b.count), n = 1 + below(Swift.min(64, b.count - at))
            b.removeSubrange(at..<(at + n))
        case 7:  // duplicate a chunk in place
            let at = below(b.count), n = 1 + below(Swift.min(64, b.count - at))
            b.insert(contentsOf: b[at..<(at + n)], at: at)
        case 8:  // truncate
            b.removeLast(below(b.count) + 1)
        case 9:  // splice: this entry's head, another entry's tail
            let other = corpus[below(corpus.count)]
            let cut = below(b.count + 1), from = below(other.count + 1)
            b = Array(b[..<cut]) + Array(other[from...])
        default:  // overwrite a chunk with random bytes
            let at = below(b.count), n = 1 + below(Swift.min(16, b.count - at))
            for k in at..<(at + n) { b[k] = UInt8(truncatingIfNeeded: g.next()) }
        }
    }

    /// What a run did.
    public struct Summary: Sendable, CustomStringConvertible {
        public var executions: Int
        public var accepted: Int
        public var seconds: Double
        /// The slowest execution and its time.
        public var slowest: (index: Int, seconds: Double)
        public var description: String {
            "\(executions) executions in \(String(format: "%.1f", seconds)) s "
                + "(\(String(format: "%.0f", Double(executions) / Swift.max(seconds, 1e-9))) /s), \(accepted) accepted, "
                + "slowest #\(slowest.index) \(String(format: "%.3f", slowest.seconds)) s"
        }
    }

    /// Runs executions `range` through `body` (which returns whether the
    /// input was accepted), with the crash handler installed and a progress
    /// line every `progressEvery` executions.
    public func run(_ range: Range<Int>, progressEvery: Int = 100_000,
                    body: ([UInt8]) -> Bool) -> Summary {
        FuzzCrashReport.install(seed: seed)
        defer { FuzzCrashReport.current = -1 }
        let clock = ContinuousClock(), start = clock.now
        var accepted = 0, slowest = (index: range.lowerBound, seconds: 0.0)
        for i in range {
            let bytes = input(i)
            FuzzCrashReport.current = i
            let t0 = clock.now
            if body(bytes) { accepted += 1 }
            let dt = (clock.now - t0).seconds
            if dt > slowest.seconds { slowest = (i, dt) }
            if progressEvery > 0, (i - range.lowerBound + 1) % progressEvery == 0 {
                print("fuzz: \(i - range.lowerBound + 1) executions, \(accepted) accepted, \(String(format: "%.1f", (clock.now - start).seconds)) s")
            }
        }
        return Summary(executions: range.count, accepted: accepted, seconds: (clock.now - start).seconds, slowest: slowest)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// The crash report of `ByteFuzzer.run`: a fatal signal writes the
/// execution index to stderr with `write(2)`, then the default action ends
/// the process as before. Best effort: the message is formatted in a small
/// local buffer, which is safe for the traps and faults of Swift code.
enum FuzzCrashReport {
    nonisolated(unsafe) static var current: Int = -1
    nonisolated(unsafe) static var seed: UInt64 = 0
    nonisolated(unsafe) static var installed = false

    static func install(seed: UInt64) {
        self.seed = seed
        guard !installed else { return }
        installed = true
        for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
            signal(sig) { s in
                if FuzzCrashReport.current >= 0 {
                    var buf = [UInt8](repeating: 0, count: 160)
                    var n = 0
                    func put(_ text: StaticString) {
                        text.withUTF8Buffer { for c in $0 where n < buf.count { buf[n] = c; n += 1 } }
                    }
                    func put(_ x: UInt64) {
                        var digits = [UInt8](repeating: 0, count: 20), k = 0, v = x
                        repeat { digits[k] = UInt8(48 + v % 10); v /= 10; k += 1 } while v > 0
                        while k > 0 && n < buf.count { k -= 1; buf[n] = digits[k]; n += 1 }
                    }
                    put("\nfuzz: crashed in execution ")
                    put(UInt64(FuzzCrashReport.current))
                    put(" (seed ")
                    put(FuzzCrashReport.seed)
                    put("); replay with MAMBACHECK_FUZZ_REPLAY=")
                    put(UInt64(FuzzCrashReport.current))
                    put("\n")
                    _ = buf.withUnsafeBytes { write(2, $0.baseAddress, n) }
                }
                signal(s, SIG_DFL)
                raise(s)
            }
        }
    }
}
