import MambaVariants

/// The input transformations behind the property probes.
extension CoreProblem {
    /// The problem with every input of tokens `t+1 … N−1` (q, k, v and the
    /// per-step decay) replaced by the same tokens of `other` (same shape):
    /// the causality probe's pair. A causal kernel's `o[…, 0…t, …]` is
    /// bit-identical on the two (docs/MATH.md §3.5, Proofs/T2): `y_i` is a
    /// function of tokens `0…i` and the initial state only.
    public func perturbed(after t: Int, from other: CoreProblem) -> CoreProblem {
        precondition(other.length == length && other.keyDim == keyDim && other.valueDim == valueDim
                     && other.sequences == sequences)
        var p = self
        let n = length
        for seq in 0..<sequences {
            for i in (t + 1)..<Swift.max(t + 1, n) {
                for d in 0..<keyDim {
                    p.q[(seq * n + i) * keyDim + d] = other.q[(seq * n + i) * keyDim + d]
                    p.k[(seq * n + i) * keyDim + d] = other.k[(seq * n + i) * keyDim + d]
                }
                for d in 0..<valueDim { p.v[(seq * n + i) * valueDim + d] = other.v[(seq * n + i) * valueDim + d] }
            }
        }
        if case .perStep(var a)? = decay, case .perStep(let b)? = other.decay {
            for seq in 0..<sequences { for i in (t + 1)..<Swift.max(t + 1, n) { a[seq * n + i] = b[seq * n + i] } }
            p.decay = .perStep(a)
        }
        return p
    }

    /// Tokens `range` of every sequence, per-step decays included; the
    /// initial state is kept only when the range starts at 0 (a later part
    /// starts from the state handed over to it).
    public func tokens(_ range: Range<Int>) -> CoreProblem {
        precondition(range.lowerBound >= 0 && range.upperBound <= length && !range.isEmpty)
        let n = length, m = range.count
        func cut(_ x: [Double], _ w: Int) -> [Double] {
            var out: [Double] = []
            out.reserveCapacity(sequences * m * w)
            for seq in 0..<sequences { out += x[(seq * n + range.lowerBound) * w ..< (seq * n + range.upperBound) * w] }
            return out
        }
        var p = self
        p.length = m
        p.q = cut(q, keyDim)
        p.k = cut(k, keyDim)
        p.v = cut(v, valueDim)
        if case .perStep(let a)? = decay { p.decay = .perStep(cut(a, 1)) }
        if case .prefixSum? = decay { preconditionFailure("tokens(_:) takes per-step decays") }
        if range.lowerBound != 0 { p.initialState = nil }
        return p
    }
}

/// `x` (canonical `[S, N₁, w]` and `[S, N₂, w]` for `S` sequences) joined along the token axis.
public func concatenateTokens(_ a: [Double], _ b: [Double], sequences: Int, width: Int) -> [Double] {
    let n1 = a.count / (sequences * width), n2 = b.count / (sequences * width)
    var out: [Double] = []
    out.reserveCapacity(a.count + b.count)
    for s in 0..<sequences {
        out += a[s * n1 * width ..< (s + 1) * n1 * width]
        out += b[s * n2 * width ..< (s + 1) * n2 * width]
    }
    return out
}
