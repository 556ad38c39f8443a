import Testing
import MambaOracle
import MambaPrecision
import MambaVariants

/// The oracle checks itself: its three MPFR forms agree (Proofs/T1-forms-equivalence.md).
@Suite struct ReferenceFormsTests {
    /// Largest relative difference between two MPFR results, measured against
    /// the larger magnitude of the row (so a near-zero element compares on the row's scale).
    static func maxRelativeDifference(_ a: [BigFloat], _ b: [BigFloat]) -> Double {
        precondition(a.count == b.count)
        var worst = 0.0
        for (x, y) in zip(a, b) {
            let d = (x - y).doubleValue.magnitude
            let scale = max(x.doubleValue.magnitude, y.doubleValue.magnitude, 1e-300)
            worst = max(worst, d / scale)
        }
        return worst
    }

    @Test(arguments: CoreSpec.all)
    func formsAgree(spec: CoreSpec) throws {
        let seed: UInt64 = 1000 + UInt64(CoreSpec.all.firstIndex(of: spec)!)
        for (n, withState) in [(1, false), (13, true), (20, false)] {
            let p = CoreProblem.random(spec: spec, batch: 1, heads: 2, length: n, keyDim: 4, valueDim: 3,
                                       withInitialState: withState, seed: seed)
            let quad = try Reference.quadratic(p, precision: 128, finalState: true)
            let rec = try Reference.recurrent(p, precision: 128)
            // Bound: each form does O(N·F) roundings of relative size 2^-128 on
            // terms whose magnitude sum is at most cond·|y|; with cond < 2^40 for
            // these well-scaled cases, agreement to 2^-80 holds with a wide margin.
            let bound = 0x1p-80
            #expect(Self.maxRelativeDifference(quad.o, rec.o) < bound, "seed \(seed) n=\(n) recurrent")
            for chunk in [1, 3, 7, 64] {
                let ch = try Reference.chunked(p, chunkSize: chunk, precision: 128)
                #expect(Self.maxRelativeDifference(quad.o, ch.o) < bound, "seed \(seed) n=\(n) chunk=\(chunk)")
                if let s = quad.finalStateS {
                    #expect(Self.maxRelativeDifference(s, ch.finalStateS!) < bound, "final state chunk=\(chunk)")
                }
            }
            if let s = quad.finalStateS {
                #expect(Self.maxRelativeDifference(s, rec.finalStateS!) < bound, "final state seed \(seed)")
            }
            if let z = quad.finalStateZ {
                #expect(Self.maxRelativeDifference(z, rec.finalStateZ!) < bound, "final z seed \(seed)")
            }
        }
    }
}

/// The oracle's two accumulation paths for Σ_j g_ij v_j agree (Proofs/T7):
/// the 256-bit fixed-point accumulator (p ≤ 128, Float32 values) and p-bit
/// MPFR sums (taken at p = 129, which disables the fixed-point path).
@Suite struct ReferenceAccumulationTests {
    @Test(arguments: CoreSpec.all)
    func fixedPointAndMPFRSumsAgree(spec: CoreSpec) throws {
        for dist in [InputDistribution.paper, .fla, .strongDecay] {
            let p = CoreProblem.random(spec: spec, heads: 2, length: 40, keyDim: 5, valueDim: 3, distribution: dist,
                                       withInitialState: true, seed: 21)
            let fixed = try Reference.quadratic(p, precision: 128)
            let mpfr = try Reference.quadratic(p, precision: 129)
            // Both are within γ_{2N+10}·2^-128·magnitude of the exact value (T7);
            // with magnitude/|y| < 2^20 on these inputs, 2^-90 relative is safe.
            for i in 0..<fixed.o.count where !fixed.o[i].isNaN {
                let y = mpfr.o[i].doubleValue
                let d = (fixed.o[i] - mpfr.o[i]).doubleValue.magnitude
                #expect(d <= 0x1p-90 * max(abs(y), fixed.magnitude[i] * 0x1p-20), "\(spec) \(dist) [\(i)]")
            }
        }
    }
}
