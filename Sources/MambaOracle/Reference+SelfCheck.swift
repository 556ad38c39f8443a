import MambaPrecision
import MambaVariants

/// The oracle's precision self-check (issue 3 item 6, Proofs/T7).
///
/// The quadratic form is evaluated at `p` and `2p` bits. An element agrees
/// to `b = −log₂(|y_p − y_2p| / |y_2p|)` bits; every element must agree to
/// at least `p − 16` bits unless it is ill-conditioned: the rounding error
/// of the p-bit run is at most `γ·2^−p·magnitude` (Proofs/T7), so an element
/// whose condition `κ = magnitude/|y|` explains the loss
/// (`log₂ κ ≥ p − 16 − b − 8`, i.e. within 8 bits of slack) is reported with
/// its condition instead of failing. An element losing more than its
/// condition explains is a defect of the oracle and fails the check.
public struct PrecisionSelfCheck: Sendable {
    public struct Element: Sendable, Equatable {
        public var index: Int
        public var agreedBits: Double
        public var condition: Double
    }
    public var precision: Int
    /// Elements agreeing to fewer than `p − 16` bits whose condition explains it.
    public var illConditioned: [Element]
    /// Elements agreeing to fewer than `p − 16` bits without a large enough condition.
    public var unexplained: [Element]
    /// Minimum agreement over all elements (bits; `.infinity` when all are identical).
    public var minimumAgreedBits: Double
    public var passed: Bool { unexplained.isEmpty }
}

extension Reference {
    public static func precisionSelfCheck(_ p: CoreProblem, precision: Int = 64) throws -> PrecisionSelfCheck {
        let lo = try quadratic(p, precision: precision)
        let hi = try quadratic(p, precision: 2 * precision)
        let cond = hi.condition
        var ill: [PrecisionSelfCheck.Element] = [], bad: [PrecisionSelfCheck.Element] = []
        var minBits = Double.infinity
        let required = Double(precision - 16)
        for i in 0..<hi.o.count {
            let a = lo.o[i], b = hi.o[i]
            let bits: Double
            if a.isNaN || b.isNaN {
                bits = (a.isNaN && b.isNaN) ? .infinity : -.infinity
            } else if b.isZero {
                bits = a.isZero ? .infinity : -.infinity
            } else {
                let rel = (BigFloat(a, precision: 2 * precision) - b).doubleValue.magnitude / b.doubleValue.magnitude
                bits = rel == 0 ? .infinity : -log2(rel)
            }
            minBits = Swift.min(minBits, bits)
            if bits < required {
                let e = PrecisionSelfCheck.Element(index: i, agreedBits: bits, condition: cond[i])
                if log2(cond[i]) >= required - bits - 8 { ill.append(e) } else { bad.append(e) }
            }
        }
        return PrecisionSelfCheck(precision: precision, illConditioned: ill, unexplained: bad,
                                  minimumAgreedBits: minBits)
    }
}

#if canImport(Glibc)
import Glibc
#endif
