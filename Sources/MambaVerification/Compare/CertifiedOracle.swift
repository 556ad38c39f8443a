import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants

/// The oracle a comparison judges against, certified (Proofs/T7), with the statement reports carry.
public struct ComparisonOracle: @unchecked Sendable {
    /// The p-bit oracle's output (its magnitudes feed the verdict's allowances)
    /// with `o` and the final state replaced by certified values
    /// (`CertifiedOutput.judgedValues`: within the enclosure's width of the exact
    /// value, ≈ 2^−p relative, or ≈ 2^−75 for elements the double-double first
    /// attempt decided (Proofs/T7, step 6), always below one Float64 ulp; NaN where
    /// undecided, judged as undefined). The magnitudes come from
    /// `Reference.quadraticMagnitudes` (no second numerator pass).
    public let reference: ReferenceOutput
    public let certified: CertifiedOutput
    public let certifiedFinalState: CertifiedFinalState?
    /// E.g. `scale 1/sqrt(48) exact; oracle certified: all 4224 elements correctly rounded (Float64): o 4096, final_state 128`.
    public let statement: String

    /// - Parameter finalState: also certify the final state (and put it in `reference`).
    public init(problem: CoreProblem, precision: Int, finalState: Bool) throws {
        let cap = Swift.max(4096, precision)  // the Ziv loop's cap never below the starting precision
        let c = try Reference.certified(problem, precision: precision, maxPrecision: cap)
        // The p-bit pass only for what the certified one does not give: magnitudes, normalisers.
        var ref = try Reference.quadraticMagnitudes(problem, precision: precision, outputs: c, finalState: finalState)
        var parts = [(name: "o", values: c)]
        let st = finalState ? try Reference.certifiedFinalState(problem, precision: precision, maxPrecision: cap) : nil
        if let st {
            ref.finalStateS = st.s.judgedValues
            parts.append(("final_state", st.s))
            if let z = st.z { ref.finalStateZ = z.judgedValues; parts.append(("final_state_z", z)) }
        }
        reference = ref
        certified = c
        certifiedFinalState = st
        statement = "scale \(problem.scaleSpec); " + CertifiedOutput.summary(parts)
    }
}
