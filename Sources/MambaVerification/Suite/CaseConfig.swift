import MambaVariants

/// One generated case of a property campaign, as data: its shape, input
/// distribution (a paper/FLA distribution or a hazard of docs/MATH.md §6),
/// initial state, magnitude and seed. The inputs are a pure function of the
/// config and the storage format, so a config printed as `spec` replays the
/// case exactly (`mambacheck fuzz --replay SPEC`) and shrinking is a walk
/// over configs.
public struct CaseConfig: Codable, Hashable, Sendable, CustomStringConvertible {
    public var batch: Int
    public var heads: Int
    public var length: Int
    public var keyDim: Int
    public var valueDim: Int
    public var distribution: InputDistribution
    /// Start from a generated initial state (cores with a finite state only).
    public var initialState: Bool
    /// q and k are multiplied by this factor after generation (scores grow by
    /// its square; shrinking walks it back to 1).
    public var magnitude: Double
    public var seed: UInt64
    /// A variable-length batch (FLA's `cu_seqlens` packing, docs/MATH.md §0):
    /// the lengths of its sequences, zeros allowed. Then `batch == 1` and
    /// `length` is their sum; sequence `i` is `sequence(i)`'s problem (its
    /// tokens, decays and initial state), so the packed case and the
    /// sequences run one by one hold the same numbers. nil: not packed.
    public var sequenceLengths: [Int]?

    public init(batch: Int = 1, heads: Int = 1, length: Int, keyDim: Int, valueDim: Int,
                distribution: InputDistribution = .paper, initialState: Bool = false, magnitude: Double = 1,
                seed: UInt64, sequenceLengths: [Int]? = nil) {
        self.batch = batch
        self.heads = heads
        self.length = length
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.distribution = distribution
        self.initialState = initialState
        self.magnitude = magnitude
        self.seed = seed
        self.sequenceLengths = sequenceLengths
    }

    public var isPacked: Bool { sequenceLengths != nil }

    /// Sequence `i` of a packed config as a config of its own (`B = 1`; an
    /// empty sequence is drawn with one token, of which the packed case keeps
    /// none, only the initial state). Its seed is derived from the packed
    /// config's seed and `i`.
    public func sequence(_ i: Int) -> CaseConfig {
        let n = sequenceLengths?[i] ?? length
        return CaseConfig(batch: 1, heads: heads, length: Swift.max(1, n), keyDim: keyDim, valueDim: valueDim,
                          distribution: distribution, initialState: initialState, magnitude: magnitude,
                          seed: seed &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// `b=1,h=2,n=37,dk=16,dv=24,dist=paper,init=1,mag=1,seed=7`: the replay key
    /// (packed configs end in `,seqs=5+0+32`).
    public var spec: String {
        "b=\(batch),h=\(heads),n=\(length),dk=\(keyDim),dv=\(valueDim),dist=\(distribution.rawValue),"
            + "init=\(initialState ? 1 : 0),mag=\(magnitude),seed=\(seed)"
            + (sequenceLengths.map { ",seqs=" + $0.map(String.init).joined(separator: "+") } ?? "")
    }
    public var description: String { spec }

    /// Elements of the largest input, `B·H·N·max(dk, dv)`: "smallest failing case first" sorts by it.
    public var size: Int { batch * heads * length * Swift.max(keyDim, valueDim) }

    /// Parses `spec`; nil names no field (the caller reports the whole string).
    public init?(spec: String) {
        var fields: [String: String] = [:]
        for part in spec.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { return nil }
            fields[String(kv[0]).trimmingSpaces] = String(kv[1]).trimmingSpaces
        }
        var lengths: [Int]? = nil
        if let seqs = fields["seqs"] {
            let parts = seqs.split(separator: "+", omittingEmptySubsequences: false).map { Int($0) }
            // Bounded before summing (no overflow): at most 4096 sequences of at most 2^24 tokens.
            guard !parts.isEmpty, parts.count <= 1 << 12,
                  parts.allSatisfy({ ($0 ?? -1) >= 0 && $0! <= 1 << 24 }) else { return nil }
            lengths = parts.map { $0! }
        }
        guard fields.count == (lengths == nil ? 9 : 10),
              let b = fields["b"].flatMap(Int.init), let h = fields["h"].flatMap(Int.init),
              let n = fields["n"].flatMap(Int.init), let dk = fields["dk"].flatMap(Int.init),
              let dv = fields["dv"].flatMap(Int.init),
              let dist = fields["dist"].flatMap(InputDistribution.init(rawValue:)),
              let initial = fields["init"], initial == "0" || initial == "1",
              let mag = fields["mag"].flatMap(Double.init), mag.isFinite, mag > 0,
              let seed = fields["seed"].flatMap(UInt64.init),
              b >= 1, h >= 1, n >= 1, dk >= 1, dv >= 1, b * h * n <= 1 << 24, dk <= 512, dv <= 512,
              lengths.map({ b == 1 && $0.reduce(0, +) == n }) ?? true
        else { return nil }
        self.init(batch: b, heads: h, length: n, keyDim: dk, valueDim: dv, distribution: dist,
                  initialState: initial == "1", magnitude: mag, seed: seed, sequenceLengths: lengths)
    }

    /// The problem this config describes, inputs rounded to `storage`
    /// (a packed config: see `sequence(_:)` and `SuitePlan.packedInputs`).
    public func problem(spec core: CoreSpec, storage: InputStorage, scale: Double? = nil) -> CoreProblem {
        var p = CoreProblem.random(spec: core, batch: batch, heads: heads, length: length, keyDim: keyDim,
                                   valueDim: valueDim, distribution: distribution, storage: storage,
                                   withInitialState: initialState && core.hasFeatureMapState, scale: scale,
                                   seed: seed)
        if magnitude != 1 {
            p.q = p.q.map { storage.round($0 * magnitude) }
            p.k = p.k.map { storage.round($0 * magnitude) }
        }
        return p
    }
}

extension CoreSpec {
    /// Whether the core keeps a finite recurrent state (every score but the exponential).
    public var hasFeatureMapState: Bool { score.hasFeatureMap }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
