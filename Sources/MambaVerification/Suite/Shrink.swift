import MambaVariants

/// Shrinking a failing case (Hypothesis-style, greedy): the smaller configs
/// to try next, most aggressive first. A candidate is kept when the same
/// property still fails on it; shrinking stops when none does. Order: the
/// length (to 1, 2, N/4, N/2, N−1), batch and heads (to 1), the widths (to
/// 16, then halves rounded to multiples of 8, never below 16: kernels
/// commonly require it), the magnitude (to 1), the hazard (to the paper's
/// distribution), the initial state (dropped). Each candidate is strictly
/// smaller in one coordinate, so shrinking terminates.
public enum Shrink {
    /// `minimumLength`: 2 for probes that split the sequence (causality, hand-off), else 1.
    public static func candidates(_ c: CaseConfig, minimumLength: Int = 1) -> [CaseConfig] {
        var out: [CaseConfig] = []
        func with(_ f: (inout CaseConfig) -> Void) {
            var x = c
            f(&x)
            if x != c && !out.contains(x) { out.append(x) }
        }
        for n in [minimumLength, 2, c.length / 4, c.length / 2, c.length - 1] where n >= minimumLength && n < c.length {
            with { $0.length = n }
        }
        with { $0.batch = 1 }
        with { $0.heads = 1 }
        for w in [16, Swift.max(16, (c.keyDim / 2) / 8 * 8)] where w < c.keyDim { with { $0.keyDim = w } }
        for w in [16, Swift.max(16, (c.valueDim / 2) / 8 * 8)] where w < c.valueDim { with { $0.valueDim = w } }
        if c.magnitude != 1 { with { $0.magnitude = 1 } }
        if c.distribution != .paper { with { $0.distribution = .paper } }
        if c.initialState { with { $0.initialState = false } }
        return out
    }

    /// A random config for fuzzing, from `seed` alone: lengths mostly not
    /// multiples of 16, widths 16…128, 1–2 heads and batch elements, every
    /// distribution in `distributions`, initial states on cores with a state,
    /// magnitudes 1 (mostly), 2 or 4.
    public static func draw(seed: UInt64, distributions: [InputDistribution], stateful: Bool,
                            maximumLength: Int, maximumWidth: Int = 128) -> CaseConfig {
        var g = SeededGenerator(seed: seed)
        func pick<T>(_ xs: [T]) -> T { xs[Int(g.next() % UInt64(xs.count))] }
        let ladder = [1, 2, 7, 15, 17, 33, 37, 63, 65, 100, 127, 129, 200, 255, 257, 500, 1000].filter { $0 <= maximumLength }
        let n = g.next() % 2 == 0 ? pick(ladder) : 1 + Int(g.next() % UInt64(Swift.max(1, Swift.min(300, maximumLength))))
        let widths = [16, 24, 32, 48, 64, 80, 128].filter { $0 <= Swift.max(16, maximumWidth) }
        return CaseConfig(batch: 1 + Int(g.next() % 2), heads: 1 + Int(g.next() % 2), length: n,
                          keyDim: pick(widths), valueDim: pick(widths), distribution: pick(distributions),
                          initialState: stateful && g.next() % 2 == 0, magnitude: pick([1, 1, 1, 2, 4]),
                          seed: g.next())
    }
}
