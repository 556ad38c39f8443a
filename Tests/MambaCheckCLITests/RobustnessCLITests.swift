import Foundation
import MambaKernels
import MambaOracle
import MambaTensors
import MambaVariants
import MambaVerification
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue "Never crash, never pass garbage, never touch the user's files":
/// every input a user can get wrong is an exit 2 with a message naming the
/// file, the array or the option — never a trap, a GMP abort, a silent
/// choice or a report written over the user's data.
@Suite("robustness: no crash, no garbage, no clobbered files")
struct RobustnessCLITests {
    let core = "squared-decay-sum"

    // MARK: helpers

    /// A small valid problem (B=1, H=2, N=12) with a correct candidate (the oracle's output in Float32).
    func dump(_ dir: URL, spec: String = "squared-decay-sum", huge: Double? = nil, withDo: Bool = false)
        throws -> (CoreProblem, inputs: URL, candidate: URL) {
        var p = CoreProblem.random(spec: CoreSpec(name: spec)!, heads: 2, length: 12, keyDim: 8, valueDim: 8, seed: 9)
        if let huge, case .perStep(var a)? = p.decay {
            a[5] = huge; a[12 + 7] = huge
            p.decay = .perStep(a)
        }
        let inputs = dir.appendingPathComponent("inputs.npz"), cand = dir.appendingPathComponent("candidate.npz")
        try Dumps.writeInputs(p, layout: .bhnd, dtype: .float32, to: inputs)
        if withDo {
            var arrays = try TensorFile.read(inputs.path)
            let g = GradientProblem.random(core: p, seed: 3)
            arrays["do"] = TensorData(rounding: Tensor(shape: [1, 2, 12, 8], storage: g.dO), to: .float32)
            try TensorFile.write(arrays, to: inputs.path)
        }
        let o = try Reference.quadratic(p).oDouble
        try Dumps.writeCandidate(o, problem: p, layout: .bhnd, dtype: .float32, to: cand)
        return (p, inputs, cand)
    }

    func compare(_ inputs: URL, _ cand: URL, _ extra: [String] = [], variant: String? = nil) throws -> CLI.Result {
        try CLI.run(["compare", "--variant", variant ?? core, "--inputs", inputs.path, "--candidate", cand.path] + extra)
    }

    /// Exit 2, every fragment in stderr, no trap.
    func expectInputError(_ r: CLI.Result, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 2, "\(r)", sourceLocation: sourceLocation)
        for f in fragments {
            #expect(r.stderr.contains(f), "stderr lacks '\(f)': \(r)", sourceLocation: sourceLocation)
        }
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Backtracing"), "\(r)", sourceLocation: sourceLocation)
    }

    func bytes(_ url: URL) throws -> Data { try Data(contentsOf: url) }

    func mode(_ path: String) -> mode_t {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode & 0o7777 : 0
    }

    // MARK: item 6: determinism

    /// The same comparison three times (forward and gradients, a failing
    /// candidate so that the explanation reruns too): every report byte-identical.
    @Test func compareReportsAreByteIdenticalOverThreeRuns() throws {
        let dir = try CLI.temporaryDirectory("determinism")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir, withDo: true)
        var arrays = try TensorFile.read(cand.path)
        let o = try arrays["o"]!.asFloat64()
        arrays["o"] = TensorData(rounding: o.map { $0 * (1 + 1e-3) }, to: .float32)  // a failing candidate
        try TensorFile.write(arrays, to: cand.path)
        var runs: [Data] = []
        for i in 0..<3 {
            let files = ["json", "xml", "md"].map { dir.appendingPathComponent("r\(i).\($0)") }
            let r = try compare(inputs, cand, ["--json", files[0].path, "--junit", files[1].path, "--markdown", files[2].path])
            #expect(r.status == 1, "\(r)")
            runs.append(try files.reduce(Data(r.stdout.utf8)) { $0 + (try bytes($1)) })
        }
        #expect(runs[0] == runs[1] && runs[1] == runs[2], "three identical comparisons wrote different reports")
    }

    // MARK: item 1: huge decays, scale

    /// a = −1e9 or −1e30 used to crash compare/reference/reference --grad (SIGILL in the fixed-point sums).
    @Test(arguments: [-7.5e8, -1e9, -1e30])
    func hugeLogDecaysAreHandled(huge: Double) throws {
        let dir = try CLI.temporaryDirectory("huge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir, huge: huge, withDo: true)
        let r = try compare(inputs, cand)
        #expect(r.status == 0, "\(r)")
        let out = dir.appendingPathComponent("ref.npz")
        let ref = try CLI.run(["reference", "--variant", core, "--inputs", inputs.path, "--output", out.path, "--grad"])
        #expect(ref.status == 0, "\(ref)")
        let arrays = try TensorFile.read(out.path)
        for name in ["o", "dq", "dk", "dv", "da"] {
            let values = try #require(arrays[name], "\(name) missing").asFloat64().storage
            #expect(values.allSatisfy { $0.isFinite }, "\(name) not finite")
        }
    }

    @Test func nonFiniteOrZeroScaleIsRefused() throws {
        let dir = try CLI.temporaryDirectory("scale")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir)
        for s in ["nan", "inf", "-inf", "0"] {
            expectInputError(try compare(inputs, cand, ["--scale=\(s)"]), ["--scale"])
            let out = dir.appendingPathComponent("ref.npz").path
            expectInputError(try CLI.run(["reference", "--variant", core, "--inputs", inputs.path, "--output", out,
                                          "--scale=\(s)"]), ["--scale"])
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }

    // MARK: item 2: sizes, precision

    @Test func precisionHasAFloorAndACeiling() throws {
        let dir = try CLI.temporaryDirectory("precision")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir)
        let out = dir.appendingPathComponent("ref.npz").path
        for bits in ["99999999999", "65537", "63", "0", "-5"] {
            expectInputError(try compare(inputs, cand, ["--precision=\(bits)"]), ["--precision", "64"])
            expectInputError(try CLI.run(["reference", "--variant", core, "--inputs", inputs.path, "--output", out,
                                          "--precision=\(bits)"]), ["--precision"])
        }
        #expect(try CLI.run(["reference", "--variant", core, "--inputs", inputs.path, "--output", out,
                             "--precision", "64"]).status == 0)
    }

    /// N = 0 with B·H = 2^30 (and 2^60) used to allocate per sequence (or hang); dk = 2^32−1 overflowed F.
    @Test func emptyAndAbsurdShapesAreRefusedBeforeAllocation() throws {
        let dir = try CLI.temporaryDirectory("sizes")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, _, cand) = try dump(dir)
        for (b, h) in [(1 << 15, 1 << 15), (1 << 30, 1 << 30)] {
            let path = dir.appendingPathComponent("n0-\(b).npz")
            let z = Tensor<Double>(shape: [b, h, 0, 16], storage: [])
            try TensorFile.write(["q": z, "k": z, "v": z, "a": Tensor(shape: [b, h, 0], storage: [])], to: path.path,
                                 dtype: .float32)
            let r = try compare(path, cand)
            expectInputError(r, [path.path, "'q'", "N = 0"])
            #expect(r.seconds < 20, "\(r)")
            expectInputError(try CLI.run(["reference", "--variant", core, "--inputs", path.path, "--output",
                                          dir.appendingPathComponent("r.npz").path]), ["N = 0"])
        }
        let wide = dir.appendingPathComponent("wide.npz")
        let z = Tensor<Double>(shape: [1, 1, 0, Int(UInt32.max)], storage: [])
        try TensorFile.write(["q": z, "k": z, "v": Tensor(shape: [1, 1, 0, 4], storage: []),
                              "a": Tensor(shape: [1, 1, 0], storage: []),
                              "initial_state": Tensor(shape: [1, 1, 0, 4], storage: []),
                              "initial_state_z": Tensor(shape: [1, 1, 0], storage: [])], to: wide.path, dtype: .float32)
        expectInputError(try compare(wide, cand), [wide.path, "'q'"])
        let big = dir.appendingPathComponent("bigdk.npz")
        let q = Tensor<Double>(shape: [1, 1, 1, 5000], repeating: 0.5)
        try TensorFile.write(["q": q, "k": q, "v": Tensor(shape: [1, 1, 1, 4], repeating: 1),
                              "a": Tensor(shape: [1, 1, 1], repeating: -0.5)], to: big.path, dtype: .float32)
        expectInputError(try compare(big, cand), [big.path, "'q'", "dk = 5000"])
    }

    // MARK: item 3: linear duplicate check

    /// 100,000 distinct names then a duplicate: found in linear time.
    @Test func safetensorsDuplicateCheckIsLinear() throws {
        let dir = try CLI.temporaryDirectory("dups")
        defer { try? FileManager.default.removeItem(at: dir) }
        let count = 100_000
        var json = "{"
        for i in 0..<count { json += "\"t\(i)\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}," }
        json += "\"t7\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"
        let path = dir.appendingPathComponent("dups.safetensors")
        try Data(MalformedInputCLITests.safetensors(header: json, data: [])).write(to: path)
        let start = Date()
        #expect(throws: TensorFileError.duplicateArray(file: path.path, array: "t7")) { try TensorFile.read(path.path) }
        // Quadratic: 5·10^9 string comparisons (minutes in debug builds).
        #expect(Date().timeIntervalSince(start) < 30)
    }

    // MARK: item 4: decay arrays

    @Test func conflictingDecayArraysAreRefused() throws {
        let dir = try CLI.temporaryDirectory("conflict")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir)
        let base = try TensorFile.read(inputs.path)
        let a = try #require(base["a"])
        for (first, second) in [("a", "g"), ("a", "a_cumsum"), ("g", "A_cumsum")] {
            var arrays = base
            arrays["a"] = nil
            arrays[first] = a
            arrays[second] = a
            let path = dir.appendingPathComponent("\(first)-\(second).npz")
            try TensorFile.write(arrays, to: path.path)
            expectInputError(try compare(path, cand), [path.path, "'\(first)'", "'\(second)'"])
        }
    }

    @Test func increasingPrefixSumsAreRefused() throws {
        let dir = try CLI.temporaryDirectory("monotone")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, inputs, cand) = try dump(dir)
        guard case .perStep(let a)? = p.decay else { return }
        var l = [Double](), acc = 0.0
        for (i, x) in a.enumerated() { acc = i % 12 == 0 ? x : acc + x; l.append(acc) }
        var arrays = try TensorFile.read(inputs.path)
        arrays["a"] = nil
        arrays["a_cumsum"] = TensorData(rounding: Tensor(shape: [1, 2, 12], storage: l), to: .float32)
        try TensorFile.write(arrays, to: inputs.path)
        #expect(try compare(inputs, cand).status == 0)
        l[12 + 4] = l[12 + 3] + 0.25  // head 1, token 4 increases
        arrays["a_cumsum"] = TensorData(rounding: Tensor(shape: [1, 2, 12], storage: l), to: .float32)
        try TensorFile.write(arrays, to: inputs.path)
        expectInputError(try compare(inputs, cand), [inputs.path, "'a_cumsum'", "[0, 1, 4]", "increase"])
        l = l.map { $0 + 1 }  // L_0 > 0: a_0 > 0
        arrays["a_cumsum"] = TensorData(rounding: Tensor(shape: [1, 2, 12], storage: l), to: .float32)
        try TensorFile.write(arrays, to: inputs.path)
        expectInputError(try compare(inputs, cand), [inputs.path, "'a_cumsum'", "[0, 0, 0]"])
    }

    // MARK: item 5: layout hint

    @Test func aWrongLayoutGetsAHint() throws {
        let dir = try CLI.temporaryDirectory("layout")
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = CoreProblem.random(spec: CoreSpec(name: core)!, heads: 2, length: 24, keyDim: 8, valueDim: 8, seed: 4)
        let inputs = dir.appendingPathComponent("in.npz"), cand = dir.appendingPathComponent("cand.npz")
        try Dumps.writeInputs(p, layout: .bnhd, dtype: .float32, to: inputs)
        try Dumps.writeCandidate(try Reference.quadratic(p).oDouble, problem: p, layout: .bnhd, dtype: .float32, to: cand)
        let wrong = try compare(inputs, cand, ["--layout", "bhnd"])
        #expect(wrong.stderr.contains("did you mean --layout bnhd?"), "\(wrong)")
        #expect(wrong.status == 1, "the hint must not change the verdict: \(wrong)")
        let right = try compare(inputs, cand, ["--layout", "bnhd"])
        #expect(right.status == 0 && !right.stderr.contains("hint:"), "\(right)")
        // A decay array in the other axis order than q: the shape error comes with the hint.
        var arrays = try TensorFile.read(inputs.path)
        guard case .perStep(let a)? = p.decay else { return }
        arrays["a"] = TensorData(rounding: Dumps.tensor(a, [1, 2, 24], .bhnd), to: .float32)
        try TensorFile.write(arrays, to: inputs.path)
        let swapped = try compare(inputs, cand, ["--layout", "bnhd"])
        expectInputError(swapped, ["'a'", "hint:", "swapped"])
    }

    // MARK: item 6: presets reduce to their core

    @Test func presetsSayOnlyTheCoreIsJudged() throws {
        let dir = try CLI.temporaryDirectory("preset")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir)
        let preset = try compare(inputs, cand, variant: "2mamba-dt")
        #expect(preset.status == 0, "\(preset)")
        for f in ["note:", "dt", "V⊙dt", "only its core squared-decay-sum is judged"] {
            #expect(preset.stderr.contains(f), "stderr lacks '\(f)': \(preset)")
        }
        let out = dir.appendingPathComponent("r.npz").path
        let ref = try CLI.run(["reference", "--variant", "2mamba-dt", "--inputs", inputs.path, "--output", out])
        #expect(ref.status == 0 && ref.stderr.contains("only its core"), "\(ref)")
        let plain = try compare(inputs, cand)
        #expect(plain.status == 0 && !plain.stderr.contains("note:"), "\(plain)")
    }

    /// A single-array `.npy` candidate is judged as `o` (with a note), and a
    /// float64 candidate is judged as binary32 with a note saying so.
    @Test func npyAndFloat64CandidatesAreJudgedWithANote() throws {
        let dir = try CLI.temporaryDirectory("npy-f64")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, inputs, _) = try dump(dir)
        let o = try Reference.quadratic(p).oDouble
        let shape = [p.batch, p.heads, p.length, p.valueDim]
        let npy = dir.appendingPathComponent("out.npy")
        try TensorFile.write(["out": Tensor(shape: shape, storage: o)], to: npy.path, dtype: .float32)
        let r = try compare(inputs, npy)
        #expect(r.status == 0 && r.stderr.contains("holds one array (out); it is judged as the output o"), "\(r)")
        // A wrong single array still fails: the note does not excuse it.
        try TensorFile.write(["out": Tensor(shape: shape, storage: o.map { $0 * 1.01 })], to: npy.path, dtype: .float32)
        #expect(try compare(inputs, npy).status == 1)
        let f64 = dir.appendingPathComponent("f64.npz")
        try TensorFile.write(["o": Tensor(shape: shape, storage: o)], to: f64.path, dtype: .float64)
        let d = try compare(inputs, f64)
        #expect(d.status == 0 && d.stderr.contains("stores float64; it is judged as a binary32"), "\(d)")
    }

    // MARK: item 7: files

    @Test func outputsNeverReplaceAnInput() throws {
        let dir = try CLI.temporaryDirectory("clobber")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir)
        let before = (try bytes(inputs), try bytes(cand))
        let hardLink = dir.appendingPathComponent("same-inode.npz")
        try FileManager.default.linkItem(at: inputs, to: hardLink)
        let dotted = dir.path + "/./" + inputs.lastPathComponent
        for (option, target, name) in [("--json", inputs.path, "--inputs"), ("--junit", cand.path, "--candidate"),
                                       ("--markdown", dotted, "--inputs"), ("--json", hardLink.path, "--inputs")] {
            expectInputError(try compare(inputs, cand, [option, target]), [option, name, "overwrite an input"])
        }
        let ref = try CLI.run(["reference", "--variant", core, "--inputs", inputs.path, "--output", dotted])
        expectInputError(ref, ["--output", "--inputs"])
        let dec = try CLI.run(["reference", "--variant", core, "--inputs", inputs.path, "--output",
                               dir.appendingPathComponent("r.npz").path, "--decimal", inputs.path])
        expectInputError(dec, ["--decimal", "--inputs"])
        #expect(try bytes(inputs) == before.0 && bytes(cand) == before.1)
        let shard = dir.appendingPathComponent("shard.json")
        try Data("{}".utf8).write(to: shard)
        let merged = try CLI.run(["merge", dir.path + "/./shard.json", shard.path])
        expectInputError(merged, ["OUTPUT", "overwrite an input"])
        #expect(try String(contentsOf: shard, encoding: .utf8) == "{}")
    }

    @Test func symlinkedOutputsAreRefusedAndNewFilesAre0644() throws {
        let dir = try CLI.temporaryDirectory("symlink")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir)
        let target = dir.appendingPathComponent("target.json"), link = dir.appendingPathComponent("link.json")
        try Data("keep".utf8).write(to: target)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: target.path)
        expectInputError(try compare(inputs, cand, ["--json", link.path]), ["--json", "symbolic link"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == target.path)
        #expect(try String(contentsOf: target, encoding: .utf8) == "keep")
        let old = umask(0)
        defer { umask(old) }
        let json = dir.appendingPathComponent("r.json"), xml = dir.appendingPathComponent("r.xml")
        let r = try compare(inputs, cand, ["--json", json.path, "--junit", xml.path])
        #expect(r.status == 0, "\(r)")
        #expect(mode(json.path) == 0o644 && mode(xml.path) == 0o644, "modes \(String(mode(json.path), radix: 8))")
        // A library write through a link replaces the target and keeps the link.
        try AtomicFile.write(Data("new".utf8), to: link.path)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link.path) == target.path)
        #expect(try String(contentsOf: target, encoding: .utf8) == "new")
    }

    @Test func outputPathsAreCheckedBeforeComputing() throws {
        let dir = try CLI.temporaryDirectory("precheck")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir)
        let json = dir.appendingPathComponent("r.json")
        let missing = dir.appendingPathComponent("no-such-dir/r.xml")
        expectInputError(try compare(inputs, cand, ["--json", json.path, "--junit", missing.path]),
                         ["--junit", "does not exist"])
        let sub = dir.appendingPathComponent("sub")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: false)
        expectInputError(try compare(inputs, cand, ["--json", json.path, "--markdown", sub.path]),
                         ["--markdown", "is a directory"])
        expectInputError(try compare(inputs, cand, ["--json", json.path, "--junit", json.path]), ["same file"])
        #expect(!FileManager.default.fileExists(atPath: json.path))
        expectInputError(try CLI.run(["verify", "--json", missing.path]), ["--json", "does not exist"])
    }

    /// Reports are one set: when one cannot be written, none replaces its destination.
    @Test func reportSetsAreAllOrNothing() throws {
        let dir = try CLI.temporaryDirectory("allornothing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = dir.appendingPathComponent("a.json"), second = dir.appendingPathComponent("b.xml")
        try Data("old".utf8).write(to: first)
        let blocked = dir.appendingPathComponent("blocked")
        try FileManager.default.createDirectory(at: blocked, withIntermediateDirectories: false)
        #expect(throws: TensorFileError.self) {
            try AtomicFile.writeAll([(first.path, Data("new".utf8)), (second.path, Data("new".utf8)),
                                     (blocked.path + "/missing/c.md", Data("new".utf8))])
        }
        #expect(try String(contentsOf: first, encoding: .utf8) == "old")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["a.json", "blocked"])
        try AtomicFile.writeAll([(first.path, Data("new".utf8)), (second.path, Data("new".utf8))])
        #expect(try String(contentsOf: first, encoding: .utf8) == "new" && String(contentsOf: second, encoding: .utf8) == "new")
    }

    // MARK: item 8: messages

    @Test(arguments: [("2Mamba", "'2mamba'"), ("squared_decay_sum", "'squared-decay-sum'"), ("mamba-2", "'mamba2'"),
                      ("2mambe", "'2mamba'")])
    func unknownVariantsGetSuggestions(name: String, suggestion: String) throws {
        let dir = try CLI.temporaryDirectory("variant")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir)
        expectInputError(try compare(inputs, cand, variant: name), ["unknown variant '\(name)'", "did you mean", suggestion])
    }

    @Test func missingArraysListWhatTheFileHolds() throws {
        let dir = try CLI.temporaryDirectory("missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try dump(dir)
        var arrays = try TensorFile.read(inputs.path)
        arrays["Q"] = arrays.removeValue(forKey: "q")
        try TensorFile.write(arrays, to: inputs.path)
        expectInputError(try compare(inputs, cand), [inputs.path, "missing array 'q'", "arrays present: Q, a, k, v"])
        arrays["q"] = arrays.removeValue(forKey: "Q")
        arrays["a"] = nil
        try TensorFile.write(arrays, to: inputs.path)
        expectInputError(try compare(inputs, cand), ["missing array 'a'", "arrays present: k, q, v"])
    }

    @Test func fixturesCheckOutsideTheRepositoryExplainsItself() throws {
        let dir = try CLI.temporaryDirectory("nofixtures")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["fixtures", "check"], in: dir)
        expectInputError(r, ["Fixtures", "--dir"])
        #expect(!r.stderr.contains("NSCocoaErrorDomain"), "\(r)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("Fixtures"), withIntermediateDirectories: false)
        expectInputError(try CLI.run(["fixtures", "check"], in: dir), ["manifest.json", "--dir"])
    }
}
