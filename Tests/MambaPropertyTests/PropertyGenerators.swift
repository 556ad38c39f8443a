import Foundation
import MambaKernels
import MambaVariants
import MambaVerification
import PropertyBased
import Testing
import _MambaTestSupport

/// Generated case shapes for swift-property-based: N in 1…300 (most not a
/// multiple of any chunk size), widths 1…12, 1–2 heads and batch items, with
/// or without initial state, decays per step or as Float32 prefix sums, and a
/// value seed. Integers shrink toward their lower bounds, so a failure shrinks
/// toward the smallest case that still fails.
enum PropertyGenerators {
    static let maxLength = 300

    static let cases = zip(
        Gen.int(in: 1...maxLength), Gen.int(in: 1...12), Gen.int(in: 1...12), Gen.int(in: 1...2),
        Gen.int(in: 1...2), Gen.bool, Gen.bool, Gen.int(in: 0...Int(Int32.max))
    ).map { n, dk, dv, h, b, state, prefix, seed in
        PropertyCase(length: n, keyDim: dk, valueDim: dv, heads: h, batch: b, withInitialState: state,
                     decayAsPrefixSum: prefix, distribution: seed % 3 == 0 ? .fla : .paper, seed: UInt64(seed))
    }

    /// Cases per (kernel, property) in CI; `MAMBACHECK_PROPERTY_SCALE` multiplies it.
    static var count: Int { 2 * TestSupport.propertyScale }

    /// `MAMBACHECK_PROPERTY_CASE="N,dk,dv,heads,batch,state(0/1),prefix(0/1),seed"` replays one case
    /// (printed by every failing property test) without a committed `.fixedSeed`.
    static var replay: PropertyCase? {
        guard let s = ProcessInfo.processInfo.environment["MAMBACHECK_PROPERTY_CASE"] else { return nil }
        let f = s.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard f.count == 8 else { return nil }
        return PropertyCase(length: f[0], keyDim: f[1], valueDim: f[2], heads: f[3], batch: f[4],
                            withInitialState: f[5] != 0, decayAsPrefixSum: f[6] != 0,
                            distribution: f[7] % 3 == 0 ? .fla : .paper, seed: UInt64(f[7]))
    }

    static func replayString(_ c: PropertyCase) -> String {
        "MAMBACHECK_PROPERTY_CASE=\"\(c.length),\(c.keyDim),\(c.valueDim),\(c.heads),\(c.batch),\(c.withInitialState ? 1 : 0),\(c.decayAsPrefixSum ? 1 : 0),\(c.seed)\""
    }

    /// Every built-in kernel: every core in every precision mode.
    static let kernels: [BuiltinKernel] = CoreSpec.all.flatMap { core in
        PrecisionMode.allCases.map { BuiltinKernel(core: core, mode: $0) }
    }

    /// Runs `property` on generated cases (or the replay case) and records a
    /// failure with the case and the environment line that replays it.
    static func check(_ property: KernelProperty, _ kernel: BuiltinKernel,
                      sourceLocation: SourceLocation = #_sourceLocation) async {
        if let c = replay {
            let o = PropertySuite.replay(property, kernel, c)
            #expect(o.passed, "\(kernel.name) \(property.name) [\(property.theorem)] on \(c): \(o.detail)",
                    sourceLocation: sourceLocation)
            return
        }
        await propertyCheck(count: count, input: cases) { c in
            let o = PropertySuite.replay(property, kernel, c)
            #expect(o.passed, "\(kernel.name) \(property.name) [\(property.theorem)] failed; replay with \(replayString(c)): \(o.detail)",
                    sourceLocation: sourceLocation)
        }
    }
}
