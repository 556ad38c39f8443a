/// Deterministic percentiles by the nearest-rank method.
///
/// For `n` values sorted ascending, the p-th percentile (0 ≤ p ≤ 100) is the
/// value of rank `⌈p·n/100⌉` (1-based), with rank 0 read as rank 1. It is
/// always one of the values (no interpolation), so it is exact, independent
/// of summation order, and identical on every platform. The median (p = 50)
/// of an even count is the lower of the two middle values. p = 100 is the maximum.
public enum Percentile {
    /// The nearest-rank `percent`-th percentile of `sorted` (ascending, no NaN);
    /// 0 for an empty array.
    ///
    /// - Precondition: `0 ≤ percent ≤ 100`.
    public static func nearestRank(of sorted: [Double], percent: Int) -> Double {
        precondition((0...100).contains(percent), "percentile \(percent) is outside 0...100")
        guard !sorted.isEmpty else { return 0 }
        let rank = Swift.max(1, (percent * sorted.count + 99) / 100)     // ⌈p·n/100⌉ in integers
        return sorted[rank - 1]
    }
}
