import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants

/// The oracle a comparison judges against, certified where the certified
/// oracle covers the problem (Proofs/T7), with the statement reports carry.
public struct ComparisonOracle: @unchecked Sendable {
    /// The p-bit oracle's output with `o` replaced by certified values: each
    /// element is the lower end of its enclosure, within the enclosure's width
    /// (≈ 2^−p relative, far below any verdict threshold) of the exact value;
    /// NaN where the rounding is undecided (judged as undefined, never guessed).
    public let reference: ReferenceOutput
    public let certified: CertifiedOutput?
    /// E.g. `scale 1/sqrt(48) exact; oracle certified: all 4096 elements correctly rounded (Float64)`.
    public let statement: String

    /// - Parameter finalState: also compute the (uncertified, p-bit) final state.
    public init(problem: CoreProblem, precision: Int, finalState: Bool) throws {
        var ref = try Reference.quadratic(problem, precision: precision, finalState: finalState)
        var text = "scale \(problem.scaleSpec)"
        if problem.initialState == nil {
            let c = try Reference.certified(problem, precision: precision)
            ref.o = (0..<c.o.count).map { c.o[$0].isNaN ? BigFloat.nan(precision: precision) : c.lower[$0] }
            certified = c
            text += "; " + c.summary
        } else {
            certified = nil
            text += "; oracle not certified (an initial state is not covered yet): \(precision)-bit values"
        }
        if finalState { text += "; final state not certified (\(precision)-bit values)" }
        reference = ref
        statement = text
    }
}
