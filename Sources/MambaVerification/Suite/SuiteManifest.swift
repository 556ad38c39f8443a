import Foundation
import MambaVariants

/// The properties a campaign checks on a user's kernel (docs/MATH.md §3.5, §8).
public enum SuiteProperty: String, Codable, CaseIterable, Sendable, Comparable {
    /// Outputs (and final state, gradients) pass the verdict against the MPFR oracle (§8, Proofs/T9).
    case accuracy
    /// Perturbing tokens after `t` leaves `o[…, 0…t, …]` bit-identical (§3.5, Proofs/T2, Proofs/T12).
    case causality
    /// N tokens vs N₁ tokens then N₂ from the kernel's own final state: the
    /// joined outputs pass the verdict for the whole sequence (§3.5, Proofs/T12).
    case stateHandoff = "state-handoff"
    /// The same inputs twice give the same output bits.
    case determinism
    /// A second (recurrent) entry point passes the verdict on the same inputs (§3.2).
    case chunkedVsRecurrent = "chunked-vs-recurrent"
    /// A variable-length batch (`cu_seqlens`, §0): every sequence of the packed
    /// run passes the verdict for that sequence alone, and is compared with the
    /// kernel's run of it alone (Proofs/T12 §4).
    case packedVsSeparate = "packed-vs-separate"

    public static func < (a: SuiteProperty, b: SuiteProperty) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One kernel run of a campaign: an inputs file the user's runner reads and
/// the outputs file it writes.
public struct SuiteCaseEntry: Codable, Hashable, Sendable {
    public var id: String
    /// Paths relative to the campaign folder.
    public var inputs: String
    public var outputs: String
    /// `chunked` (the kernel's main entry) or `recurrent` (a second entry, optional).
    public var entry: String
    /// The config the inputs were made from (before `tokens`/`perturbAfter`).
    public var config: CaseConfig
    /// Tokens `[lo, hi)` of the config's sequence (state hand-off parts); nil: all.
    public var tokens: [Int]?
    /// Inputs of tokens after this index replaced (causality's perturbed twin).
    public var perturbAfter: Int?
    /// The case whose *candidate* final state is this case's initial state
    /// (the runner injects it; the judge reads the same file).
    public var initialStateFrom: String?

    enum CodingKeys: String, CodingKey {
        case id, inputs, outputs, entry, config, tokens
        case perturbAfter = "perturb_after"
        case initialStateFrom = "initial_state_from"
    }
}

/// A property check relating one or more cases.
public struct SuiteProbe: Codable, Hashable, Sendable {
    public var id: String
    public var property: SuiteProperty
    /// accuracy `[x]`; causality `[base, perturbed]`; state-handoff
    /// `[whole, first, rest]`; determinism `[x, again]`; chunked-vs-recurrent `[chunked, recurrent]`;
    /// packed-vs-separate `[packed, alone₀, alone₁, …]`, one per non-empty sequence in order.
    public var cases: [String]
    /// causality: the last token that must be unchanged; state-handoff: N₁.
    public var token: Int?
}

/// `manifest.json` of a campaign folder: everything the judge needs besides
/// the files it names, so the folder can be generated here, run on a GPU
/// machine and judged here.
public struct SuiteManifest: Codable, Sendable {
    public static let currentSchema = 1
    public var schema: Int
    public var tool: String
    public var variant: String
    /// Core name (`squared-decay-sum`): what the runner's kernel computes.
    public var core: String
    /// Declared arithmetic profile (`--arith`, docs/MATH.md §8).
    public var arith: String
    /// Storage format of every input.
    public var storage: InputStorage
    public var level: String
    public var seed: UInt64
    /// Inputs carry `do`; gradients returned by the runner are judged too.
    public var grads: Bool
    /// Score scale; nil: 1/√dk.
    public var scale: Double?
    /// Always `bhnd`.
    public var layout: String
    public var cases: [SuiteCaseEntry]
    public var probes: [SuiteProbe]

    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self) + Data("\n".utf8)
    }

    /// Reads and checks a manifest: every probe names known cases, every
    /// path stays inside the folder, the core and arithmetic parse.
    public static func read(directory: String) throws -> SuiteManifest {
        let path = directory + "/manifest.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SuiteError.input("\(path): no campaign manifest (make one with `mambacheck suite generate`)")
        }
        let m: SuiteManifest
        do { m = try JSONDecoder().decode(SuiteManifest.self, from: data) } catch let e as DecodingError {
            throw SuiteError.input("\(path): malformed manifest: \(describe(e))")
        }
        guard m.schema == currentSchema else {
            throw SuiteError.input("\(path): schema \(m.schema), expected \(currentSchema)")
        }
        guard CoreSpec(name: m.core) != nil else { throw SuiteError.input("\(path): field core: unknown core '\(m.core)'") }
        guard let a = DeclaredArithmetic.named(m.arith), (try? a.mode()) != nil else {
            throw SuiteError.input("\(path): field arith: unknown profile '\(m.arith)'")
        }
        guard m.layout == "bhnd" else { throw SuiteError.input("\(path): field layout: expected bhnd, found \(m.layout)") }
        let ids = Set(m.cases.map(\.id))
        guard ids.count == m.cases.count else { throw SuiteError.input("\(path): field cases: duplicate case ids") }
        for c in m.cases {
            for p in [c.inputs, c.outputs] where p.hasPrefix("/") || p.split(separator: "/").contains("..") {
                throw SuiteError.input("\(path): case \(c.id): path \(p) leaves the campaign folder")
            }
            if let from = c.initialStateFrom, !ids.contains(from) {
                throw SuiteError.input("\(path): case \(c.id): initial_state_from names unknown case \(from)")
            }
        }
        let arity: [SuiteProperty: Int] = [.accuracy: 1, .causality: 2, .stateHandoff: 3, .determinism: 2,
                                           .chunkedVsRecurrent: 2]
        for c in m.cases where c.config.isPacked && (c.tokens != nil || c.perturbAfter != nil || c.initialStateFrom != nil) {
            throw SuiteError.input("\(path): case \(c.id): a packed case (config.sequenceLengths) takes no tokens, "
                                   + "perturb_after or initial_state_from")
        }
        for c in m.cases {
            guard let lengths = c.config.sequenceLengths else { continue }
            guard c.config.batch == 1, lengths.allSatisfy({ $0 >= 0 && $0 <= 1 << 24 }), lengths.count <= 1 << 12,
                  lengths.reduce(0, +) == c.config.length else {
                throw SuiteError.input("\(path): case \(c.id): field config.sequenceLengths: expected batch 1 and "
                                       + "lengths ≥ 0 summing to length \(c.config.length), found batch "
                                       + "\(c.config.batch), \(lengths)")
            }
        }
        for p in m.probes {
            var expected = arity[p.property] ?? 1
            if p.property == .packedVsSeparate, let first = p.cases.first, ids.contains(first) {
                guard let lengths = m.entry(first).config.sequenceLengths else {
                    throw SuiteError.input("\(path): probe \(p.id): case \(first) is not packed (no config.sequenceLengths)")
                }
                expected = 1 + lengths.filter { $0 > 0 }.count
            }
            guard p.cases.count == expected, p.cases.allSatisfy(ids.contains) else {
                throw SuiteError.input("\(path): probe \(p.id): expected \(expected) known case ids for "
                                       + "\(p.property.rawValue), found \(p.cases)")
            }
            if p.property != .packedVsSeparate, p.property != .accuracy, m.entry(p.cases[0]).config.isPacked {
                throw SuiteError.input("\(path): probe \(p.id): \(p.property.rawValue) takes unpacked cases; "
                                       + "\(p.cases[0]) is packed")
            }
        }
        return m
    }

    public var coreSpec: CoreSpec { CoreSpec(name: core)! }
    public var declared: DeclaredArithmetic { DeclaredArithmetic.named(arith)! }
    public func entry(_ id: String) -> SuiteCaseEntry { cases.first { $0.id == id }! }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch e {
        case .keyNotFound(let k, let c): return "missing field \(k.stringValue) at \(path(c).isEmpty ? "top level" : path(c))"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return "\(c.debugDescription) at \(path(c).isEmpty ? "top level" : path(c))"
        @unknown default: return "\(e)"
        }
    }
}

/// A campaign input problem (exit 2), phrased for the user.
public enum SuiteError: Error, CustomStringConvertible {
    case input(String)
    public var description: String {
        switch self { case .input(let m): return m }
    }
}
