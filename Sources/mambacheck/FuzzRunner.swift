import Foundation
import MambaKernels
import MambaTensors
import MambaVariants
import MambaVerification

/// Runs the user's command on generated cases and checks one property
/// (the engine of `mambacheck fuzz`). Every run gets a fresh folder under
/// `work`, so a failing check's files can be kept as the reproducer.
struct FuzzRunner {
    var core: CoreSpec
    var variant: String
    var arith: DeclaredArithmetic
    var storage: InputStorage
    var exec: String
    var work: String
    var policy: VerdictPolicy
    var precision: Int = 128
    var counter = 0

    /// One check: its status, why, and the files (name in the reproducer → path) behind it.
    struct Outcome {
        var status: ProbeStatus
        var summary: String
        var files: [(String, String)]
    }

    /// The command with `{inputs}` and `{outputs}` replaced by single-quoted
    /// paths and `{entry}` (optional) by the entry point, `chunked` or `recurrent`.
    static func command(_ exec: String, inputs: String, outputs: String, entry: String = "chunked") -> String {
        exec.replacingOccurrences(of: "{inputs}", with: shellQuote(inputs))
            .replacingOccurrences(of: "{outputs}", with: shellQuote(outputs))
            .replacingOccurrences(of: "{entry}", with: entry)
    }

    /// Whether the command names the entry point, so a second (recurrent) entry can be run.
    var hasEntries: Bool { exec.contains("{entry}") }

    /// A new run folder.
    mutating func folder(_ label: String) throws -> String {
        counter += 1
        let d = work + "/run\(counter)-\(label)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Writes `p`'s inputs (plus `extra`), runs the command, reads the outputs.
    mutating func run(_ p: CoreProblem, label: String, extra: [String: TensorData] = [:]) throws
        -> (inputs: String, outputs: String, arrays: [String: TensorData]) {
        let r = try run(p, label: label, extra: extra, entry: "chunked", optional: false)
        return (r.inputs, r.outputs, r.arrays!)
    }

    /// `run` for any entry; with `optional`, a command that exits 0 without
    /// writing outputs (an entry the runner does not provide) gives nil arrays.
    mutating func run(_ p: CoreProblem, label: String, extra: [String: TensorData] = [:], entry: String,
                      optional: Bool) throws -> (inputs: String, outputs: String, arrays: [String: TensorData]?) {
        let d = try folder(label)
        let ext = storage.campaignFileExtension
        let inputs = d + "/inputs.\(ext)", outputs = d + "/outputs.\(ext)"
        try SuitePlan.writeInputs(p, upstream: nil, storage: storage, to: inputs, extra: extra)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", FuzzRunner.command(exec, inputs: inputs, outputs: outputs, entry: entry)]
        let errPath = d + "/stderr.txt"
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardError = errHandle
        process.standardOutput = errHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try errHandle.close()
        let log = String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw InputProblem(description: "--exec exited with status \(process.terminationStatus) on \(inputs):\n"
                               + String(log.suffix(2000)))
        }
        guard FileManager.default.fileExists(atPath: outputs) else {
            if optional { return (inputs, outputs, nil) }
            throw InputProblem(description: "--exec wrote no outputs file \(outputs) (its command line must write {outputs})")
        }
        return (inputs, outputs, try TensorFile.read(outputs))
    }

    /// The causality probe's last unchanged token for length `n`: inside a
    /// 16-token tile (t+1 not a multiple of 16), so leaks within a tile show.
    static func causalToken(_ n: Int) -> Int {
        var t = Swift.max(0, (2 * n) / 3 - 1)
        if (t + 1) % 16 == 0 && t > 0 { t -= 1 }
        return t
    }

    /// One entry's outputs on `p` judged by the verdict (accuracy; the second
    /// entry for chunked-vs-recurrent). nil when a non-main entry wrote no outputs.
    mutating func verdictOutcome(_ p: CoreProblem, entry: String, explain: Bool) throws -> Outcome? {
        let main = entry == "chunked"
        let r = try run(p, label: main ? "accuracy" : entry, entry: entry, optional: !main)
        guard let arrays = r.arrays else { return nil }
        let cases = try ProbeChecks.verdicts(problem: p, inputs: try TensorFile.read(r.inputs), inputsFile: r.inputs,
                                             outputs: arrays, outputsFile: r.outputs, arith: arith, policy: policy,
                                             precision: precision, explain: explain, name: "\(variant)/fuzz")
        return Outcome(status: cases.allSatisfy(\.passed) ? .pass : .fail, summary: ProbeChecks.summary(cases),
                       files: [("inputs.npz", r.inputs), (main ? "candidate.npz" : "candidate-\(entry).npz", r.outputs)])
    }

    mutating func check(_ property: SuiteProperty, _ c: CaseConfig, explain: Bool = false) throws -> Outcome {
        let p = c.problem(spec: core, storage: storage)
        let name = "\(variant)/fuzz"
        switch property {
        case .accuracy:
            return try verdictOutcome(p, entry: "chunked", explain: explain)!
        case .causality:
            guard c.length >= 2 else { return Outcome(status: .notApplicable, summary: "N = 1", files: []) }
            let t = FuzzRunner.causalToken(c.length)
            var other = c
            other.seed = c.seed ^ 0xA5A5_5A5A_C3C3_3C3C
            let q = p.perturbed(after: t, from: other.problem(spec: core, storage: storage))
            let a = try run(p, label: "causality"), b = try run(q, label: "causality-perturbed")
            let shape = [p.batch, p.heads, p.length, p.valueDim]
            let oa = try KernelDump.candidate(a.arrays, name: "o", file: a.outputs, layout: .bhnd, expectedCanonicalShape: shape)
            let ob = try KernelDump.candidate(b.arrays, name: "o", file: b.outputs, layout: .bhnd, expectedCanonicalShape: shape)
            let files = [("inputs.npz", a.inputs), ("candidate.npz", a.outputs),
                         ("inputs-perturbed.npz", b.inputs), ("candidate-perturbed.npz", b.outputs)]
            if let d = ProbeChecks.causality(oa, ob, heads: p.heads, sequences: p.sequences, length: p.length,
                                             width: p.valueDim, through: t) {
                return Outcome(status: .fail, summary: d, files: files)
            }
            return Outcome(status: .pass, summary: "o[…, 0…\(t), …] bit-identical", files: files)
        case .determinism:
            let a = try run(p, label: "determinism"), b = try run(p, label: "determinism-again")
            let files = [("inputs.npz", a.inputs), ("candidate.npz", a.outputs), ("candidate-again.npz", b.outputs)]
            if let d = try ProbeChecks.identical(a.arrays, b.arrays) { return Outcome(status: .fail, summary: d, files: files) }
            return Outcome(status: .pass, summary: "bit-identical", files: files)
        case .stateHandoff:
            guard core.hasFeatureMapState else {
                return Outcome(status: .notApplicable, summary: "the \(core.name) core keeps no finite state", files: [])
            }
            guard c.length >= 2 else { return Outcome(status: .notApplicable, summary: "N = 1", files: []) }
            let split = Swift.max(1, (3 * c.length) / 8)
            let first = try run(p.tokens(0..<split), label: "handoff-first")
            guard let s = first.arrays["final_state"] else {
                return Outcome(status: .notApplicable, summary: "the kernel returned no final_state", files: [])
            }
            var extra = ["initial_state": s]
            if let z = first.arrays["final_state_z"] { extra["initial_state_z"] = z }
            let rest = try run(p.tokens(split..<c.length), label: "handoff-rest", extra: extra)
            let whole = try run(p, label: "handoff-whole")
            let cases = try ProbeChecks.handoff(whole: p, first: first.arrays, firstFile: first.outputs, rest: rest.arrays,
                                                restFile: rest.outputs, split: split, arith: arith, policy: policy,
                                                precision: precision, explain: explain, name: name)
            return Outcome(status: cases.allSatisfy(\.passed) ? .pass : .fail,
                           summary: "tokens 0…\(split - 1) then the rest from the kernel's final state: "
                               + ProbeChecks.summary(cases),
                           files: [("inputs.npz", whole.inputs), ("inputs-first.npz", first.inputs),
                                   ("candidate-first.npz", first.outputs), ("inputs-rest.npz", rest.inputs),
                                   ("candidate-rest.npz", rest.outputs)])
        case .chunkedVsRecurrent:
            guard hasEntries else {
                return Outcome(status: .notApplicable, summary: "--exec has no {entry}: one entry point", files: [])
            }
            guard var o = try verdictOutcome(p, entry: "recurrent", explain: explain) else {
                return Outcome(status: .notApplicable, summary: "the runner provides no recurrent entry (no outputs written)",
                               files: [])
            }
            o.summary = "recurrent entry: " + o.summary
            return o
        case .packedVsSeparate:
            return Outcome(status: .notApplicable, summary: "fuzz draws unpacked cases (use suite for cu_seqlens)", files: [])
        }
    }
}

/// `s` in single quotes for /bin/sh.
func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
