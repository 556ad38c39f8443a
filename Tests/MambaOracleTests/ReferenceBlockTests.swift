import Testing
import MambaOracle
import MambaPrecision
import MambaVariants

/// Block-level oracle: the MPFR core forms agree inside every preset's block,
/// and the block is reproducible at p and 2p bits (Proofs/T1, Proofs/T7).
@Suite struct ReferenceBlockTests {
    @Test(arguments: VariantSpec.presets.map(\.name))
    func blockFormsAgree(name: String) throws {
        let v = VariantSpec(named: name)!
        let seed: UInt64 = 77 + UInt64(VariantSpec.presets.firstIndex(of: v)!)
        let p = BlockProblem.random(variant: v, batch: 1, length: 9, modelDim: 6, heads: 2, headDim: 3, seed: seed)
        let quad = try Reference.block(p, form: .quadratic, precision: 96)
        let rec = try Reference.block(p, form: .recurrent, precision: 96)
        let ch = try Reference.block(p, form: .chunked, chunkSize: 4, precision: 96)
        let hi = try Reference.block(p, form: .quadratic, precision: 192)
        #expect(quad.count == 9 * 6)
        // Outputs are O(1) sums of O(N·d) terms, each rounded at 2^-96; the
        // forms differ by a few hundred roundings at most: 2^-80 is a wide bound.
        for i in 0..<quad.count {
            let scale = max(1e-30, hi[i].doubleValue.magnitude)
            #expect((quad[i] - rec[i]).doubleValue.magnitude / scale < 0x1p-80, "\(name) seed \(seed) recurrent [\(i)]")
            #expect((quad[i] - ch[i]).doubleValue.magnitude / scale < 0x1p-80, "\(name) seed \(seed) chunked [\(i)]")
            // precision self-check: p = 96 against 2p = 192 agrees to p − 16 bits
            #expect((quad[i] - hi[i]).doubleValue.magnitude / scale < 0x1p-80, "\(name) seed \(seed) p vs 2p [\(i)]")
            #expect(quad[i].isFinite)
        }
    }

    @Test func block2MambaMatchesDoubleEvaluation() throws {
        // An independent Double evaluation of the 2mamba block (docs/MATH.md §2 written
        // out directly) agrees with the oracle to ~1e-12 relative: the Double
        // path makes O(N·d) roundings of 2^-53 on O(1)-conditioned sums.
        let v = VariantSpec.twoMamba
        let (n, dm, h, dh) = (7, 5, 2, 3)
        let p = BlockProblem.random(variant: v, length: n, modelDim: dm, heads: h, headDim: dh, seed: 5)
        let w = p.parameters
        let hd = h * dh, ch = 3 * hd
        func mm(_ x: [Double], _ rows: Int, _ inner: Int, _ m: [Double], _ cols: Int) -> [Double] {
            var o = [Double](repeating: 0, count: rows * cols)
            for r in 0..<rows { for c in 0..<cols { for i in 0..<inner { o[r * cols + c] += x[r * inner + i] * m[i * cols + c] } } }
            return o
        }
        let u = mm(p.x, n, dm, w.wQKV, ch)
        var uc = [Double](repeating: 0, count: n * ch)
        for t in 0..<n { for c in 0..<ch {
            uc[t * ch + c] = w.convBias[c]
            for r in 0..<2 where t - 1 + r >= 0 { uc[t * ch + c] += w.convWeight[c * 2 + r] * u[(t - 1 + r) * ch + c] }
        } }
        let al = mm(p.x, n, dm, w.wA, h).map { -softplus($0) }
        var y = [Double](repeating: 0, count: n * hd)
        let s = 1 / Double(dh).squareRoot()
        for hh in 0..<h {
            var L = [Double](repeating: 0, count: n)
            for t in 0..<n { L[t] = (t > 0 ? L[t - 1] : 0) + al[t * h + hh] }
            for i in 0..<n {
                var num = [Double](repeating: 0, count: dh), den = 0.0
                for j in 0...i {
                    var x = 0.0
                    for d in 0..<dh { x += uc[i * ch + hh * dh + d] * uc[j * ch + hd + hh * dh + d] }
                    let wgt = (s * x) * (s * x) * exp(L[i] - L[j])
                    den += wgt
                    for d in 0..<dh { num[d] += wgt * uc[j * ch + 2 * hd + hh * dh + d] }
                }
                for d in 0..<dh { y[i * hd + hh * dh + d] = num[d] / den }
            }
        }
        let expected = mm(y, n, hd, w.wO, dm)
        let got = try Reference.block(p, precision: 128)
        for i in 0..<expected.count {
            #expect(abs(got[i].doubleValue - expected[i]) <= 1e-12 * max(1, abs(expected[i])), "[\(i)]")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
