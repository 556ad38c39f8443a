import MambaPrecision

/// A hint, never a verdict: a tensor stored in Float32 that passes while using
/// almost none of an allowance sized for 16-bit or TF32 dot operands.
///
/// Under `fp16-acc32` or `bf16-acc32` the baselines round their dot-product
/// operands to 16 bits (decayed keys, the carried state), so a Float32-stored
/// final state or decay gradient may err at 16-bit level. A kernel that loads
/// its 16-bit inputs into Float32 registers and never rounds an intermediate
/// (FLA's `fused_recurrent` kernels: elementwise, no tensor-core dots) errs at
/// Float32 level, thousands of times less, and any bug smaller than 16-bit
/// noise passes. Measured on FLA's fused_recurrent_simple_gla (bf16, N = 1000,
/// H100): norm shares 3.9e-4 (final state), 5.5e-5 (`da`), 2.3e-4
/// (`dinitial_state`) declared `bf16`; 0.16–0.49 declared `float32`, which is
/// what its source computes in. Correct chunked kernels' Float32 final states
/// use 0.2–0.45, so a share below `threshold` means the declaration, not the
/// kernel, sets the allowance. Likewise TF32: IEEE Float32 kernels declared
/// `tf32` use 6e-5–7e-4 (FLA's chunk_simple_gla and the Mamba-2 SSD with
/// `TRITON_F32_DEFAULT=ieee`), correct TF32 kernels 0.4–0.72 (Fixtures/real).
public enum LooseDeclaration {
    /// Norm shares below this (1%: the allowance is over 100x the error) are noted.
    public static let threshold = 0.01

    /// `verdict` with a note when it passed a Float32-stored tensor at a norm share
    /// below `threshold` under 16-bit operands (unchanged otherwise).
    public static func noted(_ verdict: Verdict, storage: NumberFormat, arithmetic: DeclaredArithmetic) -> Verdict {
        guard verdict.passed, verdict.normwise.applicable, storage == .binary32,
              [NumberFormat.binary16, .bfloat16, .tf32].contains(arithmetic.operands),
              verdict.normwise.share < threshold else { return verdict }
        var v = verdict
        let share = "used \(NumberText.significant(verdict.normwise.share, digits: 2)) of its norm allowance: "
        let hint = arithmetic.operands == .tf32
            ? share + "TF32 dots allow far more error than this kernel makes; if its dots are IEEE Float32 "
                + "(TRITON_F32_DEFAULT=ieee, torch's allow_tf32 off), --arith float32 judges it sharply"
            : share + "16-bit operands allow far more error than this kernel makes; if it computes in Float32 "
                + "registers (no 16-bit dot operands, e.g. FLA's fused_recurrent), --arith float32 judges it sharply"
        v.note = [v.note, hint].compactMap { $0 }.joined(separator: "; ")
        v.reason = v.describe()
        return v
    }
}
