/// The decay input of a core, exactly as a kernel received it.
public enum LogDecay: Sendable, Equatable {
    /// Per-step log-decays `a_t ≤ 0`, shape `[B, H, N]`; the prefix sum is
    /// formed by whoever consumes them (exactly, in the oracle).
    case perStep([Double])
    /// Inclusive prefix sums `L_i` as given (e.g. a kernel's Float32
    /// `A_cumsum`), shape `[B, H, N]`; `Γ_ij = exp(L_i − L_j)` is formed from
    /// exactly these numbers.
    case prefixSum([Double])
}

/// A recurrent state in FLA's convention (docs/MATH.md §3): unscaled key features,
/// `S = Σ_j Γ φ(k_j) v_jᵀ` with shape `[B, H, F, dv]` (`F = dk`, or
/// `dk(dk+1)/2` packed for the squared core) and, for sum-normalised cores,
/// `z = Σ_j Γ φ(k_j)` with shape `[B, H, F]`.
public struct CoreState: Sendable, Equatable {
    public var s: [Double]
    public var z: [Double]?
    public init(s: [Double], z: [Double]?) { self.s = s; self.z = z }
}

/// One kernel-level problem: the inputs of docs/MATH.md §1 for every batch element
/// and head, row-major `[B, H, N, d]` (`bhnd`). Values are stored as `Double`
/// so that Float16, bfloat16 and Float32 inputs are held exactly.
public struct CoreProblem: Sendable {
    public var spec: CoreSpec
    public var batch: Int
    public var heads: Int
    public var length: Int
    public var keyDim: Int
    public var valueDim: Int
    /// `[B, H, N, dk]`
    public var q: [Double]
    /// `[B, H, N, dk]`
    public var k: [Double]
    /// `[B, H, N, dv]`
    public var v: [Double]
    /// Required iff `spec.hasDecay`.
    public var decay: LogDecay?
    /// The score scale as part of the problem (default exactly `1/√dk`); see `OracleScale`.
    public var scaleSpec: OracleScale
    /// The Double a Float32/Float64 kernel uses (`scaleSpec.doubleValue`).
    /// Setting it makes that Double the exact scale.
    public var scale: Double {
        get { scaleSpec.doubleValue }
        set { scaleSpec = .binary64(newValue) }
    }
    public var initialState: CoreState?

    public init(spec: CoreSpec, batch: Int, heads: Int, length: Int, keyDim: Int, valueDim: Int,
                q: [Double], k: [Double], v: [Double], decay: LogDecay?, scale: Double? = nil,
                initialState: CoreState? = nil) {
        self.init(spec: spec, batch: batch, heads: heads, length: length, keyDim: keyDim, valueDim: valueDim,
                  q: q, k: k, v: v, decay: decay, scaleSpec: scale.map(OracleScale.binary64), initialState: initialState)
    }

    /// - Parameter scaleSpec: nil for the default, exactly `1/√dk`.
    public init(spec: CoreSpec, batch: Int, heads: Int, length: Int, keyDim: Int, valueDim: Int,
                q: [Double], k: [Double], v: [Double], decay: LogDecay?, scaleSpec: OracleScale?,
                initialState: CoreState? = nil) {
        self.spec = spec
        self.batch = batch
        self.heads = heads
        self.length = length
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.q = q
        self.k = k
        self.v = v
        self.decay = decay
        self.scaleSpec = scaleSpec ?? .inverseSquareRoot(keyDim: Swift.max(keyDim, 1))
        self.initialState = initialState
    }

    /// `Π xs`, or nil when it overflows `Int` (every factor ≥ 0).
    public static func checkedProduct(_ xs: [Int]) -> Int? {
        var r = 1
        for x in xs {
            let (m, o) = r.multipliedReportingOverflow(by: x)
            if o { return nil }
            r = m
        }
        return r
    }

    /// Number of independent (batch, head) sequences.
    public var sequences: Int { batch * heads }
    /// Feature dimension of the state (nil for the exponential score).
    public var featureDim: Int? { spec.featureDimension(keyDim: keyDim) }

    /// Checks shapes and consistency; returns a message naming the first problem.
    ///
    /// Sizes are multiplied with overflow checks: a problem read from a file
    /// may claim any dimensions (e.g. N = 0 with B·H = 2^60), and a trap here
    /// would crash the caller instead of reporting the input.
    public func validationError() -> String? {
        if batch < 1 || heads < 1 || length < 0 || keyDim < 1 || valueDim < 1 { return "dimensions must be positive" }
        guard let bh = Self.checkedProduct([batch, heads]),
              Self.checkedProduct([bh, length, Swift.max(keyDim, valueDim)]) != nil,
              let fd = spec.score.traits.featureMap == nil ? keyDim : spec.featureDimension(keyDim: keyDim),
              Self.checkedProduct([bh, fd, valueDim]) != nil else {
            return "dimensions too large: [B, H, N, dk, dv] = [\(batch), \(heads), \(length), \(keyDim), \(valueDim)] overflow"
        }
        if !scale.isFinite { return "scale must be finite, found \(scale)" }
        if q.count != bh * length * keyDim { return "q: expected \(bh * length * keyDim) elements [B,H,N,dk], found \(q.count)" }
        if k.count != bh * length * keyDim { return "k: expected \(bh * length * keyDim) elements [B,H,N,dk], found \(k.count)" }
        if v.count != bh * length * valueDim { return "v: expected \(bh * length * valueDim) elements [B,H,N,dv], found \(v.count)" }
        if spec.hasDecay {
            guard let d = decay else { return "a: the core has a decay but no log-decay a or prefix sum a_cumsum was given" }
            switch d {
            case .perStep(let a), .prefixSum(let a):
                if a.count != bh * length { return "a: expected \(bh * length) elements [B,H,N], found \(a.count)" }
            }
        }
        if let s0 = initialState {
            guard let f = featureDim else { return "initial_state: the exponential score has no finite state" }
            if s0.s.count != bh * f * valueDim { return "initial_state: expected \(bh * f * valueDim) elements [B,H,\(f),dv], found \(s0.s.count)" }
            if spec.normalization == .sum {
                guard let z = s0.z, z.count == bh * f else { return "initial_state_z: expected \(bh * f) elements [B,H,\(f)]" }
            }
        }
        return nil
    }

    /// Inclusive prefix sums `L` of sequence `seq` (`[N]`), summed in Double
    /// from per-step decays (only used by approximate forms; the oracle sums exactly).
    public func prefixSums(sequence seq: Int) -> [Double]? {
        guard spec.hasDecay, let d = decay else { return nil }
        switch d {
        case .prefixSum(let l): return Array(l[seq * length ..< (seq + 1) * length])
        case .perStep(let a):
            var acc = 0.0
            return (0..<length).map { t in acc += a[seq * length + t]; return acc }
        }
    }
}
