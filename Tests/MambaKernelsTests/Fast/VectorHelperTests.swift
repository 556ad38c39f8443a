import CHalf
@testable import MambaKernels
import Testing

/// The vectorised helpers of the binary16 and chunked paths against their
/// one-element-at-a-time definitions, on lengths around the vector widths
/// (8, 16) and with the values that trip vector code: ±0, NaN, ±∞.
@Suite("vector helpers: the same results as their scalar definitions")
struct VectorHelperTests {
    static let specials: [Float] = [0, -0.0, .nan, .infinity, -.infinity, 0x1p-149, -3.5]

    /// A transpose is a copy: every element lands at its transposed place,
    /// and nothing outside the `columns × rows` block of `out` is written.
    @Test(arguments: [Int32(0), 1])
    func transposeIsTheDefinition(path: Int32) {
        var rng = SplitMix(seed: 0x7A05_E000 + UInt64(path))
        for trial in 0..<80 {
            let rows = Int(rng.next() % 41), columns = Int(rng.next() % 41)
            let ldx = columns + Int(rng.next() % 5), ldo = rows + Int(rng.next() % 5)
            let x = (0..<Swift.max(rows * ldx, 1)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 7 }
            var out = [Float](repeating: -42, count: Swift.max(columns * ldo, 1))
            let ran = x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
                mc_transpose_float_on(path, xp.baseAddress!, ldx, rows, columns, op.baseAddress!, ldo)
            } }
            if ran == 0 { continue }  // this CPU lacks the path
            for j in 0..<columns {
                for i in 0..<ldo {
                    let want = i < rows ? x[i * ldx + j] : -42
                    #expect(out[j * ldo + i].bitPattern == want.bitPattern, "trial \(trial) \(rows)×\(columns) at (\(j), \(i))")
                }
            }
        }
    }

    /// `allZero` is true exactly when every element compares equal to 0
    /// (−0 counts as zero, NaN does not), whatever the block a nonzero sits in.
    @Test func allZeroIsTheDefinition() {
        var rng = SplitMix(seed: 0xA11_2E50)
        for trial in 0..<400 {
            let count = Int(rng.next() % 70)
            var x = (0..<Swift.max(count, 1)).map { _ in rng.next() & 1 == 0 ? Float(0) : -0.0 }
            if count > 0 && trial % 3 != 0 {
                x[Int(rng.next() % UInt64(count))] = Self.specials[2 + Int(rng.next() % UInt64(Self.specials.count - 2))]
            }
            let want = x.prefix(count).allSatisfy { $0 == 0 }
            let got = x.withUnsafeBufferPointer { HalfGemmSkips.allZero($0.baseAddress!, count) }
            #expect(got == want, "trial \(trial), count \(count)")
        }
    }

    /// `maxMagnitude` is `Swift.max(m, |x|)` folded from 0 in order: NaN ignored,
    /// ∞ kept, −0 as 0.
    @Test func maxMagnitudeIsTheDefinition() {
        var rng = SplitMix(seed: 0x3A_0A61)
        for trial in 0..<400 {
            let count = Int(rng.next() % 70)
            var x = (0..<Swift.max(count, 1)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 13 }
            for _ in 0..<Int(rng.next() % 4) where count > 0 {
                x[Int(rng.next() % UInt64(count))] = Self.specials[Int(rng.next() % UInt64(Self.specials.count))]
            }
            var want: Float = 0
            for e in 0..<count { want = Swift.max(want, abs(x[e])) }
            let got = x.withUnsafeBufferPointer { ChunkedForm.maxMagnitude($0.baseAddress!, count) }
            #expect(got.bitPattern == want.bitPattern, "trial \(trial), count \(count): \(got) vs \(want)")
        }
    }
    /// The packed second-order products: row `e` of the output is `x_i ∘ d_i`
    /// (`j = i`) or `x_i ∘ y_j` (`i < j`) in upper-triangle order, one product per
    /// element, on every path this CPU has, for lane counts around 8 and 16.
    @Test(arguments: [Int32(0), 1, 2])
    func pairProductsAreTheDefinition(path: Int32) {
        var rng = SplitMix(seed: 0x9A12_0000 + UInt64(path))
        for trial in 0..<60 {
            let dk = 1 + Int(rng.next() % 9), rows = 1 + Int(rng.next() % 40)
            func matrix() -> [Float] {
                (0..<(dk * rows)).map { _ in
                    rng.next() % 9 == 0 ? Self.specials[Int(rng.next() % UInt64(Self.specials.count))]
                                        : Float(Int(rng.next() % 2001) - 1000) / 9
                }
            }
            let x = matrix(), d = matrix(), y = matrix()
            let f = dk * (dk + 1) / 2
            var out = [Float](repeating: -42, count: f * rows + 3)
            let ran = out.withUnsafeMutableBufferPointer { o in
                mc_pair_products_on(path, x, d, y, dk, rows, o.baseAddress!)
            }
            if ran == 0 { continue }  // this CPU lacks the path
            var e = 0
            for i in 0..<dk {
                for j in i..<dk {
                    for r in 0..<rows {
                        let want = x[i * rows + r] * (j == i ? d[i * rows + r] : y[j * rows + r])
                        let got = out[e * rows + r]
                        #expect((want.isNaN && got.isNaN) || want.bitPattern == got.bitPattern,
                                "path \(path) trial \(trial) dk \(dk) rows \(rows) (\(i), \(j), \(r))")
                    }
                    e += 1
                }
            }
            #expect(out[(f * rows)...].allSatisfy { $0 == -42 }, "path \(path) trial \(trial): wrote past the end")
        }
    }
}
