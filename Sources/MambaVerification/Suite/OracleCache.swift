import Foundation
import MambaOracle
import MambaVariants

/// The MPFR oracle's results shared by every probe of a campaign that needs
/// them for the same problem: the accuracy probe of a case, the state
/// hand-off of the same whole sequence, the second entry point on the same
/// inputs and a packed batch's sequences judged against their runs one by
/// one all use one oracle evaluation.
///
/// Problems are keyed by their contents — spec, shape, scale, and the bit
/// pattern of every input value (so `+0` and `−0` are different problems) —
/// and the working precision; a cached result is therefore the one a fresh
/// evaluation would give (the oracle is deterministic: Proofs/T7), and
/// sharing it changes no verdict and no report byte. A request made while
/// another worker evaluates the same problem waits for that evaluation
/// rather than repeating it. An output oracle evaluated with the final
/// state also serves requests without it (the outputs are the same).
///
/// Entries are kept for the cache's lifetime (one `suite judge`).
public final class OracleCache: @unchecked Sendable {
    struct Key: Hashable {
        var kind: String
        var text: String
        var bits: [UInt64]
    }

    private let condition = NSCondition()
    private var done: [Key: Any] = [:]
    private var running: Set<Key> = []
    private var counts = (evaluations: 0, reuses: 0)

    public init() {}

    /// Evaluations made and results reused so far.
    public var statistics: (evaluations: Int, reuses: Int) {
        condition.lock(); defer { condition.unlock() }
        return counts
    }

    /// `Reference.quadratic(p, precision:, finalState:)`, evaluated once per problem.
    public func output(_ p: CoreProblem, precision: Int, finalState: Bool) throws -> ReferenceOutput {
        let withState = Self.key(p, kind: "o+state", precision: precision)
        if finalState {
            return try value(withState, alternatives: []) {
                try Reference.quadratic(p, precision: precision, finalState: true)
            }
        }
        return try value(Self.key(p, kind: "o", precision: precision), alternatives: [withState]) {
            try Reference.quadratic(p, precision: precision, finalState: false)
        }
    }

    /// `Reference.gradients(g, precision:)`, evaluated once per problem and upstream gradient.
    public func gradients(_ g: GradientProblem, precision: Int) throws -> ReferenceGradients {
        var key = Self.key(g.core, kind: "gradients", precision: precision)
        key.bits += g.dO.map(\.bitPattern)
        return try value(key, alternatives: []) { try Reference.gradients(g, precision: precision) }
    }

    /// The cached value for `key` (or for one of `alternatives`, which serve it too), else `compute()`'s.
    private func value<T>(_ key: Key, alternatives: [Key], compute: () throws -> T) throws -> T {
        condition.lock()
        while true {
            for k in [key] + alternatives {
                if let v = done[k] as? T {
                    counts.reuses += 1
                    condition.unlock()
                    return v
                }
            }
            if running.contains(key) || alternatives.contains(where: running.contains) {
                condition.wait()
                continue
            }
            break
        }
        running.insert(key)
        counts.evaluations += 1
        condition.unlock()
        let result: Result<T, Error> = Result { try compute() }
        condition.lock()
        running.remove(key)
        if case .success(let v) = result { done[key] = v }
        condition.broadcast()
        condition.unlock()
        return try result.get()
    }

    static func key(_ p: CoreProblem, kind: String, precision: Int) -> Key {
        var bits = p.q.map(\.bitPattern) + p.k.map(\.bitPattern) + p.v.map(\.bitPattern)
        var decay = "none"
        switch p.decay {
        case .perStep(let a)?: decay = "step"; bits += a.map(\.bitPattern)
        case .prefixSum(let l)?: decay = "prefix"; bits += l.map(\.bitPattern)
        case nil: break
        }
        var state = "none"
        if let s = p.initialState {
            state = "s\(s.s.count)z\(s.z?.count ?? -1)"
            bits += s.s.map(\.bitPattern) + (s.z ?? []).map(\.bitPattern)
        }
        let text = "\(p.spec.name) b\(p.batch) h\(p.heads) n\(p.length) dk\(p.keyDim) dv\(p.valueDim) "
            + "scale \(p.scaleSpec.value) \(p.scaleSpec.received) decay \(decay) state \(state) p\(precision)"
        return Key(kind: kind, text: text, bits: bits)
    }
}
