import MambaKernels
import MambaVariants
import MambaVerification
import PropertyBased
import Testing

/// The kernel properties of issue 5 over generated cases, for every built-in
/// kernel (every core × precision mode), through the public
/// `KernelUnderTest` protocol a user's kernel would conform to. Each test
/// names the theorem in Proofs/ it checks.
@Suite struct KernelPropertyTests {
    /// Proofs/T1: quadratic, chunked (C = 16; generated N is rarely a multiple),
    /// recurrent and tiled forms agree, outputs and final states.
    @Test(arguments: PropertyGenerators.kernels(.formsAgree))
    func formsAgree(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.formsAgree, kernel)
    }

    /// Proofs/T8 and T9: every form is as accurate against the MPFR oracle as
    /// the built-in baselines allow.
    @Test(arguments: PropertyGenerators.kernels(.accuracyAgainstOracle))
    func accuracyAgainstOracle(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.accuracyAgainstOracle, kernel)
    }

    /// Proofs/T2: outputs at positions ≤ t are bit-identical when every input
    /// after t changes.
    @Test(arguments: PropertyGenerators.kernels(.causality))
    func causality(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.causality, kernel)
    }

    /// Proofs/T1: N tokens equal N₁ then N₂ with the final state passed on.
    @Test(arguments: PropertyGenerators.kernels(.stateRoundTrip))
    func stateRoundTrip(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.stateRoundTrip, kernel)
    }

    /// Proofs/T6: un-normalised cores are linear in V (bit-exact for ×2).
    @Test(arguments: PropertyGenerators.kernels(.linearityInValues))
    func linearityInValues(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.linearityInValues, kernel)
    }

    /// Proofs/T6: zero values give zero outputs.
    @Test(arguments: PropertyGenerators.kernels(.zeroValues))
    func zeroValues(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.zeroValues, kernel)
    }

    /// Proofs/T6: permuting heads and batch items permutes outputs, bit for bit.
    @Test(arguments: PropertyGenerators.kernels(.headPermutation))
    func headPermutation(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.headPermutation, kernel)
    }

    /// Proofs/T6: the scale cancels for sum-normalised linear (ReLU) and squared cores.
    @Test(arguments: PropertyGenerators.kernels(.scaleInvariance))
    func scaleInvariance(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.scaleInvariance, kernel)
    }
}

/// Which built-in kernels each property applies to. A property that cannot
/// apply to a kernel is reported not applicable on every case (never a pass)
/// and has no test case above; this pins the list, so a property silently
/// dropping kernels (as `.pass` used to hide) fails here.
@Suite struct PropertyApplicabilityTests {
    /// Applicable cores of the 14, from docs/MATH.md §1: every property applies
    /// to every core except the round trip (no finite state for the
    /// exponential score: 4 cores), linearity in V (sum-normalised cores are
    /// not linear: 6 cores) and the scale (cancels only for the sum-normalised
    /// ReLU-linear and squared cores: 4 of 14 apply).
    static let applicableCores: [String: Int] = [
        "forms agree": 14, "accuracy against the oracle": 14, "causality": 14, "state round trip": 10,
        "linear in V": 8, "zero values give zero outputs": 14, "head permutation": 14, "scale cancels": 4,
    ]

    /// Proofs/T1, T2, T6, T8: each property applies to exactly the kernels
    /// its theorem covers; on the others it reports not applicable, never a pass.
    @Test func notApplicableKernels() throws {
        let c = PropertyCase(length: 5, keyDim: 3, valueDim: 2, heads: 2, batch: 1, seed: 7)
        var lines: [String] = []
        for property in KernelProperty.all {
            let applicable = PropertyGenerators.kernels(property)
            let expected = try #require(Self.applicableCores[property.name], "\(property.name) has no expected count")
            #expect(applicable.count == expected * PrecisionMode.allCases.count,
                    "\(property.name): \(applicable.count) kernels apply, expected \(expected) cores × \(PrecisionMode.allCases.count) modes")
            let skipped = PropertyGenerators.kernels.filter { property.kernelRequirement($0) != nil }
            for kernel in skipped {
                let o = PropertySuite.replay(property, kernel, c)
                #expect(o.status == .notApplicable, "\(property.name) on \(kernel.name): \(o.status.rawValue)")
            }
            let cores = Set(skipped.map(\.core.name)).sorted()
            lines.append("[\(property.theorem)] \(property.name): \(applicable.count) kernels apply, \(skipped.count) not applicable\(cores.isEmpty ? "" : " (" + cores.joined(separator: ", ") + ")")")
        }
        print("property applicability:\n  " + lines.joined(separator: "\n  "))
    }

    /// Proofs/T1, T2, T6: case-level requirements — the cases the old checks
    /// silently passed now say not applicable, and the suite redraws them.
    @Test func notApplicableCases() {
        let decaySum = BuiltinKernel(core: CoreSpec(score: .squared, hasDecay: true, normalization: .sum), mode: .float32)
        let noDecay = BuiltinKernel(core: CoreSpec(score: .squared, hasDecay: false, normalization: .sum), mode: .float32)
        let prefix = PropertyCase(length: 6, keyDim: 2, valueDim: 2, heads: 1, batch: 1, decayAsPrefixSum: true, seed: 3)
        let single = PropertyCase(length: 1, keyDim: 2, valueDim: 2, heads: 1, batch: 1, seed: 3)
        #expect(PropertySuite.replay(.stateRoundTrip, decaySum, prefix).status == .notApplicable)
        // Without decay the prefix-sum flag changes nothing: the round trip applies.
        #expect(PropertySuite.replay(.stateRoundTrip, noDecay, prefix).status == .pass)
        #expect(PropertySuite.replay(.stateRoundTrip, decaySum, single).status == .notApplicable)
        #expect(PropertySuite.replay(.causality, decaySum, single).status == .notApplicable)
        #expect(PropertySuite.replay(.headPermutation, decaySum, single).status == .notApplicable)
        // The suite redraws them: every applicable property gets its cases, and the report says so.
        let report = PropertySuite.run(decaySum, cases: 3, maxLength: 24)
        print(report)
        #expect(report.passed, "\(report)")
        for count in report.counts where count.notApplicable == nil { #expect(count.applicable == 3, "\(count)") }
        #expect(report.notApplicable.map(\.property) == ["linear in V"])
    }
}

extension BuiltinKernel: CustomTestStringConvertible {
    public var testDescription: String { name }
}
