import MambaTensors
import MambaVariants
import MambaVerification

/// Resolves `--variant`: a preset name (its core is used at kernel level) or a core name.
///
/// An unknown name is an input error that suggests the closest known names,
/// compared case-insensitively with `_`, `-` and spaces ignored (`2Mamba`,
/// `squared_decay_sum` and `mamba-2` are near misses, not unknown words).
func resolveCore(_ name: String) throws -> (CoreSpec, VariantSpec?) {
    if let v = VariantSpec(named: name) { return (v.core, v) }
    if let c = CoreSpec(name: name) { return (c, nil) }
    let suggestions = VariantSuggestions.closest(to: name)
    let hint = suggestions.isEmpty ? "" : "; did you mean " + suggestions.map { "'\($0)'" }.joined(separator: " or ") + "?"
    throw InputProblem(description: "unknown variant '\(name)'\(hint) (`mambacheck variants` lists the presets and cores)")
}

/// `resolveCore` for commands that read a kernel-level dump (`compare`,
/// `reference`): a preset's block-level components are not in such a dump,
/// so say on stderr that only its core is judged — otherwise
/// `--variant 2mamba-dt` on a dump without `dt` would pass as if V ⊙ dt had
/// been checked.
func resolveDumpCore(_ name: String) throws -> (CoreSpec, VariantSpec?) {
    let (core, preset) = try resolveCore(name)
    if let preset {
        let parts = blockComponents(preset)
        if !parts.isEmpty {
            printError("note: '\(name)' is a block-level preset; its block components (\(parts.joined(separator: ", "))) "
                       + "are not part of a kernel-level dump, so only its core \(core.name) is judged")
        }
    }
    return (core, preset)
}

/// The core problem of a kernel-level dump (`compare`, `reference`): the
/// core of `variant` (`resolveDumpCore`), the arrays of `inputs` (a layout
/// hint on stderr when the axes look swapped), the oracle scale of
/// `scaleOptions`; validated (an input error names the file).
func readDumpProblem(variant: String, inputs: String, layout: TensorLayout,
                     scaleOptions: ScaleOptions) throws -> (core: CoreSpec, arrays: [String: TensorData], problem: CoreProblem) {
    let (core, _) = try resolveDumpCore(variant)
    let arrays = try TensorFile.read(inputs)
    if let hint = KernelDump.layoutHint(arrays, layout: layout) { printError("hint: \(hint)") }
    var problem = try KernelDump.coreProblem(arrays, file: inputs, spec: core, layout: layout, scale: nil)
    problem.scaleSpec = scaleOptions.oracleScale(keyDim: problem.keyDim)
    if let m = problem.validationError() { throw InputProblem(description: "\(inputs): \(m)") }
    return (core, arrays, problem)
}

/// The parts of a preset's block outside its core (docs/MATH.md §2), in block order.
func blockComponents(_ v: VariantSpec) -> [String] {
    var parts: [String] = []
    if v.convWindow > 1 { parts.append("conv\(v.convWindow)") }
    if v.needsDt { parts.append("dt") }
    switch v.decay {
    case .none: break
    case .original: parts.append("decay a = −exp(A_log)·dt")
    case .softplus: parts.append("decay a = −softplus(x·W_A)")
    }
    if v.dtOnValues { parts.append("V⊙dt") }
    if v.activation != .none { parts.append(v.activation.rawValue) }
    if v.dResidual { parts.append("D") }
    if v.zGate { parts.append("Z gate") }
    if v.outputNorm { parts.append("RMSNorm") }
    return parts
}

/// Near-miss suggestions for variant names.
enum VariantSuggestions {
    /// Every name `resolveCore` accepts without modifiers.
    static var known: [String] { VariantSpec.presets.map(\.name) + CoreSpec.all.map(\.name) }

    /// Lower case without `-`, `_`, spaces (and `+` kept: it separates modifiers).
    static func normalised(_ s: String) -> String {
        String(s.lowercased().filter { $0 != "-" && $0 != "_" && $0 != " " })
    }

    /// Up to three known names: exact matches after normalisation first,
    /// then those within an edit distance of about a third of the name.
    static func closest(to name: String) -> [String] {
        let key = normalised(name)
        let exact = known.filter { normalised($0) == key }
        if !exact.isEmpty { return Array(exact.prefix(3)) }
        let limit = Swift.max(2, key.count / 3)
        let ranked = known.map { ($0, editDistance(normalised($0), key)) }
            .filter { $0.1 <= limit }
            .sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
        return Array(ranked.prefix(3).map(\.0))
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count)
        var current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            for j in 1...y.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }
}

import Foundation
import MambaTensors

/// Atomic writes for the CLI's own files (temporary file + rename).
enum AtomicFileWriter {
    static func write(_ data: Data, to path: String) throws { try AtomicFile.write(data, to: path) }
}
