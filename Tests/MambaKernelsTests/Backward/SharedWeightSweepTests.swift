@testable import MambaKernels
import MambaVariants
import Testing

/// The forward forms and the backward blocks form their weights with one
/// sweep (`WeightSweep`): for every core with a feature map and every
/// precision mode, the backward's unshifted weights are bit for bit the
/// forward's, with the decay given as pair exponents or as log-decay
/// differences, and the derivative factors follow `f'`.
@Suite("Forward and backward share one weight sweep")
struct SharedWeightSweepTests {
    @Test(arguments: CoreSpec.all.filter { $0.score.hasFeatureMap })
    func backwardWeightsAreTheForwardWeights(spec: CoreSpec) {
        let cols = 37
        var g = SeededGenerator(seed: 77 + UInt64(CoreSpec.all.firstIndex(of: spec)!))
        let x = (0..<cols).map { _ in Float(g.normal(std: 2)) }
        // Log decays l_j decreasing, so l_i − l_j ≤ 0 for the row i = cols − 1; one huge step (a flush).
        var l = [Float](repeating: 0, count: cols)
        for j in 1..<cols { l[j] = l[j - 1] - Float(g.uniform(0, 0.5)) - (j == 5 ? 60 : 0) }
        let li = l[cols - 1]
        let exponents = l.map { li - $0 }
        for mode in PrecisionMode.allCases {
            let ctx = CoreContext(spec: spec, scale: 0.375, mode: mode, options: KernelOptions())
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: cols)
            let p = UnsafeMutablePointer<Float>.allocate(capacity: cols), d = UnsafeMutablePointer<Float>.allocate(capacity: cols)
            defer { tmp.deallocate(); p.deallocate(); d.deallocate() }
            for decay in [0, 1, 2] {   // none, differences l_i − l_j, pair exponents
                var forward = x
                forward.withUnsafeMutableBufferPointer { f in
                    l.withUnsafeBufferPointer { lj in
                        switch decay {
                        case 0: Rows.weights(ctx, f.baseAddress!, cols, li: 0, lj: nil, tmp: tmp)
                        case 1: Rows.weights(ctx, f.baseAddress!, cols, li: li, lj: lj.baseAddress!, tmp: tmp)
                        default: exponents.withUnsafeBufferPointer { e in
                            Rows.weights(ctx, f.baseAddress!, cols, exponents: e.baseAddress!, tmp: tmp)
                        }
                        }
                    }
                }
                let liRow = [li]
                x.withUnsafeBufferPointer { xb in
                    l.withUnsafeBufferPointer { lb in
                        liRow.withUnsafeBufferPointer { lr in
                            exponents.withUnsafeBufferPointer { e in
                                PairWeights.compute(ctx, x: xb.baseAddress!, rows: 1, cols: cols, diagonalOffset: nil,
                                                    li: decay == 1 ? lr.baseAddress! : nil,
                                                    lj: decay == 1 ? lb.baseAddress! : nil, shift: nil,
                                                    exponents: decay == 2 ? e.baseAddress! : nil, p: p, d: d)
                            }
                        }
                    }
                }
                for j in 0..<cols {
                    #expect(p[j].bitPattern == forward[j].bitPattern,
                            "\(spec.name) \(mode) decay \(decay) j \(j): backward \(p[j]) forward \(forward[j])")
                    #expect(d[j].isFinite, "\(spec.name) \(mode) decay \(decay) j \(j): f' factor \(d[j])")
                }
            }
        }
    }
}
