import Foundation
import MambaTensors
import MambaVariants
import MambaVerification
import Testing
import _MambaTestSupport

/// Fuzzing the tensor readers (npy, npz, safetensors) and the input
/// validation `compare` runs on what they return (issue 15): every mutated
/// file must be read or refused with an error — no crash, no hang.
///
/// CI runs a smoke run (`MAMBACHECK_FUZZ_EXECUTIONS`, default 20,000, a
/// few seconds). The nightly run is documented in README:
///
///     MAMBACHECK_FUZZ_EXECUTIONS=1000000 swift test -c release -Xswiftc -enable-testing --filter ReaderFuzzTests
///
/// `MAMBACHECK_FUZZ_SEED` picks another seed; `MAMBACHECK_FUZZ_REPLAY=i`
/// re-runs execution `i` alone and writes its input to
/// `$TMPDIR/mambacheck-fuzz-<i>.bin` (what a crash report names).
@Suite("fuzzing: tensor readers and dump validation")
struct ReaderFuzzTests {
    static var executions: Int {
        ProcessInfo.processInfo.environment["MAMBACHECK_FUZZ_EXECUTIONS"].flatMap(Int.init) ?? 20_000
    }
    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["MAMBACHECK_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_261_205
    }

    /// Valid files of every reader and dtype: a small dump (q, k, v, a,
    /// initial_state, o) as npz (stored and deflated) and safetensors, and
    /// single arrays as npy (v1, float16/32/64, int32, Fortran order).
    static func corpus() throws -> [[UInt8]] {
        let b = 1, h = 2, n = 3, d = 2
        func t(_ shape: [Int], _ seed: Int) -> Tensor<Double> {
            let count = shape.reduce(1, *)
            return Tensor(shape: shape, storage: (0..<count).map { Double(($0 * 7 + seed) % 11) / 8 - 0.6 })
        }
        let dump: [String: TensorData] = [
            "q": TensorData(rounding: t([b, h, n, d], 1), to: .float32),
            "k": TensorData(rounding: t([b, h, n, d], 2), to: .float32),
            "v": TensorData(rounding: t([b, h, n, d], 3), to: .float16),
            "a": TensorData(rounding: Tensor(shape: [b, h, n], storage: [-0.5, -0.25, -1, -0.125, 0, -2]), to: .float32),
            "o": TensorData(rounding: t([b, h, n, d], 4), to: .float64),
        ]
        var out: [[UInt8]] = []
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mambacheck-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for compressed in [false, true] {
            let path = dir.appendingPathComponent("dump-\(compressed).npz").path
            try NPZ.write(dump, to: path, compressed: compressed)
            out.append(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        }
        out.append(Array(try Safetensors.encode(dump, metadata: ["format": "pt"])))
        // Decays as bfloat16 prefix sums (non-increasing), with an initial state.
        var second = dump
        second["a"] = nil
        second["a_cumsum"] = TensorData(rounding: Tensor(shape: [b, h, n], storage: [-0.5, -0.75, -1.75, 0, -1, -3]), to: .bfloat16)
        second["initial_state"] = TensorData(rounding: t([b, h, d * (d + 1) / 2, d], 5), to: .float32)
        second["initial_state_z"] = TensorData(rounding: Tensor(shape: [b, h, d * (d + 1) / 2], storage: [1, 0.5, 0.25, 2, 1, 0.5]), to: .float32)
        out.append(Array(try Safetensors.encode(second)))
        for array in [dump["q"]!, dump["v"]!, dump["o"]!] { out.append(Array(try NPY.encode(array))) }
        return out
    }

    /// One execution: the bytes as each reader (whatever they look like),
    /// then, for whatever was read, the dump validation of every core and
    /// layout and the candidate check. Returns whether a problem was built.
    static func execute(_ bytes: [UInt8]) -> Bool {
        let data = Data(bytes)
        var sets: [[String: TensorData]] = []
        if let a = try? NPZ.read(data, file: "fuzz.npz") { sets.append(a) }
        if let c = try? Safetensors.read(data, file: "fuzz.safetensors") { sets.append(c.arrays) }
        if let t = try? NPY.read(data, file: "fuzz.npy", name: "q") { sets.append(["q": t, "k": t, "v": t]) }
        var built = false
        for arrays in sets {
            for spec in [CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                         CoreSpec(score: .exponential, hasDecay: false, normalization: .none)] {
                for layout in TensorLayout.allCases {
                    guard let p = try? KernelDump.coreProblem(arrays, file: "fuzz", spec: spec, layout: layout, scale: nil)
                    else { continue }
                    built = true
                    _ = try? KernelDump.candidate(arrays, name: "o", file: "fuzz", layout: layout,
                                                  expectedCanonicalShape: [p.batch, p.heads, p.length, p.valueDim])
                }
            }
        }
        return built
    }

    @Test func readersAndValidationNeverCrash() throws {
        let fuzzer = ByteFuzzer(corpus: try Self.corpus(), seed: Self.seed)
        // The unmutated corpus is accepted: the fuzzer starts from valid dumps.
        for (i, file) in fuzzer.corpus.enumerated() {
            let accepted = Self.execute(file)
            #expect(accepted, "corpus file \(i) is not read back as a dump")
        }
        if let s = ProcessInfo.processInfo.environment["MAMBACHECK_FUZZ_REPLAY"], let i = Int(s) {
            let bytes = fuzzer.input(i)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("mambacheck-fuzz-\(i).bin")
            try Data(bytes).write(to: path)
            print("fuzz: execution \(i) (\(bytes.count) bytes) written to \(path.path)")
            _ = Self.execute(bytes)
            return
        }
        let summary = fuzzer.run(0..<Self.executions) { Self.execute($0) }
        print("fuzz (seed \(Self.seed)): \(summary)")
        // A hang shows as one slow execution: the inputs are at most a few
        // KB, each read in well under a millisecond; 2 s is a loaded machine's margin.
        #expect(summary.slowest.seconds < 2, "execution \(summary.slowest.index) took \(summary.slowest.seconds) s")
        // The mutations must leave some inputs valid, or the validation is never reached.
        #expect(summary.accepted > 0, "no mutated input got past the readers: \(summary)")
    }
}
