@testable import MambaOracle
import MambaPrecision
import MambaVariants
import Testing

/// Exact ties (Proofs/T7, step 4): a weighted sum of exactly representable
/// terms that the fixed-point grid holds without truncation is known exactly,
/// so an output lying exactly halfway between two Doubles is decided (ties to
/// even) instead of escalating to the precision cap. Real fp16 inputs without
/// decay make such ties common (FLA's fused_recurrent_linear_attn, fp16,
/// N = 1000: 4,895 of 64,000 outputs were undecided at 4096 bits before).
struct ExactTieTests {
    /// `o_1 = q·k_0 v_0 + q·k_1 v_1` with scale 1 and dk = dv = 1.
    static func problem(_ v1: Double) -> CoreProblem {
        CoreProblem(spec: CoreSpec(score: .linear, hasDecay: false, normalization: .none), batch: 1, heads: 1,
                    length: 2, keyDim: 1, valueDim: 1, q: [1, 1], k: [1, 1], v: [1, v1], decay: nil,
                    scaleSpec: OracleScale(decimal: "1")!)
    }

    @Test(arguments: [(0x1p-53, 1.0),                          // 1 + 2^-53: halfway, even is 1
                      (3 * 0x1p-53, 1 + 0x1p-51),              // 1 + 3·2^-53: halfway, even is 1 + 2^-51
                      (-0x1p-54, 1 - 0x1p-54)])                // 1 − 2^-54: exactly representable
    func exactTiesAreDecidedToEven(_ v1: Double, _ expected: Double) throws {
        let c = try Reference.certified(Self.problem(v1), precision: 128, maxPrecision: 4096, decimalDigits: nil,
                                        fault: .none)
        #expect(c.undecided.isEmpty, "\(c.undecided)")
        #expect(c.o[1] == expected, "o_1 = \(c.o[1]), expected \(expected)")
        #expect(c.finalPrecision == 128, "an exact sum must not raise the precision")
    }

    /// Random fp16-valued inputs, no decay: every output decided at the first
    /// precision, and each one the correctly rounded independent value.
    @Test func halfPrecisionInputsWithoutDecayAreAllDecided() throws {
        var p = CoreProblem.random(spec: CoreSpec(score: .linear, hasDecay: false, normalization: .none),
                                   length: 300, keyDim: 16, valueDim: 8, seed: 11)
        p.q = p.q.map { Double(Float16($0)) }
        p.k = p.k.map { Double(Float16($0)) }
        p.v = p.v.map { Double(Float16($0)) }
        let c = try Reference.certified(p, precision: 128, maxPrecision: 4096, decimalDigits: nil, fault: .none)
        #expect(c.undecided.isEmpty, "\(c.undecided.count) undecided")
        let ind = CertifiedOracleTests.independent(p)
        let wrong = (0..<ind.count).filter { ind[$0].doubleValue != c.o[$0] }
        #expect(wrong.isEmpty, "\(wrong.count) outputs differ from the independent value rounded to nearest")
    }

    /// A planted bug: the fixed-point sum taken as exact although a term lost
    /// every bit below the grid. `o_2 = 1 − 1 + x` with `x ≈ 2^−300`: the
    /// 256-bit grid under a unit term ends near 2^−250, so `x` is truncated
    /// away and only the `m·2^lsb` bound keeps it enclosed; without the bound
    /// the enclosure is `[0, 0]` and misses the exact value.
    @Test func truncationAssumedExactIsCaught() throws {
        let x = 0x1p-300 * (1 + 0x1p-40)
        let p = CoreProblem(spec: CoreSpec(score: .linear, hasDecay: false, normalization: .none), batch: 1, heads: 1,
                            length: 3, keyDim: 1, valueDim: 1, q: [1, 1, 1], k: [1, 1, 1], v: [1, -1, x], decay: nil,
                            scaleSpec: OracleScale(decimal: "1")!)
        let good = try Reference.certified(p, precision: 128, maxPrecision: 4096, decimalDigits: nil, fault: .none)
        #expect(good.undecided.isEmpty && good.o == [1, 0, x], "\(good.o)")
        let bad = try Reference.certified(p, precision: 128, maxPrecision: 4096, decimalDigits: nil,
                                          fault: .truncationAssumedExact)
        #expect(bad.o[2] != x, "the planted bug went unnoticed")
    }
}
