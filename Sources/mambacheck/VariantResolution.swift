import MambaVariants

/// Resolves `--variant`: a preset name (its core is used at kernel level) or a core name.
func resolveCore(_ name: String) throws -> (CoreSpec, VariantSpec?) {
    if let v = VariantSpec(named: name) { return (v.core, v) }
    if let c = CoreSpec(name: name) { return (c, nil) }
    throw InputProblem(description: "unknown variant '\(name)'; `mambacheck variants` lists the presets and cores")
}

import Foundation
import MambaTensors

/// Atomic writes for the CLI's own files (temporary file + rename).
enum AtomicFileWriter {
    static func write(_ data: Data, to path: String) throws { try AtomicFile.write(data, to: path) }
}
