/// The row test's pooled predictor of a row's error (`Verdict`, Proofs/T9 "Row yardstick").
///
/// A correct kernel's error on row `r` is modelled as `ρ·π_r` with
/// `π_r = (1 − t)·‖y‖_r/Y + t·‖s‖_r/S`: a mix of the row's value norm (errors
/// relative to the value, as when every output is rounded) and its error-scale
/// norm (errors that follow the terms' magnitudes, as under strong decay or
/// cancellation); `Y`, `S` are their RMS over the fitted rows, so that `t`
/// weighs like with like. The mix `t ∈ {0, 0.1, …, 1}` is the one under which
/// the baselines' row errors `d_r` are most uniform — the smallest ratio of
/// the `percent`-th to the 50th percentile of `d_r/π_r` (ties keep the smaller
/// `t`) — and `ρ` is that percentile. Rows with `d_r`, `‖y‖_r` or `‖s‖_r` zero
/// take no part in the fit; with none left, `ρ = 0`.
struct RowPredictor {
    private(set) var mix = 0.0
    private(set) var rho = 0.0
    private var normRMS = 1.0, scaleRMS = 1.0

    init(draws: [Double], norms: [Double], scales: [Double], percent: Int) {
        let fitted = draws.indices.filter {
            draws[$0] > 0 && norms[$0] > 0 && scales[$0] > 0 && draws[$0].isFinite && scales[$0].isFinite
        }
        guard !fitted.isEmpty else { return }
        var yn = ScaledNorm(), sn = ScaledNorm()
        for r in fitted { yn.add(norms[r]); sn.add(scales[r]) }
        let root = Double(fitted.count).squareRoot()
        let y = yn.value / root, s = sn.value / root
        guard y > 0, s > 0, y.isFinite, s.isFinite else { return }
        normRMS = y
        scaleRMS = s
        var bestSpread = Double.infinity
        for step in 0...10 {
            let t = Double(step) / 10
            var ratios = fitted.map { draws[$0] / Self.predict(norms[$0] / y, scales[$0] / s, mix: t) }
            ratios.sort()
            let high = Percentile.nearestRank(of: ratios, percent: percent)
            let median = Percentile.nearestRank(of: ratios, percent: 50)
            guard median > 0, high.isFinite else { continue }
            if high / median < bestSpread { bestSpread = high / median; mix = t; rho = high }
        }
    }

    private static func predict(_ norm: Double, _ scale: Double, mix t: Double) -> Double {
        (1 - t) * norm + t * scale
    }

    /// `π_r` for a row with value norm `norm` and error-scale norm `scale`.
    func predict(norm: Double, scale: Double) -> Double {
        Self.predict(norm / normRMS, scale / scaleRMS, mix: mix)
    }
}
