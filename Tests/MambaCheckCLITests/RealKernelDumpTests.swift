import Foundation
import Testing

/// Dumps of real third-party GPU kernels (Fixtures/real, written by
/// scripts/gpu/dump_real_kernels.py on an H100: FLA 0.6.0, the official Mamba-2
/// SSD of mamba_ssm 2.3.2, and a Triton 2Mamba kernel with planted one-line
/// bugs), judged by `mambacheck compare` in the arithmetic each kernel's source
/// declares. A correct kernel must pass (exit 0) and a planted bug must fail
/// (exit 1): the verdict's calibration against kernels it did not produce
/// (Proofs/T9, "real kernels").
struct RealKernelDumpTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String, inputs: String, candidate: String, core: String, layout: String, arith: String
        var scale: String?
        var correct: Bool
        var description: String { name }
    }

    static let directory = CLI.packageRoot.appendingPathComponent("Fixtures/real")

    /// The cases of Fixtures/real/cases.json (an empty list fails `manifestIsComplete`).
    static let cases: [Case] = {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("cases.json")),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = root["cases"] as? [[String: Any]] else { return [] }
        return list.compactMap { c in
            guard let name = c["name"] as? String, let inputs = c["inputs"] as? String,
                  let candidate = c["candidate"] as? String, let core = c["core"] as? String,
                  let layout = c["layout"] as? String, let arith = c["arith"] as? String,
                  let correct = c["correct"] as? Bool else { return nil }
            return Case(name: name, inputs: inputs, candidate: candidate, core: core, layout: layout, arith: arith,
                        scale: c["scale"] as? String, correct: correct)
        }
    }()

    @Test func manifestIsComplete() throws {
        #expect(Self.cases.count >= 10, "Fixtures/real/cases.json lists \(Self.cases.count) cases")
        #expect(Self.cases.contains { $0.correct } && Self.cases.contains { !$0.correct })
        for c in Self.cases {
            for file in [c.inputs, c.candidate] {
                #expect(FileManager.default.fileExists(atPath: Self.directory.appendingPathComponent(file).path),
                        "\(c.name): \(file) is missing")
            }
        }
    }

    @Test(arguments: cases)
    func judgedAsExpected(_ c: Case) throws {
        var args = ["compare", "--variant", c.core, "--inputs", Self.directory.appendingPathComponent(c.inputs).path,
                    "--candidate", Self.directory.appendingPathComponent(c.candidate).path, "--layout", c.layout,
                    "--arith", c.arith]
        if let s = c.scale { args += ["--scale", s] }
        let r = try CLI.run(args)
        #expect(r.status == (c.correct ? 0 : 1),
                "\(c.correct ? "correct kernel" : "planted bug") \(c.name): mambacheck \(args.joined(separator: " "))\n\(r)")
    }
}
