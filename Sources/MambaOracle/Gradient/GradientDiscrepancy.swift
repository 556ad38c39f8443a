import CMPFR
import MambaPrecision

/// How far one gradient tensor is from a reference, norm-wise:
/// `relativeError = max_e |x_e − r_e| / max(max_e |r_e|, floor)` and
/// `agreedBits = −log₂(relativeError)`.
///
/// The norm-wise measure (max-norm of the difference over max-norm of the
/// reference) is used instead of an element-wise one because gradient
/// entries can be zero or nearly so (masked ReLU entries, the diagonal-only
/// `dL` of a one-token sequence) without the tensor being ill-determined.
/// Differences are formed in MPFR at the larger of the two precisions, so
/// errors far below 2^−1074 are still measured. NaN in both tensors at the
/// same position counts as agreement; NaN in one only, or a tensor present
/// in one result but not the other, gives `relativeError = ∞`.
///
/// `floor` (default 0) is for tensors that may vanish identically while
/// the others do not — e.g. `dq` of a sum-normalised relu-linear core with
/// `dk = 1`, whose output is invariant to the scale of `q̃`: the exact
/// gradient is 0, an evaluation returns rounding noise, and only an absolute
/// scale (such as a small fraction of the largest gradient of the problem)
/// says whether that noise is small.
public struct GradientDiscrepancy: Sendable, CustomStringConvertible {
    /// `dq`, `dk`, `dv`, `dL`, `da`, `dInitialState` or `dInitialStateZ`.
    public var name: String
    public var count: Int
    /// `max |x − r|` (rounded to Double; may underflow to 0 below 2^−1074).
    public var maxAbsoluteError: Double
    /// `max |r|`.
    public var referenceMaximum: Double
    /// `maxAbsoluteError / max(referenceMaximum, floor)` (0 when both
    /// tensors are identical, ∞ when that denominator is zero and the
    /// difference is not).
    public var relativeError: Double
    /// `−log₂(relativeError)`, computed in MPFR (∞ for identical tensors).
    public var agreedBits: Double
    /// Why the comparison is infinite, when it is structural (missing tensor, NaN).
    public var note: String?

    public var description: String {
        let bits = agreedBits.isInfinite ? (agreedBits > 0 ? "exact" : "none") : String(Int(agreedBits.rounded(.down)))
        return "\(name): rel \(relativeError) (\(bits) bits), max abs \(maxAbsoluteError), |ref| \(referenceMaximum)"
            + (note.map { " [\($0)]" } ?? "")
    }
}

extension ReferenceGradients {
    /// Norm-wise discrepancy of each gradient of `self` against `reference`
    /// (every tensor present in either), with an optional absolute `floor`
    /// for the reference magnitude (see `GradientDiscrepancy`).
    public func discrepancies(against reference: ReferenceGradients, floor: Double = 0) -> [GradientDiscrepancy] {
        let mine = Dictionary(uniqueKeysWithValues: named.map { ($0.name, $0.values) })
        let theirs = Dictionary(uniqueKeysWithValues: reference.named.map { ($0.name, $0.values) })
        let order = ["dq", "dk", "dv", "dL", "da", "dInitialState", "dInitialStateZ"]
        return order.compactMap { name in
            switch (mine[name], theirs[name]) {
            case (nil, nil): return nil
            case (let a?, let b?): return GradientDiscrepancy.measure(name: name, a, against: b, floor: floor)
            case (let a, let b):
                return GradientDiscrepancy(name: name, count: (a ?? b)!.count, maxAbsoluteError: .infinity,
                                           referenceMaximum: .nan, relativeError: .infinity, agreedBits: -.infinity,
                                           note: a == nil ? "missing in the result" : "missing in the reference")
            }
        }
    }

    /// The smallest `agreedBits` over all tensors against `reference`.
    public func minimumAgreedBits(against reference: ReferenceGradients, floor: Double = 0) -> Double {
        discrepancies(against: reference, floor: floor).map(\.agreedBits).min() ?? .infinity
    }

    /// The largest magnitude of any gradient entry (NaN entries skipped), in
    /// Double: a natural absolute scale for `floor`.
    public var largestMagnitude: Double {
        named.reduce(0.0) { m, t in
            t.values.reduce(m) { m, x in x.isNaN ? m : Swift.max(m, x.doubleValue.magnitude) }
        }
    }
}

extension GradientDiscrepancy {
    /// Norm-wise discrepancy of `a` against the reference `r` (same length).
    public static func measure(name: String, _ a: [BigFloat], against r: [BigFloat],
                               floor: Double = 0) -> GradientDiscrepancy {
        guard a.count == r.count else {
            return GradientDiscrepancy(name: name, count: a.count, maxAbsoluteError: .infinity, referenceMaximum: .nan,
                                       relativeError: .infinity, agreedBits: -.infinity,
                                       note: "length \(a.count) vs \(r.count)")
        }
        let prec = Swift.max(a.map(\.precision).max() ?? 53, r.map(\.precision).max() ?? 53)
        let diff = BigFloat(precision: prec), maxDiff = BigFloat(0, precision: prec)
        let mag = BigFloat(precision: prec), maxRef = BigFloat(0, precision: prec)
        var nanMismatch = 0
        for (x, y) in zip(a, r) {
            if x.isNaN || y.isNaN {
                if x.isNaN != y.isNaN { nanMismatch += 1 }
                continue
            }
            diff.setDifference(x, y)
            diff.setMagnitude(diff)
            if diff > maxDiff { maxDiff.set(diff) }
            mag.setMagnitude(y)
            if mag > maxRef { maxRef.set(mag) }
        }
        if nanMismatch > 0 {
            return GradientDiscrepancy(name: name, count: a.count, maxAbsoluteError: .nan,
                                       referenceMaximum: maxRef.doubleValue, relativeError: .infinity,
                                       agreedBits: -.infinity, note: "\(nanMismatch) NaN in one tensor only")
        }
        let denominator = BigFloat(Swift.max(floor, 0), precision: prec)
        if maxRef > denominator { denominator.set(maxRef) }
        let rel: Double, bits: Double
        if maxDiff.isZero {
            rel = 0; bits = .infinity
        } else if denominator.isZero {
            rel = .infinity; bits = -.infinity
        } else {
            let q = maxDiff / denominator
            rel = q.doubleValue
            bits = q.withUnsafeMPFR { p in
                _ = mpfr_log2(p, p, MPFR_RNDN)
                return -mpfr_get_d(p, MPFR_RNDN)
            }
        }
        return GradientDiscrepancy(name: name, count: a.count, maxAbsoluteError: maxDiff.doubleValue,
                                   referenceMaximum: maxRef.doubleValue, relativeError: rel, agreedBits: bits, note: nil)
    }
}
