import Dispatch
import Foundation
import MambaKernels
import MambaTensors
import MambaVariants

/// The result of one probe of a campaign.
public struct ProbeResult: Codable, Sendable, Equatable {
    public var probe: String
    public var property: SuiteProperty
    public var cases: [String]
    public var status: ProbeStatus
    /// Why: the verdict's reasons, the first differing bit, or why the property does not apply.
    public var summary: String
    /// The base case's config (`CaseConfig.spec`) and size, for "smallest failing case first".
    public var config: String
    public var size: Int
    /// A command that reproduces this result.
    public var reproduce: String

    public init(probe: String, property: SuiteProperty, cases: [String], status: ProbeStatus, summary: String,
                config: String, size: Int, reproduce: String) {
        self.probe = probe
        self.property = property
        self.cases = cases
        self.status = status
        self.summary = summary
        self.config = config
        self.size = size
        self.reproduce = reproduce
    }
}

/// Judges a campaign folder: every probe of the manifest, in parallel.
public enum SuiteJudge {
    public struct Options: Sendable {
        public var policy: VerdictPolicy
        public var precision: Int
        public var jobs: Int
        /// Probe ids to judge (empty: all).
        public var only: Set<String>
        public init(policy: VerdictPolicy = .standard, precision: Int = 128, jobs: Int = 1, only: Set<String> = []) {
            self.policy = policy
            self.precision = precision
            self.jobs = jobs
            self.only = only
        }
    }

    /// Every probe's result in manifest order (results of properties the
    /// campaign cannot check are added as not-applicable rows by `SuiteReport`).
    ///
    /// - Throws: `SuiteError.input` for a missing or malformed outputs file of
    ///   the main entry (the message names the file and the case); the files'
    ///   own errors (`DumpError`, `TensorFileError`) pass through.
    public static func judge(_ m: SuiteManifest, directory: String, options: Options,
                             progress: (@Sendable (Int, Int, String) -> Void)? = nil) throws -> [ProbeResult] {
        let probes = options.only.isEmpty ? m.probes : m.probes.filter { options.only.contains($0.id) }
        let unknown = options.only.subtracting(m.probes.map(\.id))
        if !unknown.isEmpty {
            throw SuiteError.input("--probe: no probe named \(unknown.sorted().joined(separator: ", ")) in \(directory)/manifest.json")
        }
        // Missing outputs of the main entry are an input error before any oracle time is spent.
        for c in m.cases where c.entry == "chunked" && c.initialStateFrom == nil {
            guard probes.contains(where: { $0.cases.contains(c.id) }) else { continue }
            if !FileManager.default.fileExists(atPath: directory + "/" + c.outputs) {
                throw SuiteError.input("\(directory)/\(c.outputs): missing: the runner wrote no outputs for case \(c.id) "
                                       + "(run `python3 mambacheck_runner.py --campaign \(directory)` first)")
            }
        }
        let box = ResultBox(count: probes.count)
        let oracles = OracleCache()
        let jobs = Swift.max(1, Swift.min(options.jobs, probes.count))
        let order = schedule(probes, manifest: m)
        DispatchQueue.concurrentPerform(iterations: jobs) { _ in
            while let k = box.next(below: order.count) {
                let i = order[k]
                if box.failed { return }
                do {
                    let r = try judge(probes[i], manifest: m, directory: directory, options: options, oracles: oracles)
                    let done = box.set(i, r)
                    progress?(done, probes.count, probes[i].id)
                } catch {
                    box.fail(error)
                }
            }
        }
        if let e = box.error { throw e }
        return box.results.map { $0! }
    }

    /// The order in which workers take probes: longest first, each worker
    /// taking the next probe when it finishes one (a static split of the
    /// manifest order left one core idle behind the N = 1000, dk = 128 case).
    /// A probe's cost is the oracle work it is the first to need,
    /// `B·H·N·(N·(dk + dv) + F·dv)` MPFR operations per case it judges (the
    /// quadratic outputs and the final state); a probe whose oracle another
    /// probe computes (the hand-off and second entry of a probe's base, a packed
    /// batch's sequences) costs nothing and runs late, when the oracle is
    /// cached. Ties keep the manifest order, so the order is a function of the manifest.
    static func schedule(_ probes: [SuiteProbe], manifest m: SuiteManifest) -> [Int] {
        let core = m.coreSpec
        func work(_ c: CaseConfig) -> Double {
            let n = Double(c.length), f = Double(core.featureDimension(keyDim: c.keyDim) ?? 0)
            return Double(c.batch * c.heads) * n * (n * Double(c.keyDim + c.valueDim) + f * Double(c.valueDim))
        }
        func oracleCases(_ p: SuiteProbe) -> [CaseConfig] {
            switch p.property {
            case .accuracy, .stateHandoff, .chunkedVsRecurrent: return [m.entry(p.cases[0]).config]
            case .packedVsSeparate: return p.cases.dropFirst().map { m.entry($0).config }
            case .causality, .determinism: return []
            }
        }
        let total = probes.map { oracleCases($0).map(work).reduce(0, +) }
        var claimed = Set<String>(), cost = [Double](repeating: 0, count: probes.count)
        for i in probes.indices.sorted(by: { (total[$0], $1) > (total[$1], $0) }) {
            for c in oracleCases(probes[i]) where claimed.insert(c.spec).inserted { cost[i] += work(c) }
        }
        return probes.indices.sorted { (cost[$0], $1) > (cost[$1], $0) }
    }

    static func judge(_ probe: SuiteProbe, manifest m: SuiteManifest, directory: String,
                      options o: Options, oracles: OracleCache) throws -> ProbeResult {
        let base = m.entry(probe.cases[0])
        var r = ProbeResult(probe: probe.id, property: probe.property, cases: probe.cases, status: .pass, summary: "",
                            config: base.config.spec, size: base.config.size,
                            reproduce: "mambacheck suite judge \(directory) --probe \(probe.id)")
        let core = m.coreSpec, arith = m.declared
        func path(_ c: SuiteCaseEntry, _ file: String) -> String { directory + "/" + file }
        func outputs(_ c: SuiteCaseEntry) throws -> [String: TensorData]? {
            let p = path(c, c.outputs)
            guard FileManager.default.fileExists(atPath: p) else { return nil }
            return try TensorFile.read(p)
        }
        func problem(_ c: SuiteCaseEntry) throws -> ([String: TensorData], CoreProblem) {
            let file = path(c, c.inputs)
            let arrays = try TensorFile.read(file)
            var p = try KernelDump.coreProblem(arrays, file: file, spec: core, layout: .bhnd, scale: m.scale)
            if let from = c.initialStateFrom {
                let src = m.entry(from)
                guard let out = try outputs(src),
                      let q = try ProbeChecks.withHandedState(p, from: out, file: path(src, src.outputs)) else {
                    throw SuiteError.input("case \(c.id): no final_state in \(path(src, src.outputs)) to start from")
                }
                p = q
            }
            if let e = p.validationError() { throw SuiteError.input("\(file): \(e)") }
            return (arrays, p)
        }
        func verdicts(_ c: SuiteCaseEntry, _ out: [String: TensorData]) throws -> [ReportCase] {
            let (inputs, p) = try problem(c)
            return try ProbeChecks.verdicts(problem: p, inputs: inputs, inputsFile: path(c, c.inputs), outputs: out,
                                            outputsFile: path(c, c.outputs), arith: arith, policy: o.policy,
                                            precision: o.precision, explain: true, name: "\(m.variant)/\(c.id)",
                                            oracles: oracles)
        }
        func packed(_ c: SuiteCaseEntry) throws -> [ProbeChecks.SequenceVerdict] {
            let file = path(c, c.inputs)
            return try ProbeChecks.packedVerdicts(inputs: try TensorFile.read(file), inputsFile: file,
                                                  outputs: try required(c), outputsFile: path(c, c.outputs), spec: core,
                                                  scale: m.scale, arith: arith, policy: o.policy, precision: o.precision,
                                                  explain: true, name: "\(m.variant)/\(c.id)", oracles: oracles)
        }
        func required(_ c: SuiteCaseEntry) throws -> [String: TensorData] {
            guard let out = try outputs(c) else {
                throw SuiteError.input("\(path(c, c.outputs)): missing: the runner wrote no outputs for case \(c.id)")
            }
            return out
        }
        switch probe.property {
        case .accuracy where base.config.isPacked:
            let seqs = try packed(base)
            r.status = seqs.allSatisfy(\.passed) ? .pass : .fail
            r.summary = seqs.map { "sequence \($0.index): " + ($0.emptyFailure ?? (
                $0.tokens.isEmpty ? "empty, state passed through" : ProbeChecks.summary($0.cases))) }.joined(separator: "; ")
        case .accuracy:
            let cases = try verdicts(base, try required(base))
            r.status = cases.allSatisfy(\.passed) ? .pass : .fail
            r.summary = ProbeChecks.summary(cases)
            if base.initialStateFrom == nil {
                r.reproduce = "mambacheck compare --variant \(m.core) --arith \(m.arith) --inputs \(path(base, base.inputs))"
                    + " --candidate \(path(base, base.outputs))"
            }
        case .causality:
            let other = m.entry(probe.cases[1])
            let (_, p) = try problem(base)
            let shape = [p.batch, p.heads, p.length, p.valueDim]
            let a = try KernelDump.candidate(try required(base), name: "o", file: path(base, base.outputs), layout: .bhnd,
                                             expectedCanonicalShape: shape)
            let b = try KernelDump.candidate(try required(other), name: "o", file: path(other, other.outputs),
                                             layout: .bhnd, expectedCanonicalShape: shape)
            let t = probe.token ?? 0
            if let d = ProbeChecks.causality(a, b, heads: p.heads, sequences: p.sequences, length: p.length,
                                             width: p.valueDim, through: t) {
                r.status = .fail
                r.summary = d
            } else {
                r.summary = "o[…, 0…\(t), …] bit-identical after perturbing tokens \(t + 1)…\(p.length - 1)"
            }
        case .determinism:
            let other = m.entry(probe.cases[1])
            if let d = try ProbeChecks.identical(try required(base), try required(other)) {
                r.status = .fail
                r.summary = d
            } else {
                r.summary = "every output array bit-identical on the same inputs"
            }
        case .stateHandoff:
            let first = m.entry(probe.cases[1]), rest = m.entry(probe.cases[2])
            let firstOut = try required(first)
            guard firstOut["final_state"] != nil else {
                r.status = .notApplicable
                r.summary = "the kernel returned no final_state (\(path(first, first.outputs)))"
                return r
            }
            guard let restOut = try outputs(rest) else {
                throw SuiteError.input("\(path(rest, rest.outputs)): missing: the runner wrote no outputs for case \(rest.id)")
            }
            let (_, whole) = try problem(base)
            let cases = try ProbeChecks.handoff(whole: whole, first: firstOut, firstFile: path(first, first.outputs),
                                                rest: restOut, restFile: path(rest, rest.outputs),
                                                split: probe.token ?? 0, arith: arith, policy: o.policy,
                                                precision: o.precision, explain: true,
                                                name: "\(m.variant)/\(probe.id)", oracles: oracles)
            r.status = cases.allSatisfy(\.passed) ? .pass : .fail
            r.summary = "tokens 0…\((probe.token ?? 0) - 1) then the rest from the kernel's final state: "
                + ProbeChecks.summary(cases)
        case .chunkedVsRecurrent:
            let other = m.entry(probe.cases[1])
            guard let out = try outputs(other) else {
                r.status = .notApplicable
                r.summary = "the runner provides no recurrent entry (no \(path(other, other.outputs)))"
                return r
            }
            let cases = try verdicts(other, out)
            r.status = cases.allSatisfy(\.passed) ? .pass : .fail
            r.summary = "recurrent entry: " + ProbeChecks.summary(cases)
        case .packedVsSeparate:
            // Each sequence of the packed run is judged against the oracle of that
            // sequence alone (shared with the run alone's accuracy probe); the
            // run alone says whether a failure is the packing's (Proofs/T12 §4).
            var alone = probe.cases.dropFirst().makeIterator()
            var failures: [String] = [], identical = 0, nonEmpty = 0
            for sv in try packed(base) {
                let label = "sequence \(sv.index) (tokens \(sv.tokens.lowerBound)..<\(sv.tokens.upperBound))"
                if sv.tokens.isEmpty {
                    if let f = sv.emptyFailure { failures.append("\(label): \(f)") }
                    continue
                }
                nonEmpty += 1
                guard let id = alone.next() else { break }
                let c = m.entry(id)
                let out = try required(c)
                if try ProbeChecks.identical(sv.outputs, out) == nil { identical += 1 }
                if !sv.passed {
                    let own = try verdicts(c, out).allSatisfy(\.passed)
                    failures.append("\(label) packed: \(ProbeChecks.summary(sv.cases)); run alone (\(id)): "
                                    + (own ? "passes — the packing changes the answer (a state or a chunk crossing a "
                                           + "sequence boundary?)" : "fails too"))
                }
            }
            let count = (base.config.sequenceLengths ?? []).count
            if failures.isEmpty {
                r.summary = "\(count) sequences (\(count - nonEmpty) empty): each within the verdict when packed, "
                    + "empty ones hand their state through; \(identical) of \(nonEmpty) bit-identical to the runs one by one"
            } else {
                r.status = .fail
                r.summary = failures.joined(separator: "; ")
            }
        }
        return r
    }
}

/// Results filled in by concurrent workers.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var results: [ProbeResult?]
    private(set) var error: Error?
    private var done = 0
    private var taken = 0
    init(count: Int) { results = Array(repeating: nil, count: count) }
    /// The next position in a work order of `count` items (each handed out once), nil when all are taken.
    func next(below count: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard taken < count else { return nil }
        taken += 1
        return taken - 1
    }
    var failed: Bool { lock.lock(); defer { lock.unlock() }; return error != nil }
    func set(_ i: Int, _ r: ProbeResult) -> Int {
        lock.lock(); defer { lock.unlock() }
        results[i] = r
        done += 1
        return done
    }
    func fail(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}
