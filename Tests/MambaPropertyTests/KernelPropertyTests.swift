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
    @Test(arguments: PropertyGenerators.kernels)
    func formsAgree(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.formsAgree, kernel)
    }

    /// Proofs/T8 and T9: every form is as accurate against the MPFR oracle as
    /// the built-in baselines allow.
    @Test(arguments: PropertyGenerators.kernels)
    func accuracyAgainstOracle(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.accuracyAgainstOracle, kernel)
    }

    /// Proofs/T2: outputs at positions ≤ t are bit-identical when every input
    /// after t changes.
    @Test(arguments: PropertyGenerators.kernels)
    func causality(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.causality, kernel)
    }

    /// Proofs/T1: N tokens equal N₁ then N₂ with the final state passed on.
    @Test(arguments: PropertyGenerators.kernels)
    func stateRoundTrip(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.stateRoundTrip, kernel)
    }

    /// Proofs/T6: un-normalised cores are linear in V (bit-exact for ×2).
    @Test(arguments: PropertyGenerators.kernels)
    func linearityInValues(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.linearityInValues, kernel)
    }

    /// Proofs/T6: zero values give zero outputs.
    @Test(arguments: PropertyGenerators.kernels)
    func zeroValues(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.zeroValues, kernel)
    }

    /// Proofs/T6: permuting heads and batch items permutes outputs, bit for bit.
    @Test(arguments: PropertyGenerators.kernels)
    func headPermutation(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.headPermutation, kernel)
    }

    /// Proofs/T6: the scale cancels for sum-normalised linear and squared cores.
    @Test(arguments: PropertyGenerators.kernels)
    func scaleInvariance(kernel: BuiltinKernel) async {
        await PropertyGenerators.check(.scaleInvariance, kernel)
    }
}

extension BuiltinKernel: CustomTestStringConvertible {
    public var testDescription: String { name }
}
