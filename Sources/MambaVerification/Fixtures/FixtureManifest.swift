import Foundation
import MambaVariants

/// `manifest.json` of a golden-vector set (`mambacheck fixtures generate`):
/// what each case is, how its inputs were made, which files hold what, and
/// the SHA-256 of every file.
///
/// Written with sorted keys and pretty printing, so the same set gives the
/// same bytes. Version `schema` 1.
public struct FixtureManifest: Codable, Sendable, Equatable {
    public static let currentSchema = 1
    public static let fileName = "manifest.json"

    public var schema: Int
    /// The tool that wrote the set, e.g. "mambacheck 0.1.0".
    public var generator: String
    /// MPFR working precision (bits) of every reference output.
    public var precision: Int
    /// Significant digits of the decimal listings.
    public var decimalDigits: Int
    /// How to read the arrays: axis orders, conventions.
    public var conventions: [String: String]
    public var cases: [FixtureCase]
    /// Every file of the set except the manifest itself, sorted by name.
    public var files: [FixtureFile]

    public init(schema: Int = FixtureManifest.currentSchema, generator: String, precision: Int, decimalDigits: Int,
                conventions: [String: String], cases: [FixtureCase], files: [FixtureFile]) {
        self.schema = schema
        self.generator = generator
        self.precision = precision
        self.decimalDigits = decimalDigits
        self.conventions = conventions
        self.cases = cases
        self.files = files
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    public init(jsonData data: Data) throws {
        self = try JSONDecoder().decode(FixtureManifest.self, from: data)
    }
}

/// One golden case: a core problem (kernel level) or a block problem (layer level).
public struct FixtureCase: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case core, block }

    /// File-name stem, e.g. `core-squared-decay-sum` or `block-2mamba`.
    public var name: String
    public var kind: Kind
    /// For core cases the core name (`mambacheck variants --cores`); for
    /// block cases the preset name.
    public var variant: String
    /// The kernel-level core the case exercises.
    public var core: String
    /// Base presets whose core this is (core cases), for orientation.
    public var presets: [String]
    /// Block cases: every component of the preset (docs/MATH.md §2) — score, decay
    /// kind, normalisation, conv window, dt on values, dt bias, D, Z gate and
    /// its bias, activation and whether it also applies to V.
    public var components: VariantSpec?
    /// Axis order of the arrays: `bhnd` (`[B,H,N,d]`) for core cases, `bnd` (`[B,N,d]`) for blocks.
    public var layout: String
    /// Seed of `CoreProblem.random` / `BlockProblem.random`.
    public var seed: UInt64
    /// Input distribution of `CoreProblem.random` (core cases).
    public var distribution: String?
    /// Score scale `s` exactly as used (a Float64 value; `1/√dk` or `1/√dh` rounded to Float64).
    public var scale: Double
    /// B, H, N, dk, dv (core); B, N, d, H, dh, convWindow (block).
    public var dimensions: [String: Int]
    /// Float32 inputs (q, k, v, a, initial_state, initial_state_z / x and parameters).
    public var inputs: FixtureArrays
    /// Float64 reference outputs (o, final_state, final_state_z / out), each
    /// the 256-bit oracle value rounded once to Float64.
    public var reference: FixtureArrays
    /// Text file: one `name[i,j,…] = value` line per reference element, `decimalDigits` digits.
    public var decimal: String

    public init(name: String, kind: Kind, variant: String, core: String, presets: [String],
                components: VariantSpec? = nil, layout: String,
                seed: UInt64, distribution: String?, scale: Double, dimensions: [String: Int],
                inputs: FixtureArrays, reference: FixtureArrays, decimal: String) {
        self.name = name
        self.kind = kind
        self.variant = variant
        self.core = core
        self.presets = presets
        self.components = components
        self.layout = layout
        self.seed = seed
        self.distribution = distribution
        self.scale = scale
        self.dimensions = dimensions
        self.inputs = inputs
        self.reference = reference
        self.decimal = decimal
    }
}

/// A `.npz` file of a case and the arrays in it.
public struct FixtureArrays: Codable, Sendable, Equatable {
    public var file: String
    public var arrays: [String: FixtureArray]
    public init(file: String, arrays: [String: FixtureArray]) { self.file = file; self.arrays = arrays }
}

public struct FixtureArray: Codable, Sendable, Equatable {
    public var dtype: String
    public var shape: [Int]
    /// What the array is, in words.
    public var meaning: String
    public init(dtype: String, shape: [Int], meaning: String) {
        self.dtype = dtype; self.shape = shape; self.meaning = meaning
    }
}

/// A file of the set with its size and SHA-256 (lower-case hex).
public struct FixtureFile: Codable, Sendable, Equatable {
    public var name: String
    public var bytes: Int
    public var sha256: String
    public init(name: String, bytes: Int, sha256: String) { self.name = name; self.bytes = bytes; self.sha256 = sha256 }
}
