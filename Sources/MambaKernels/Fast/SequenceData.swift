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
    static func load(_ src: [Double], _ offset: Int, _ count: Int, _ format: Float32Rounding) -> UnsafeMutablePointer<Float> {
        // Every element is written here, so no poison fill first (a fill is
        // a second pass over memory the size of the input).
        let p = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
        if count == 0 {
            p.initialize(to: .nan)
        } else {
            src.withUnsafeBufferPointer { s in
                let s = s.baseAddress! + offset
                for i in 0..<count { p[i] = Float(s[i]) }
            }
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
        if p.spec.score.traits.reluOnInputs {
            for i in 0..<(n * dk) { q[i] = Swift.max(q[i], 0); k[i] = Swift.max(k[i], 0) }
        }
        if arithmetic.pureHalf && p.spec.normalization == .sum && p.spec.score.hasFeatureMap {
            SequenceData.normaliseQueries(q, rows: n, dk: dk)
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

    /// Pure float16, sum-normalised feature-map cores: each query row is
    /// multiplied by the power of two `2^κ` (`κ = RowGuard.lift(max_d |q_id|)`)
    /// that brings its largest entry into `[1/2, 1)` (rows already there or
    /// above are unchanged). Exact (binary16 values times a power of two) and
    /// invisible in the result — `num_i` and `den_i` both gain `2^{κ}`
    /// (linear) or `2^{2κ}` (squared), Proofs/T6 — but it keeps the binary16
    /// products `q_d·k_d` and the features `φ(q)` of small queries from
    /// underflowing (part of the row guard, `RowGuard`).
    static func normaliseQueries(_ q: UnsafeMutablePointer<Float>, rows n: Int, dk: Int) {
        for i in 0..<n {
            let row = q + i * dk
            var m: Float = 0
            for d in 0..<dk { m = Swift.max(m, abs(row[d])) }
            let k = RowGuard.lift(m)
            if k > 0 {
                let f = RowGuard.power(k)
                for d in 0..<dk { row[d] *= f }
            }
        }
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
    private(set) var arith: Arithmetic
    let options: KernelOptions

    /// The same context with scratch buffers of its own, for another thread.
    func detached() -> CoreContext {
        var copy = self
        copy.arith = arith.detached()
        return copy
    }

    init(spec: CoreSpec, scale: Double, mode: PrecisionMode, options: KernelOptions) {
        self.spec = spec
        let a = Arithmetic(mode, truncateTF32: options.tf32Truncation, tensorCore: options.tensorCoreAccumulation,
                           splitTF32: options.splitTF32Products, sequential: options.sequentialProducts)
        self.arith = a
        self.options = options
        let s = a.op(Float(scale))
        self.scale = s
        // c = sᵖ, each product rounded to the working format.
        self.power = spec.score.traits.power ?? 1
        var c = s
        for _ in 1..<Swift.max(power, 1) { c = a.op(c * s) }
        self.featureScale = c
        switch spec.score {
        case .linear, .reluLinear: (isExponential, isSquared) = (false, false)
        case .squared: (isExponential, isSquared) = (false, true)
        case .exponential: (isExponential, isSquared) = (true, false)
        }
    }

    var isSum: Bool { spec.normalization == .sum }
    /// The score has no feature map: weights are `exp(s·q·k)` with a running
    /// maximum, the state is a KV cache (the forms branch on it).
    let isExponential: Bool
    /// The score is `x²` with the packed second-order feature map (the forms
    /// square weights and use `φ₂`).
    let isSquared: Bool
    /// `p` of `f(x) = xᵖ` (`ScoreTraits.power`; 1 for the exponential score):
    /// a weight is the `p`-th power of a scaled dot product, so its exponent
    /// is `p` times the dot product's (`RowGuard`).
    let power: Int
    /// Leading dimension of augmented values/state: `dv + 1` for sum
    /// normalisation (the extra column holds 1 in values, `z` in the state),
    /// else `dv`.
    func ldv(_ dv: Int) -> Int { isSum ? dv + 1 : dv }
    /// Internal feature dimension: `dk`, `dk(dk+1)/2` (packed) or `dk²` (full
    /// second-order state), nil for the exponential score.
    func internalFeatures(_ dk: Int) -> Int? {
        spec.featureDimension(keyDim: dk, fullSecondOrder: options.fullSecondOrderState)
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
    /// hazard of docs/MATH.md §6 included), or the given `L`. nil without decay.
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
    /// `skipFirst` leaves out `a_start` (`ℓ_i = a_{start+1} + … + a_i`, or
    /// `L_i − L_start`): for a chunk that starts with a reset step, whose
    /// decay only multiplies a state that is exactly 0 anyway.
    /// `scan` is the order of the per-step sums (`KernelOptions.prefixScan`).
    func localPrefix(start: Int, count: Int, into out: UnsafeMutablePointer<Float>, _ a: Arithmetic,
                     skipFirst: Bool = false, scan: PrefixScan = .sequential) {
        guard let d = decay else { return }
        switch d {
        case .perStep(let x) where scan != .sequential:
            for i in 0..<count { out[i] = (skipFirst && i == 0) ? 0 : x[start + i] }
            if scan == .koggeStone {
                // Each pass adds the value `d` places back; descending order reads
                // the previous pass's values, as the parallel lanes do.
                var d = 1
                while d < count {
                    for i in stride(from: count - 1, through: d, by: -1) { out[i] = a.op(out[i] + out[i - d]) }
                    d *= 2
                }
            } else {
                var d = 1
                while d < count {  // up-sweep: partial sums of blocks of 2d
                    for i in stride(from: 2 * d - 1, to: count, by: 2 * d) { out[i] = a.op(out[i] + out[i - d]) }
                    d *= 2
                }
                d /= 2
                while d >= 1 {  // down-sweep: fill in the remaining prefixes
                    for i in stride(from: 3 * d - 1, to: count, by: 2 * d) { out[i] = a.op(out[i] + out[i - d]) }
                    d /= 2
                }
                let log2e: Float = 1.44269504, ln2: Float = 0.693147181
                for i in 0..<count { out[i] = a.op(a.op(out[i] * log2e) * ln2) }
            }
        case .perStep(let x):
            var acc: Float = 0
            for i in 0..<count { acc = (skipFirst && i == 0) ? 0 : a.op(acc + x[start + i]); out[i] = acc }
        case .prefixSum(let l):
            let base: Float = skipFirst ? l[start] : (start == 0 ? 0 : l[start - 1])
            for i in 0..<count { out[i] = a.op(l[start + i] - base) }
        }
    }

    /// The decay exponents of the parallel forms (quadratic, tiled), see
    /// `DecayExponents`; nil without decay.
    func exponents(_ ctx: CoreContext) -> DecayExponents? {
        guard let d = decay else { return nil }
        return DecayExponents(self, d, ctx)
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

/// Log-decay exponents `D_ij = Σ_{t=j+1}^{i} a_t` (`i ≥ j`) of the parallel
/// forms, formed as *segment sums* (Mamba's stable `segsum`), never as the
/// difference of two global prefix sums (docs/MATH.md §6, Proofs/T8 Lemma 2):
///
/// - per-step decays: every exponent is a sum of the `i − j` terms
///   `a_{j+1}, …, a_i` of one sign (no cancellation), so it carries a relative
///   error `≤ γ_{i−j}` in the working format whatever `|L_i|` is. The
///   quadratic form builds its rows by the recursion `D_{i,j} = D_{i−1,j} + a_i`
///   (`D_{i,i} = 0`, one vectorised pass of `i` additions per row, `O(N²)`
///   in total); the tiled form composes three such sums (`blockSums`); the
///   final state uses the suffix sums `D_{N−1,j}` summed backwards.
/// - given prefix sums (`.prefixSum`): `L_i − L_j` of the given numbers (one
///   rounding), since kernels are judged on exactly those numbers.
/// - `KernelOptions.globalPrefixSums`: `L_i − L_j` of Float32 (working
///   format) global prefix sums `L_t = a_0 + … + a_t`, which loses
///   `(|L_i| + |L_j|)·u` (the hazard, kept so that tests can show it is detected).
///
/// The initial-state decay `exp(L_i)` uses the prefix sum `L_i` itself
/// (a sum of one sign, accurate to `γ_{i+1}`).
@usableFromInline
struct DecayExponents {
    /// `L_t` (prefix sums in the working format, or as given).
    let prefix: UnsafeMutablePointer<Float>
    /// Per-step `a_t` when the exponents are segment sums; nil when they are
    /// differences `L_i − L_j` (given prefix sums, or the global option).
    let steps: UnsafePointer<Float>?
    let arith: Arithmetic
    let n: Int

    init(_ seq: SequenceData, _ d: DecayValues, _ ctx: CoreContext) {
        let a = ctx.arith
        n = seq.n
        arith = a
        prefix = seq.globalPrefix(a)!
        switch d {
        case .perStep(let x): steps = ctx.options.globalPrefixSums ? nil : UnsafePointer(x)
        case .prefixSum: steps = nil
        }
    }

    func deallocate() { prefix.deallocate() }

    /// Advances the row buffer `row` (`n` values) from `D_{i−1,·}` to
    /// `D_{i,·}`: entries `0..<i` gain `a_i`, entry `i` becomes 0; call with
    /// `i = 0, 1, 2, …` in order. Difference mode writes `L_i − L_j`.
    @inline(__always)
    func advance(_ row: UnsafeMutablePointer<Float>, to i: Int) {
        if let x = steps {
            let ai = x[i]
            for j in 0..<i { row[j] += ai }
        } else {
            let li = prefix[i]
            for j in 0..<i { row[j] = li - prefix[j] }
        }
        arith.op(row, i)
        row[i] = 0
    }

    /// `D_{N−1,j}` for every `j` (the final-state decays), in `out` (`n`
    /// values): suffix sums `a_{j+1} + … + a_{N−1}` accumulated backwards from
    /// `j = N−1`, or `L_{N−1} − L_j`.
    func toEnd(_ out: UnsafeMutablePointer<Float>) {
        guard n > 0 else { return }
        if let x = steps {
            var acc: Float = 0
            out[n - 1] = 0
            var j = n - 2
            while j >= 0 { acc = arith.op(acc + x[j + 1]); out[j] = acc; j -= 1 }
        } else {
            let last = prefix[n - 1]
            for j in 0..<n { out[j] = last - prefix[j] }
            arith.op(out, n)
        }
    }

    /// Block decomposition for tiles of `tile` keys aligned at 0 (the tiled
    /// form): `suffix[j] = a_{j+1} + … + a_{e(j)}` with `e(j)` the last index
    /// of `j`'s block, and `total[b]` the sum of block `b`. For `j` in block
    /// `b` and `i` in a later block `qb`,
    /// `D_ij = (ℓ_i + C_b) + suffix[j]` with the query-local prefix
    /// `ℓ_i = a_{q0} + … + a_i` and `C_b = total[b+1] + … + total[qb−1]`:
    /// three sums of one sign, each accurate to a few `γ_tile`, added without
    /// cancellation. Segment-sum mode only.
    func blockSums(tile: Int) -> (suffix: UnsafeMutablePointer<Float>, total: [Float]) {
        let x = steps!
        let suffix = allocateFloats(Swift.max(n, 1))
        var total: [Float] = []
        var b0 = 0
        while b0 < n {
            let e = Swift.min(b0 + tile, n) - 1
            var acc: Float = 0
            suffix[e] = 0
            var j = e - 1
            while j >= b0 { acc = arith.op(acc + x[j + 1]); suffix[j] = acc; j -= 1 }
            // The block total a_{b0} + … + a_e, summed forwards.
            var t: Float = 0
            for k in b0...e { t = arith.op(t + x[k]) }
            total.append(t)
            b0 += tile
        }
        return (suffix, total)
    }
}
