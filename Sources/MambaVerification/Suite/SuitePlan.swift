import Foundation
import MambaTensors
import MambaVariants

/// Campaign size. Lengths are mostly not multiples of 16/32/64 (chunk and
/// tile edges are where kernels break), widths run from 16 to 128.
public enum SuiteLevel: String, CaseIterable, Codable, Sendable {
    case quick, standard, deep

    public var lengths: [Int] {
        switch self {
        case .quick: return [1, 7, 37, 100]
        case .standard: return [1, 2, 15, 17, 33, 63, 65, 100, 127, 129, 255, 257, 500, 1000]
        case .deep: return SuiteLevel.standard.lengths + [1025, 2047, 4097]
        }
    }
    /// `(dk, dv)` pairs, used in turn along the length ladder.
    public var widths: [(Int, Int)] {
        switch self {
        case .quick: return [(16, 16), (24, 40)]
        case .standard, .deep: return [(16, 16), (32, 48), (64, 64), (24, 80), (48, 32), (128, 128)]
        }
    }
    /// Lengths of the property probes (causality, hand-off, determinism, forms).
    public var probeLengths: [Int] {
        switch self {
        case .quick: return [37, 100]
        case .standard: return [37, 100, 129, 257]
        case .deep: return [37, 100, 129, 257, 1000]
        }
    }
    /// Variable-length batches (`cu_seqlens`): the lengths of each packed
    /// case's sequences. Each holds an empty sequence (a kernel must hand its
    /// initial state through untouched), a length-1 or short one next to a
    /// long one, and lengths off the 16/32/64 grid, so that a state leaking
    /// across a boundary or a chunk straddling two sequences shows.
    public var packedLengths: [[Int]] {
        switch self {
        case .quick: return [[5, 0, 37, 16]]
        case .standard: return [[5, 0, 37, 16], [100, 1, 65, 129]]
        case .deep: return SuiteLevel.standard.packedLengths + [[1000, 17, 0, 257]]
        }
    }
}

/// Builds a campaign: the shape ladder, the distributions and hazards, the
/// property probes; then writes the inputs.
public enum SuitePlan {
    /// The input storage a declared arithmetic reads (fp16/bf16 operands: that format, else Float32).
    public static func storage(for a: DeclaredArithmetic) -> InputStorage {
        switch a.operands {
        case .binary16: return .float16
        case .bfloat16: return .bfloat16
        default: return .float32
        }
    }

    /// The hazard generators (docs/MATH.md §6) whose oracle is defined for
    /// this core and storage: lagging maximum (squared, exponential), tiny
    /// normalisers (sum + decay, squared/exponential), strong decays (any
    /// decay), binary16 score overflow (squared + sum, binary16 inputs),
    /// zero ReLU rows (relu-linear without normalisation: with `sum` they are
    /// 0/0, an undefined oracle).
    public static func hazards(_ core: CoreSpec, storage: InputStorage) -> [InputDistribution] {
        var h: [InputDistribution] = []
        // Scores that grow faster than linearly in q·k (large weights, lagging maxima).
        let big: Bool
        switch core.score {
        case .squared, .exponential: big = true
        case .linear, .reluLinear: big = false
        }
        if big { h.append(.laggingMaximum) }
        if big && core.hasDecay && core.normalization == .sum { h.append(.nearZeroNormaliser) }
        if core.hasDecay { h.append(.strongDecay) }
        if (core.score.traits.power ?? 1) >= 2 && core.normalization == .sum && storage == .float16 { h.append(.float16Overflow) }
        if core.score.traits.reluOnInputs && core.normalization == .none { h.append(.zeroReluRows) }
        return h
    }

    public static func make(variant: String, core: CoreSpec, arith: DeclaredArithmetic, level: SuiteLevel,
                            seed: UInt64, grads: Bool, scale: Double? = nil, tool: String) -> SuiteManifest {
        var g = SeededGenerator(seed: seed)
        let storage = storage(for: arith)
        let stateful = core.hasFeatureMapState
        let distributions: [InputDistribution] = [.paper, .fla] + hazards(core, storage: storage)
        var cases: [SuiteCaseEntry] = []
        var probes: [SuiteProbe] = []
        func add(_ c: CaseConfig, entry: String = "chunked", tokens: [Int]? = nil, perturbAfter: Int? = nil,
                 from: String? = nil) -> String {
            let id = String(format: "c%03d", cases.count)
            let ext = storage.campaignFileExtension
            cases.append(SuiteCaseEntry(id: id, inputs: "inputs/\(id).\(ext)", outputs: "outputs/\(id).\(ext)", entry: entry,
                                        config: c, tokens: tokens, perturbAfter: perturbAfter, initialStateFrom: from))
            return id
        }
        func probe(_ p: SuiteProperty, _ ids: [String], token: Int? = nil) {
            probes.append(SuiteProbe(id: "\(p.rawValue)-\(ids[0])", property: p, cases: ids, token: token))
        }
        // The ladder: every length, widths and distributions in turn, small
        // batches and head counts on short sequences, initial states on every other case.
        var i = 0
        for n in level.lengths {
            for dist in (n == level.lengths.last ? distributions : [distributions[i % distributions.count]]) {
                let (dk, dv) = level.widths[i % level.widths.count]
                let small = n <= 128
                let c = CaseConfig(batch: small ? 1 + (i / 2) % 2 : 1, heads: small ? 1 + i % 2 : 1, length: n,
                                   keyDim: dk, valueDim: dv, distribution: dist, initialState: stateful && i % 2 == 1,
                                   seed: g.next())
                probe(.accuracy, [add(c)])
                i += 1
            }
        }
        // Probes, each on a fresh case of its own so that every probe's base also counts for accuracy.
        for (j, n) in level.probeLengths.enumerated() {
            let (dk, dv) = level.widths[j % level.widths.count]
            let base = CaseConfig(batch: 1, heads: 2, length: n, keyDim: dk, valueDim: dv,
                                  distribution: distributions[j % 2], initialState: stateful && j % 2 == 0,
                                  seed: g.next())
            let x = add(base)
            probe(.accuracy, [x])
            // Causality: t inside a chunk (t+1 not a multiple of 16), so a leak within a tile shows.
            let t = Swift.max(0, (2 * n) / 3 - 1)
            probe(.causality, [x, add(base, perturbAfter: t)], token: t)
            probe(.determinism, [x, add(base)])
            if stateful {
                let split = Swift.max(1, (3 * n) / 8)
                let first = add(base, tokens: [0, split])
                let rest = add(base, tokens: [split, n], from: first)
                probe(.stateHandoff, [x, first, rest], token: split)
            }
            probe(.chunkedVsRecurrent, [x, add(base, entry: "recurrent")])
        }
        // Packed batches: the packed case, then each non-empty sequence run alone (an accuracy case of its own).
        for (j, lengths) in level.packedLengths.enumerated() {
            let (dk, dv) = level.widths[(j + 1) % level.widths.count]
            let packed = CaseConfig(batch: 1, heads: 2, length: lengths.reduce(0, +), keyDim: dk, valueDim: dv,
                                    distribution: distributions[j % distributions.count],
                                    initialState: stateful && j % 2 == 0, seed: g.next(), sequenceLengths: lengths)
            var ids = [add(packed)]
            for (i, n) in lengths.enumerated() where n > 0 {
                let alone = add(packed.sequence(i))
                probe(.accuracy, [alone])
                ids.append(alone)
            }
            probe(.packedVsSeparate, ids)
        }
        return SuiteManifest(schema: SuiteManifest.currentSchema, tool: tool, variant: variant, core: core.name,
                             arith: arith.name, storage: storage, level: level.rawValue, seed: seed, grads: grads,
                             scale: scale, layout: "bhnd", cases: cases, probes: probes)
    }

    /// The problem a case's inputs file holds (before any handed-over state).
    public static func problem(_ c: SuiteCaseEntry, manifest m: SuiteManifest) -> CoreProblem {
        var p = c.config.problem(spec: m.coreSpec, storage: m.storage, scale: m.scale)
        if let t = c.perturbAfter {
            var other = c.config
            other.seed = c.config.seed ^ 0xA5A5_5A5A_C3C3_3C3C
            p = p.perturbed(after: t, from: other.problem(spec: m.coreSpec, storage: m.storage, scale: m.scale))
        }
        if let r = c.tokens { p = p.tokens(r[0]..<r[1]) }
        return p
    }

    /// The upstream gradient `do` of a case (`[B,H,N,dv]`, N(0,1) rounded to the storage format).
    public static func upstream(_ p: CoreProblem, seed: UInt64, storage: InputStorage) -> [Double] {
        var g = SeededGenerator(seed: seed ^ 0x0D0D_0D0D)
        return (0..<(p.sequences * p.length * p.valueDim)).map { _ in storage.round(g.normal()) }
    }

    /// Writes `p` as an inputs file (bhnd, the storage dtype): q, k, v, a, initial_state(_z), and `do`.
    /// `extra` arrays are written as they are (a handed-over state keeps the kernel's own dtype and bits).
    public static func writeInputs(_ p: CoreProblem, upstream dO: [Double]?, storage: InputStorage, to path: String,
                                   extra: [String: TensorData] = [:]) throws {
        var data = inputArrays(p, upstream: dO, storage: storage)
        data.merge(extra) { _, new in new }
        try TensorFile.write(data, to: path)
    }

    /// The arrays of a packed case's inputs file: each sequence's
    /// (`config.sequence(i)`'s problem and upstream gradient, exactly as the
    /// case running it alone holds them; an empty sequence contributes its
    /// initial state only), packed with `cu_seqlens` (`PackedBatch.pack`).
    public static func packedInputs(_ c: CaseConfig, manifest m: SuiteManifest) -> [String: TensorData] {
        let parts = (c.sequenceLengths ?? []).enumerated().map { i, n -> [String: TensorData] in
            let alone = c.sequence(i)
            let p = alone.problem(spec: m.coreSpec, storage: m.storage, scale: m.scale)
            let arrays = inputArrays(p, upstream: m.grads ? upstream(p, seed: alone.seed, storage: m.storage) : nil,
                                     storage: m.storage)
            guard n == 0 else { return arrays }
            var cut = arrays
            for (name, a) in arrays where !PackedBatch.stateNames.contains(name) { cut[name] = a.sliced(axis: 2, 0..<0) }
            return cut
        }
        return PackedBatch.pack(parts)
    }

    /// `p`'s inputs as arrays (bhnd, the storage dtype): q, k, v, a, initial_state(_z), and `do`.
    static func inputArrays(_ p: CoreProblem, upstream dO: [Double]?, storage: InputStorage) -> [String: TensorData] {
        let (b, h, n) = (p.batch, p.heads, p.length)
        var arrays: [String: Tensor<Double>] = [
            "q": Tensor(shape: [b, h, n, p.keyDim], storage: p.q),
            "k": Tensor(shape: [b, h, n, p.keyDim], storage: p.k),
            "v": Tensor(shape: [b, h, n, p.valueDim], storage: p.v),
        ]
        if case .perStep(let a)? = p.decay { arrays["a"] = Tensor(shape: [b, h, n], storage: a) }
        if let s0 = p.initialState, let f = p.featureDim {
            arrays["initial_state"] = Tensor(shape: [b, h, f, p.valueDim], storage: s0.s)
            if let z = s0.z { arrays["initial_state_z"] = Tensor(shape: [b, h, f], storage: z) }
        }
        if let dO { arrays["do"] = Tensor(shape: [b, h, n, p.valueDim], storage: dO) }
        return arrays.mapValues { TensorData(rounding: $0, to: storage.dtype) }
    }

    /// Writes the manifest and every inputs file under `directory` (which must exist).
    public static func write(_ m: SuiteManifest, to directory: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory + "/inputs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: directory + "/outputs", withIntermediateDirectories: true)
        for c in m.cases {
            if c.config.isPacked {
                try TensorFile.write(packedInputs(c.config, manifest: m), to: directory + "/" + c.inputs)
                continue
            }
            let p = problem(c, manifest: m)
            try writeInputs(p, upstream: m.grads ? upstream(p, seed: c.config.seed, storage: m.storage) : nil,
                            storage: m.storage, to: directory + "/" + c.inputs)
        }
        try AtomicFile.write(m.jsonData(), to: directory + "/manifest.json")
    }
}

extension InputStorage {
    /// The extension of a campaign's inputs and outputs files in this storage:
    /// `safetensors` for bfloat16, which NumPy (and so `.npz`) cannot hold,
    /// `npz` otherwise. The runner template reads and writes both with NumPy alone.
    public var campaignFileExtension: String { self == .bfloat16 ? "safetensors" : "npz" }

    /// The file dtype of this storage format.
    public var dtype: DType {
        switch self {
        case .float64: return .float64
        case .float32: return .float32
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        }
    }
}
