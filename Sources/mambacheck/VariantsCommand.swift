import Foundation
import ArgumentParser
import MambaVariants

struct VariantsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "variants",
        abstract: "List the variant presets, their components, and the kernel-level cores.",
        discussion: """
            A preset name may be extended with +components: +conv2|+conv3|+conv4, +original|+softplus, \
            +dt, +silu|+relu, +d, +z (e.g. linear-outnorm+conv2+softplus+dt).

            Examples:
              mambacheck variants
              mambacheck variants --cores
            """)

    @Flag(help: "List only the kernel-level cores.")
    var cores = false

    func run() throws {
        if !cores {
            let width = VariantSpec.presets.map(\.name.count).max() ?? 10
            print("Presets (block level; the core is what a kernel implements):")
            for v in VariantSpec.presets {
                print("  " + v.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + v.components
                      + "  core=\(v.core.name)")
            }
            print("")
        }
        print("Cores (kernel level, docs/MATH.md §1):")
        for c in CoreSpec.all {
            let f = c.featureDimension(keyDim: 64).map { "state F=\($0) at dk=64" } ?? "no finite state (KV cache)"
            print("  \(c.name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(f)")
        }
    }
}
