import Foundation
import MambaTensors
import MambaVariants
import MambaVerification
import Testing

/// Files a user might hand `compare` by mistake: each must exit 2 with a
/// message naming the file and the problem — never a crash, never a
/// verification verdict, never an allocation of what a header claims.
@Suite("compare: malformed inputs exit 2 with a named problem")
struct MalformedInputCLITests {
    let core = "squared-decay-sum"

    /// A valid problem (B=1, H=2, N=100, d=16) and a valid candidate in `dir`.
    func validDump(_ dir: URL) throws -> (CoreProblem, inputs: URL, candidate: URL) {
        let p = CoreProblem.random(spec: CoreSpec(name: core)!, heads: 2, length: 100, keyDim: 16, valueDim: 16, seed: 5)
        let inputs = dir.appendingPathComponent("inputs.npz"), cand = dir.appendingPathComponent("candidate.npz")
        try Dumps.writeInputs(p, layout: .bhnd, dtype: .float32, to: inputs)
        try Dumps.writeCandidate(PlantedBugKernel.run(p, bug: nil), problem: p, layout: .bhnd, dtype: .float32, to: cand)
        return (p, inputs, cand)
    }

    func compare(inputs: URL, candidate: URL, layout: String = "bhnd") throws -> CLI.Result {
        try CLI.run(["compare", "--variant", core, "--inputs", inputs.path, "--candidate", candidate.path,
                     "--layout", layout])
    }

    /// Expects exit 2 and every fragment in stderr.
    func expectInputError(_ r: CLI.Result, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 2, "\(r)", sourceLocation: sourceLocation)
        for f in fragments {
            #expect(r.stderr.contains(f), "stderr lacks '\(f)': \(r)", sourceLocation: sourceLocation)
        }
        #expect(!r.stderr.contains("Fatal error"), "\(r)", sourceLocation: sourceLocation)
        print("INPUT-ERROR exit \(r.status): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    /// The arrays of `p` as `[name: TensorData]` (Float32, bhnd).
    func arrays(_ p: CoreProblem) -> [String: TensorData] {
        var out: [String: TensorData] = [
            "q": TensorData(rounding: Tensor(shape: [1, 2, 100, 16], storage: p.q), to: .float32),
            "k": TensorData(rounding: Tensor(shape: [1, 2, 100, 16], storage: p.k), to: .float32),
            "v": TensorData(rounding: Tensor(shape: [1, 2, 100, 16], storage: p.v), to: .float32),
        ]
        if case .perStep(let a)? = p.decay {
            out["a"] = TensorData(rounding: Tensor(shape: [1, 2, 100], storage: a), to: .float32)
        }
        return out
    }

    /// A .npy v1.0 image: magic, header padded to a 64-byte boundary, data.
    static func npy(header dict: String, data: [UInt8]) -> [UInt8] {
        var header = Array(dict.utf8)
        while (10 + header.count + 1) % 64 != 0 { header.append(UInt8(ascii: " ")) }
        header.append(UInt8(ascii: "\n"))
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header + data
    }

    /// A safetensors image: 8-byte little-endian header length, JSON header, data.
    static func safetensors(header json: String, data: [UInt8]) -> [UInt8] {
        let header = Array(json.utf8)
        return (0..<8).map { UInt8(truncatingIfNeeded: header.count >> (8 * $0)) } + header + data
    }

    @Test func truncatedNpzFile() throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, inputs, cand) = try validDump(dir)
        let bytes = try Data(contentsOf: inputs)
        try bytes.prefix(bytes.count * 6 / 10).write(to: inputs)
        expectInputError(try compare(inputs: inputs, candidate: cand), [inputs.path, "truncated"])
    }

    @Test func truncatedSafetensorsFile() throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, _, cand) = try validDump(dir)
        let path = dir.appendingPathComponent("inputs.safetensors")
        try TensorFile.write(arrays(p), to: path.path)
        let bytes = try Data(contentsOf: path)
        try bytes.prefix(bytes.count - 1000).write(to: path)
        expectInputError(try compare(inputs: path, candidate: cand), [path.path, "'v'", "truncated"])
    }

    /// The header promises a [1,2,100,16] Float32 q (12,800 bytes); the file holds 6,400.
    @Test func lyingHeader() throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, _, cand) = try validDump(dir)
        let path = dir.appendingPathComponent("lying.safetensors")
        let json = #"{"q":{"dtype":"F32","shape":[1,2,100,16],"data_offsets":[0,12800]}}"#
        try Data(Self.safetensors(header: json, data: [UInt8](repeating: 0, count: 6400))).write(to: path)
        expectInputError(try compare(inputs: path, candidate: cand), [path.path, "'q'", "12800 bytes"])
    }

    /// 10¹²·10¹²·16 elements: must be refused from the header, not allocated.
    @Test func absurdShapeIsNotAllocated() throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (_, _, cand) = try validDump(dir)
        let npy = dir.appendingPathComponent("q.npy")
        try Data(Self.npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000000000, 16), }",
                          data: [UInt8](repeating: 0, count: 64))).write(to: npy)
        let r = try compare(inputs: npy, candidate: cand)
        expectInputError(r, [npy.path, "absurd shape"])
        #expect(r.seconds < 20, "\(r)")
        let st = dir.appendingPathComponent("absurd.safetensors")
        let json = #"{"q":{"dtype":"F32","shape":[4000000000,4000000000,4000000000,16],"data_offsets":[0,64]}}"#
        try Data(Self.safetensors(header: json, data: [UInt8](repeating: 0, count: 64))).write(to: st)
        expectInputError(try compare(inputs: st, candidate: cand), [st.path, "'q'"])
    }

    @Test func integerQueries() throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, inputs, cand) = try validDump(dir)
        var a = arrays(p)
        a["q"] = TensorData(Tensor<Int64>(shape: [1, 2, 100, 16], storage: p.q.map { Int64($0 * 100) }))
        try TensorFile.write(a, to: inputs.path)
        expectInputError(try compare(inputs: inputs, candidate: cand), [inputs.path, "'q'", "int64", "floating-point"])
    }

    @Test func missingQueries() throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, inputs, cand) = try validDump(dir)
        var a = arrays(p)
        a["q"] = nil
        try TensorFile.write(a, to: inputs.path)
        expectInputError(try compare(inputs: inputs, candidate: cand), [inputs.path, "missing array 'q'"])
    }

    @Test func candidateWithoutOutput() throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, inputs, cand) = try validDump(dir)
        try TensorFile.write(["out": TensorData(rounding: Tensor(shape: [1, 2, 100, 16], storage: p.v), to: .float32)],
                             to: cand.path)
        expectInputError(try compare(inputs: inputs, candidate: cand), [cand.path, "missing array 'o'"])
    }

    /// The message gives the position of the NaN in the file's own index order.
    @Test(arguments: ["bhnd", "bnhd"])
    func nanInInputs(layout: String) throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, inputs, _) = try validDump(dir)
        var k = p.k
        k[((0 * 2 + 1) * 100 + 57) * 16 + 3] = .nan      // canonical [0, 1, 57, 3]
        var bad = p
        bad.k = k
        let lay = TensorLayout(rawValue: layout)!
        try Dumps.writeInputs(bad, layout: lay, dtype: .float32, to: inputs)
        let cand = dir.appendingPathComponent("cand-\(layout).npz")
        try Dumps.writeCandidate(PlantedBugKernel.run(p, bug: nil), problem: p, layout: lay, dtype: .float32, to: cand)
        let index = lay == .bhnd ? "[0, 1, 57, 3]" : "[0, 57, 1, 3]"
        expectInputError(try compare(inputs: inputs, candidate: cand, layout: layout),
                         [inputs.path, "'k'", "nan", "index \(index)"])
    }

    @Test func misShapedValues() throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, inputs, cand) = try validDump(dir)
        var a = arrays(p)
        a["v"] = TensorData(rounding: Tensor(shape: [1, 2, 99, 16], storage: Array(p.v.prefix(2 * 99 * 16))), to: .float32)
        try TensorFile.write(a, to: inputs.path)
        expectInputError(try compare(inputs: inputs, candidate: cand), [inputs.path, "'v'", "[1, 2, 99, 16]", "N=100"])
    }

    /// A NaN in the *candidate* is the kernel's fault: a verification failure (exit 1), not an input error.
    @Test func nanInCandidateIsAVerificationFailure() throws {
        let dir = try CLI.temporaryDirectory("malformed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, inputs, cand) = try validDump(dir)
        var o = PlantedBugKernel.run(p, bug: nil)
        o[1234] = .nan
        try Dumps.writeCandidate(o, problem: p, layout: .bhnd, dtype: .float32, to: cand)
        let r = try compare(inputs: inputs, candidate: cand)
        #expect(r.status == 1, "\(r)")
        #expect(r.stdout.contains("NaN") || r.stderr.contains("NaN") || r.stderr.contains("non-finite"), "\(r)")
    }
}
