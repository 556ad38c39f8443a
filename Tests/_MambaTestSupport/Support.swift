import MambaPrecision
import MambaVariants
#if canImport(Glibc)
import Glibc
#endif

/// Shared helpers for MambaCheck's test targets (the `_TestSupport` pattern of
/// swift-numerics): seeds, case-count scaling and comparisons.
public enum TestSupport {
    /// `MAMBACHECK_PROPERTY_SCALE=k` multiplies property-test case counts
    /// (nightly or pre-release runs); default 1.
    public static var propertyScale: Int {
        guard let s = getenv("MAMBACHECK_PROPERTY_SCALE").map({ String(cString: $0) }), let k = Int(s), k > 0 else {
            return 1
        }
        return k
    }

    /// `MAMBACHECK_SEED=n` replays one case: every seeded test uses it instead
    /// of its own seeds when set. Failing tests print the seed they used.
    public static var replaySeed: UInt64? {
        getenv("MAMBACHECK_SEED").flatMap { UInt64(String(cString: $0)) }
    }

    /// Seeds for `count` cases (scaled), or the single replay seed.
    public static func seeds(_ count: Int, base: UInt64) -> [UInt64] {
        if let s = replaySeed { return [s] }
        return (0..<UInt64(count * propertyScale)).map { base &+ $0 &* 0x9E37_79B9 }
    }

    /// Largest `|a − b| / max(|a|, |b|, floor)` over elements; NaN in exactly
    /// one of a pair counts as infinite difference, NaN in both as agreement.
    public static func maxRelativeDifference(_ a: [Double], _ b: [Double], floor: Double = 1e-300) -> Double {
        precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
        var worst = 0.0
        for (x, y) in zip(a, b) {
            if x.isNaN || y.isNaN {
                if x.isNaN != y.isNaN { return .infinity }
                continue
            }
            let d = abs(x - y)
            if d == 0 { continue }
            worst = max(worst, d / max(abs(x), abs(y), floor))
        }
        return worst
    }

    /// Same for MPFR values (compared in Double after an exact subtraction).
    public static func maxRelativeDifference(_ a: [BigFloat], _ b: [BigFloat]) -> Double {
        precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
        var worst = 0.0
        for (x, y) in zip(a, b) {
            if x.isNaN || y.isNaN {
                if x.isNaN != y.isNaN { return .infinity }
                continue
            }
            let d = (x - y).doubleValue.magnitude
            if d == 0 { continue }
            worst = max(worst, d / max(x.doubleValue.magnitude, y.doubleValue.magnitude, 1e-300))
        }
        return worst
    }
}
