import Foundation
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaTensors
import MambaVariants

/// Sizes and seeds of a golden-vector set. The defaults keep the whole set
/// below 2 MB: cores at `B = 1, H = 2, N = 40, dk = dv = 8` (40 is not a
/// multiple of the usual chunk sizes 16/32/64, so chunked kernels meet a
/// partial last chunk), blocks at `B = 1, N = 24, d = 16, H = 2, dh = 8`.
public struct FixtureOptions: Sendable, Equatable {
    public var coreLength = 40
    public var coreHeads = 2
    public var keyDim = 8
    public var valueDim = 8
    public var blockLength = 24
    public var modelDim = 16
    public var blockHeads = 2
    public var headDim = 8
    /// MPFR working precision of the oracle, bits.
    public var precision = 256
    /// Significant digits of the decimal listings (≥ 40 asked; 50 shown).
    public var digits = 50
    /// Core case `i` uses `seed + i`, block case `i` uses `seed + 1000 + i`.
    public var seed: UInt64 = 20_260_217

    public init() {}
}

/// Golden vectors for every kernel-level core and every base preset
/// (`mambacheck fixtures generate|check`).
///
/// A set is a directory with, per case `NAME`:
/// - `NAME.inputs.npz` — Float32 inputs (core: `q`, `k`, `v` `[B,H,N,d]`,
///   `a` `[B,H,N]` per-step log-decays, `initial_state` `[B,H,F,dv]` and
///   `initial_state_z` `[B,H,F]` where the core has a state; block: `x`
///   `[B,N,d]` and the parameters the preset uses);
/// - `NAME.reference.npz` — Float64 reference outputs (core: `o`,
///   `final_state`, `final_state_z`; block: `out`), each the oracle's
///   `precision`-bit value rounded once to Float64;
/// - `NAME.reference.txt` — the same values as decimal strings with
///   `digits` significant digits (`DecimalListing`);
///
/// and `manifest.json` (`FixtureManifest`) with shapes, seeds, precision,
/// layout, variant and the SHA-256 of every file.
///
/// The oracle is `Reference.quadratic(…, finalState: true)` (cores) and
/// `Reference.block` (blocks), both with every MPFR operation correctly
/// rounded at `precision` bits; Proofs/T7 bounds their error far below the
/// 50 printed digits for these well-conditioned inputs, and `check`
/// recomputes them bit for bit.
public enum FixtureSet {
    // MARK: generate

    /// Writes the set into `directory` (created if needed; other files are
    /// left alone), each file atomically, the manifest last.
    ///
    /// - Parameter progress: called with (done, total, case name).
    public static func generate(into directory: String, options: FixtureOptions = .init(), generator: String,
                                progress: ((Int, Int, String) -> Void)? = nil) throws -> FixtureManifest {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var cases: [FixtureCase] = []
        let total = CoreSpec.all.count + VariantSpec.bases.count
        for (i, spec) in CoreSpec.all.enumerated() {
            let c = try generateCore(spec, seed: options.seed &+ UInt64(i), options: options, directory: directory)
            cases.append(c)
            progress?(cases.count, total, c.name)
        }
        for (i, preset) in VariantSpec.bases.enumerated() {
            let c = try generateBlock(preset, seed: options.seed &+ 1000 &+ UInt64(i), options: options,
                                      directory: directory)
            cases.append(c)
            progress?(cases.count, total, c.name)
        }
        var files: [FixtureFile] = []
        for name in cases.flatMap({ [$0.inputs.file, $0.reference.file, $0.decimal] }).sorted() {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
            files.append(FixtureFile(name: name, bytes: data.count, sha256: SHA256.hexDigest(data)))
        }
        let manifest = FixtureManifest(
            generator: generator, precision: options.precision, decimalDigits: options.digits,
            conventions: conventions, cases: cases, files: files)
        try AtomicFile.write(manifest.jsonData(), to: directory + "/" + FixtureManifest.fileName)
        return manifest
    }

    static let conventions: [String: String] = [
        "core layout": "bhnd: q, k [B,H,N,dk]; v, o [B,H,N,dv]; a [B,H,N] per-step log-decay (a_0 never matters)",
        "core state": "FLA convention, unscaled key features: initial_state/final_state [B,H,F,dv], "
            + "initial_state_z/final_state_z [B,H,F]; F = dk, or dk(dk+1)/2 packed row-major upper triangle "
            + "with sqrt(2) on cross terms for the squared score (SPEC §3–4)",
        "core scale": "score scale s as stored in each case (1/sqrt(dk) rounded to Float64)",
        "block layout": "bnd: x, out [B,N,d]; linear maps [in, out] so u = x·W (SPEC §2)",
        "inputs": "Float32, taken as exact by the oracle",
        "reference": "Float64: the oracle value rounded once to nearest; .reference.txt holds the decimal digits",
        "decimal lines": "name[i,j,...] = value, row-major multi-index",
    ]

    static func generateCore(_ spec: CoreSpec, seed: UInt64, options o: FixtureOptions,
                             directory: String) throws -> FixtureCase {
        let (seed, problem, entries) = try firstFinite(from: seed, name: spec.name) { seed in
            let p = CoreProblem.random(spec: spec, batch: 1, heads: o.coreHeads, length: o.coreLength,
                                       keyDim: o.keyDim, valueDim: o.valueDim, distribution: .paper,
                                       storage: .float32, withInitialState: spec.score.hasFeatureMap, seed: seed)
            return (p, try coreReference(p, precision: o.precision))
        }
        let name = "core-" + spec.name
        let inputs = coreInputs(problem)
        let presets = VariantSpec.bases.filter { $0.core == spec }.map(\.name)
        let fixture = FixtureCase(
            name: name, kind: .core, variant: spec.name, core: spec.name, presets: presets, layout: "bhnd",
            seed: seed, distribution: InputDistribution.paper.rawValue, scale: problem.scale,
            dimensions: ["B": problem.batch, "H": problem.heads, "N": problem.length, "dk": problem.keyDim,
                         "dv": problem.valueDim] .merging(problem.featureDim.map { ["F": $0] } ?? [:]) { a, _ in a },
            inputs: FixtureArrays(file: name + ".inputs.npz", arrays: described(inputs, dtype: .float32)),
            reference: FixtureArrays(file: name + ".reference.npz", arrays: described(entries)),
            decimal: name + ".reference.txt")
        try write(fixture, inputs: inputs, entries: entries, options: o, directory: directory)
        return fixture
    }

    static func generateBlock(_ preset: VariantSpec, seed: UInt64, options o: FixtureOptions,
                              directory: String) throws -> FixtureCase {
        let (seed, problem, entries) = try firstFinite(from: seed, name: preset.name) { seed in
            let p = BlockProblem.random(variant: preset, batch: 1, length: o.blockLength, modelDim: o.modelDim,
                                        heads: o.blockHeads, headDim: o.headDim, seed: seed)
            return (p, try blockReference(p, precision: o.precision))
        }
        let name = "block-" + preset.name
        let inputs = blockInputs(problem)
        let fixture = FixtureCase(
            name: name, kind: .block, variant: preset.name, core: preset.core.name, presets: [preset.name], components: preset,
            layout: "bnd", seed: seed, distribution: nil, scale: preset.scale(headDim: o.headDim),
            dimensions: ["B": 1, "N": o.blockLength, "d": o.modelDim, "H": o.blockHeads, "dh": o.headDim,
                         "convWindow": preset.convWindow],
            inputs: FixtureArrays(file: name + ".inputs.npz", arrays: described(inputs, dtype: .float32)),
            reference: FixtureArrays(file: name + ".reference.npz", arrays: described(entries)),
            decimal: name + ".reference.txt")
        try write(fixture, inputs: inputs, entries: entries, options: o, directory: directory)
        return fixture
    }

    /// The first seed from `seed` on whose reference is finite everywhere: a
    /// golden vector should not contain the NaN of a zero denominator (a
    /// relu-linear row whose query and keys share no positive feature), which
    /// the oracle reports rather than hides. The manifest records the seed used.
    static func firstFinite<P>(from seed: UInt64, name: String,
                               _ make: (UInt64) throws -> (P, [DecimalListing.Entry]))
        throws -> (UInt64, P, [DecimalListing.Entry])
    {
        for attempt in 0..<64 {
            let s = seed &+ UInt64(attempt) &* 0x1_0000
            let (problem, entries) = try make(s)
            if entries.allSatisfy({ $0.values.allSatisfy(\.isFinite) }) { return (s, problem, entries) }
        }
        throw FixtureError.invalidCase("\(name): no seed among 64 tries gives a finite reference")
    }

    static func write(_ c: FixtureCase, inputs: [NamedArray], entries: [DecimalListing.Entry],
                      options o: FixtureOptions, directory: String) throws {
        let dir = directory + "/"
        try TensorFile.write(Dictionary(uniqueKeysWithValues: inputs.map { ($0.name, Tensor(shape: $0.shape, storage: $0.values)) }),
                             to: dir + c.inputs.file, dtype: .float32)
        try TensorFile.write(Dictionary(uniqueKeysWithValues: entries.map {
            ($0.name, Tensor(shape: $0.shape, storage: $0.values.map(\.doubleValue)))
        }), to: dir + c.reference.file, dtype: .float64)
        let text = DecimalListing.render(comments: listingComments(c, precision: o.precision, digits: o.digits),
                                         entries: entries, digits: o.digits)
        try AtomicFile.write(Data(text.utf8), to: dir + c.decimal)
    }

    static func listingComments(_ c: FixtureCase, precision: Int, digits: Int) -> [String] {
        ["mambacheck fixtures: \(c.name) (\(c.kind.rawValue) \(c.variant), seed \(c.seed))",
         "MPFR oracle at \(precision) bits, correctly rounded to \(digits) significant digits",
         "name[index] = value; row-major index in layout \(c.layout)"]
    }

    // MARK: arrays of a case

    struct NamedArray {
        var name: String
        var shape: [Int]
        var values: [Double]
        var meaning: String
    }

    static func coreInputs(_ p: CoreProblem) -> [NamedArray] {
        let (b, h, n) = (p.batch, p.heads, p.length)
        var out = [
            NamedArray(name: "q", shape: [b, h, n, p.keyDim], values: p.q, meaning: "queries"),
            NamedArray(name: "k", shape: [b, h, n, p.keyDim], values: p.k, meaning: "keys"),
            NamedArray(name: "v", shape: [b, h, n, p.valueDim], values: p.v, meaning: "values"),
        ]
        if case .perStep(let a)? = p.decay {
            out.append(NamedArray(name: "a", shape: [b, h, n], values: a, meaning: "per-step log-decay a_t ≤ 0"))
        }
        if let s0 = p.initialState, let f = p.featureDim {
            out.append(NamedArray(name: "initial_state", shape: [b, h, f, p.valueDim], values: s0.s,
                                  meaning: "initial state S0 (unscaled key features)"))
            if let z = s0.z {
                out.append(NamedArray(name: "initial_state_z", shape: [b, h, f], values: z,
                                      meaning: "initial normaliser state z0"))
            }
        }
        return out
    }

    static func coreReference(_ p: CoreProblem, precision: Int) throws -> [DecimalListing.Entry] {
        let ref = try Reference.quadratic(p, precision: precision, finalState: p.featureDim != nil)
        var entries = [DecimalListing.Entry(name: "o", shape: [p.batch, p.heads, p.length, p.valueDim], values: ref.o)]
        if let f = p.featureDim, let s = ref.finalStateS {
            entries.append(.init(name: "final_state", shape: [p.batch, p.heads, f, p.valueDim], values: s))
            if let z = ref.finalStateZ {
                entries.append(.init(name: "final_state_z", shape: [p.batch, p.heads, f], values: z))
            }
        }
        return entries
    }

    /// The block parameters, by file name: where they live in
    /// `BlockParameters`, their shape, and whether a preset uses them.
    struct BlockParameter: Sendable {
        var name: String
        var keyPath: WritableKeyPath<BlockParameters, [Double]> & Sendable
        var shape: @Sendable (_ d: Int, _ h: Int, _ dh: Int, _ k: Int) -> [Int]
        var used: @Sendable (VariantSpec) -> Bool
        var meaning: String
    }

    static let blockParameters: [BlockParameter] = [
        .init(name: "w_qkv", keyPath: \.wQKV, shape: { d, h, dh, _ in [d, 3 * h * dh] }, used: { _ in true },
              meaning: "input projection [d, 3·H·dh], channels [Q | K | V]"),
        .init(name: "conv_weight", keyPath: \.convWeight, shape: { _, h, dh, k in [3 * h * dh, k] },
              used: { $0.convWindow > 1 }, meaning: "depthwise causal conv [3·H·dh, k]; [:, k-1] multiplies the current token"),
        .init(name: "conv_bias", keyPath: \.convBias, shape: { _, h, dh, _ in [3 * h * dh] },
              used: { $0.convWindow > 1 }, meaning: "conv bias [3·H·dh]"),
        .init(name: "w_dt", keyPath: \.wDt, shape: { d, h, _, _ in [d, h] }, used: { $0.needsDt },
              meaning: "dt projection [d, H]: dt = softplus(x·W_dt [+ dt_bias])"),
        .init(name: "dt_bias", keyPath: \.dtBias, shape: { _, h, _, _ in [h] }, used: { $0.needsDt && $0.dtBias },
              meaning: "dt bias [H]"),
        .init(name: "a_log", keyPath: \.aLog, shape: { _, h, _, _ in [h] }, used: { $0.decay == .original },
              meaning: "A_log [H]: a_t = -exp(A_log)·dt_t"),
        .init(name: "w_a", keyPath: \.wA, shape: { d, h, _, _ in [d, h] }, used: { $0.decay == .softplus },
              meaning: "decay projection [d, H]: a_t = -softplus(x·W_A)"),
        .init(name: "D", keyPath: \.d, shape: { _, h, dh, _ in [h, dh] }, used: { $0.dResidual },
              meaning: "D residual [H, dh]: r = V ⊙ D before dt"),
        .init(name: "w_z", keyPath: \.wZ, shape: { d, h, dh, _ in [d, h * dh] }, used: { $0.zGate },
              meaning: "Z gate projection [d, H·dh]: y ⊙ SiLU(x·W_z [+ b_z])"),
        .init(name: "b_z", keyPath: \.bZ, shape: { _, h, dh, _ in [h * dh] }, used: { $0.zGate && $0.zGateBias },
              meaning: "Z gate bias [H·dh]"),
        .init(name: "gamma", keyPath: \.gamma, shape: { _, h, dh, _ in [h * dh] }, used: { $0.outputNorm },
              meaning: "RMSNorm weight [H·dh] (eps = 2^-23)"),
        .init(name: "w_o", keyPath: \.wO, shape: { d, h, dh, _ in [h * dh, d] }, used: { _ in true },
              meaning: "output projection [H·dh, d]"),
    ]

    static func blockInputs(_ p: BlockProblem) -> [NamedArray] {
        let w = p.parameters
        var out = [NamedArray(name: "x", shape: [p.batch, p.length, w.modelDim], values: p.x, meaning: "layer input")]
        for param in blockParameters where param.used(p.variant) {
            out.append(NamedArray(name: param.name,
                                  shape: param.shape(w.modelDim, w.heads, w.headDim, p.variant.convWindow),
                                  values: w[keyPath: param.keyPath], meaning: param.meaning))
        }
        return out
    }

    static func blockReference(_ p: BlockProblem, precision: Int) throws -> [DecimalListing.Entry] {
        let out = try Reference.block(p, precision: precision)
        return [.init(name: "out", shape: [p.batch, p.length, p.parameters.modelDim], values: out)]
    }

    static func described(_ arrays: [NamedArray], dtype: DType) -> [String: FixtureArray] {
        Dictionary(uniqueKeysWithValues: arrays.map {
            ($0.name, FixtureArray(dtype: dtype.rawValue, shape: $0.shape, meaning: $0.meaning))
        })
    }

    static func described(_ entries: [DecimalListing.Entry]) -> [String: FixtureArray] {
        let meanings = ["o": "core output", "final_state": "final state S (unscaled key features)",
                        "final_state_z": "final normaliser state z", "out": "block output"]
        return Dictionary(uniqueKeysWithValues: entries.map {
            ($0.name, FixtureArray(dtype: DType.float64.rawValue, shape: $0.shape, meaning: meanings[$0.name] ?? ""))
        })
    }
}
