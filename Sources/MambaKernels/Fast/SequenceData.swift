#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MambaVariants

/// The decay input of one sequence in Float32 (after rounding to the mode's format).
@usableFromInline
enum DecayValues {
    /// Per-step log-decays `a_t`.
    case perStep(UnsafeMutablePointer<Float>)
    /// Inclusive prefix sums `L_t` as given (`L_{−1} := 0`).
    case prefixSum(UnsafeMutablePointer<Float>)

    var pointer: UnsafeMutablePointer<Float> {
        switch self { case .perStep(let p), .prefixSum(let p): return p }
    }
}

/// The Float32 inputs of one (batch, head) sequence: `q`, `k` (`n×dk`),
/// `v` (`n×dv`), the decay (`n`) and the initial state in FLA's packed
/// convention (`F×dv` and `F`), each already rounded to the precision mode's
/// input format. For the relu-linear score, ReLU has been applied to `q` and
/// `k`, so every later stage sees a plain linear score.
@usableFromInline
final class SequenceData {
    let n: Int, dk: Int, dv: Int
    let q: UnsafeMutablePointer<Float>
    let k: UnsafeMutablePointer<Float>
    let v: UnsafeMutablePointer<Float>
    let decay: DecayValues?
    let s0: UnsafeMutablePointer<Float>?
    let z0: UnsafeMutablePointer<Float>?

    /// Copies `count` Doubles from `src[offset...]`, converting to Float32
    /// (round to nearest) and then rounding to `format`.
    static func load(_ src: [Double], _ offset: Int, _ count: Int, _ format: NumberFormat) -> UnsafeMutablePointer<Float> {
        let p = allocateFloats(count)
        src.withUnsafeBufferPointer { s in
            for i in 0..<count { p[i] = Float(s[offset + i]) }
        }
        format.round(p, count)
        return p
    }

    init(n: Int, dk: Int, dv: Int, q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>,
         v: UnsafeMutablePointer<Float>, decay: DecayValues?, s0: UnsafeMutablePointer<Float>?,
         z0: UnsafeMutablePointer<Float>?) {
        (self.n, self.dk, self.dv, self.q, self.k, self.v) = (n, dk, dv, q, k, v)
        (self.decay, self.s0, self.z0) = (decay, s0, z0)
    }

    /// Tokens `[start, start + n)` of sequence `seq` of `p` (layout `[B,H,N,d]`),
    /// with the given packed initial state slice.
    convenience init(problem p: CoreProblem, sequence seq: Int, start: Int, count n: Int,
                     stateIndex: Int?, arithmetic: Arithmetic) {
        let dk = p.keyDim, dv = p.valueDim, N = p.length
        let row = seq * N + start
        let q = SequenceData.load(p.q, row * dk, n * dk, arithmetic.input)
        let k = SequenceData.load(p.k, row * dk, n * dk, arithmetic.input)
        let v = SequenceData.load(p.v, row * dv, n * dv, arithmetic.input)
        if p.spec.score == .reluLinear {
            for i in 0..<(n * dk) { q[i] = Swift.max(q[i], 0); k[i] = Swift.max(k[i], 0) }
        }
        var decay: DecayValues? = nil
        if p.spec.hasDecay, let d = p.decay {
            switch d {
            case .perStep(let a):
                decay = .perStep(SequenceData.load(a, row, n, arithmetic.decayAndState))
            case .prefixSum(let l):
                // Taken as the prefix sums of this slice (`L_{start−1} := 0`):
                // for packed variable-length input they restart at each sequence.
                decay = .prefixSum(SequenceData.load(l, row, n, arithmetic.decayAndState))
            }
        }
        var s0: UnsafeMutablePointer<Float>? = nil, z0: UnsafeMutablePointer<Float>? = nil
        if let si = stateIndex, let st = p.initialState, let f = p.featureDim {
            s0 = SequenceData.load(st.s, si * f * dv, f * dv, arithmetic.decayAndState)
            if p.spec.normalization == .sum, let z = st.z {
                z0 = SequenceData.load(z, si * f, f, arithmetic.decayAndState)
            }
        }
        self.init(n: n, dk: dk, dv: dv, q: q, k: k, v: v, decay: decay, s0: s0, z0: z0)
    }

    deinit {
        q.deallocate(); k.deallocate(); v.deallocate()
        decay?.pointer.deallocate()
        s0?.deallocate(); z0?.deallocate()
    }
}

/// Everything a form needs besides the sequence: the core, the scale, the
/// precision model and the options.
@usableFromInline
struct CoreContext {
    let spec: CoreSpec
    /// `s`, in the working format.
    let scale: Float
    /// The feature-side constant `c` (`s` first order, `s²` squared), in the working format.
    let featureScale: Float
    let arith: Arithmetic
    let options: KernelOptions

    init(spec: CoreSpec, scale: Double, mode: PrecisionMode, options: KernelOptions) {
        self.spec = spec
        let a = Arithmetic(mode)
        self.arith = a
        self.options = options
        let s = a.op(Float(scale))
        self.scale = s
        self.featureScale = spec.score == .squared ? a.op(s * s) : s
    }

    var isSum: Bool { spec.normalization == .sum }
    var isExponential: Bool { spec.score == .exponential }
    var isSquared: Bool { spec.score == .squared }
    /// Leading dimension of augmented values/state: `dv + 1` for sum
    /// normalisation (the extra column holds 1 in values, `z` in the state),
    /// else `dv`.
    func ldv(_ dv: Int) -> Int { isSum ? dv + 1 : dv }
    /// Internal feature dimension: `dk`, `dk(dk+1)/2` (packed) or `dk²` (full
    /// second-order state), nil for the exponential score.
    func internalFeatures(_ dk: Int) -> Int? {
        switch spec.score {
        case .linear, .reluLinear: return dk
        case .squared: return options.fullSecondOrderState ? dk * dk : dk * (dk + 1) / 2
        case .exponential: return nil
        }
    }
}

/// Result of one form on one sequence: output `n×dv` (already divided for
/// sum normalisation, not yet rounded to the output format), the final
/// augmented state in the internal feature convention (`F×ldv`), notes.
@usableFromInline
struct FormResult {
    var o: UnsafeMutablePointer<Float>
    var state: UnsafeMutablePointer<Float>?
    var notes: [String]
}

// MARK: - Decay helpers

extension SequenceData {
    /// Global inclusive prefix sums `L_t` in the working format (perStep:
    /// summed sequentially, each addition rounded, the Float32 cancellation
    /// hazard of SPEC §6 included), or the given `L`. nil without decay.
    func globalPrefix(_ a: Arithmetic) -> UnsafeMutablePointer<Float>? {
        guard let d = decay else { return nil }
        let out = allocateFloats(n)
        switch d {
        case .prefixSum(let l): out.update(from: l, count: n)
        case .perStep(let x):
            var acc: Float = 0
            for t in 0..<n { acc = a.op(acc + x[t]); out[t] = acc }
        }
        return out
    }

    /// Chunk-local prefix sums `ℓ_i = a_start + … + a_i` for `i` in
    /// `[start, start+count)` (perStep), or `L_i − L_{start−1}` (prefixSum).
    func localPrefix(start: Int, count: Int, into out: UnsafeMutablePointer<Float>, _ a: Arithmetic) {
        guard let d = decay else { return }
        switch d {
        case .perStep(let x):
            var acc: Float = 0
            for i in 0..<count { acc = a.op(acc + x[start + i]); out[i] = acc }
        case .prefixSum(let l):
            let base: Float = start == 0 ? 0 : l[start - 1]
            for i in 0..<count { out[i] = a.op(l[start + i] - base) }
        }
    }

    /// `log α_t`: `a_t`, or `L_t − L_{t−1}`.
    func stepLogDecay(_ t: Int, _ a: Arithmetic) -> Float {
        guard let d = decay else { return 0 }
        switch d {
        case .perStep(let x): return x[t]
        case .prefixSum(let l): return a.op(l[t] - (t == 0 ? 0 : l[t - 1]))
        }
    }

    /// Values with a column of ones appended for sum normalisation (`n×ldv`).
    func augmentedValues(ldv: Int) -> UnsafeMutablePointer<Float> {
        let out = allocateFloats(n * ldv)
        for t in 0..<n {
            (out + t * ldv).update(from: v + t * dv, count: dv)
            if ldv > dv { out[t * ldv + dv] = 1 }
        }
        return out
    }
}
