import CMPFR
import MambaPrecision
import MambaVariants

/// The inputs of one (batch, head) sequence prepared for MPFR evaluation:
/// ReLU applied for relu-linear, exact integer rows for dot products, values
/// and decays as MPFR numbers. Shared (read-only) by the three MPFR forms.
final class ReferenceSequence: @unchecked Sendable {
    let spec: CoreSpec
    let n: Int, dk: Int, dv: Int
    let precision: Int
    /// Precision of prefix sums and decay factors (p + 64 guard bits, so that
    /// `exp(L_i)·exp(−L_j)` keeps p bits even when |L| ~ 2^17, see
    /// Proofs/T7-oracle-accuracy.md). With `pairwiseDecay` it also gets one
    /// bit per binade of `max|L|`, so that a segment sum `L_i − L_j` formed
    /// from two prefix sums of size ~|L| still keeps p + 64 bits of its own.
    let decayPrecision: Int
    /// True when the prefix sums are too large for the factored decay
    /// `exp(L_i)·exp(−L_j)`: `exp(±L)` would leave MPFR's exponent range
    /// (|L| ≳ 7.4·10^8) and turn into ±∞ or 0, making every weight ∞·0.
    /// The forms then evaluate `Γ_ij = exp(L_i − L_j)` per pair, which is
    /// ≤ 1 for monotone decays and underflows harmlessly to (exactly) 0.
    let pairwiseDecay: Bool
    /// Largest `max_t |L_t|` that keeps the factored decay. 2^28 leaves
    /// `exp(±L)` ≤ 2^(3.9·10^8), far inside MPFR's default range 2^±(2^30−1),
    /// with room for scores and sums multiplied into it.
    static let factoredDecayLimit: Double = 0x1p28
    let qRows: [IntegerRow?], kRows: [IntegerRow?]
    /// Rows of V as exact integers (for the fixed-point accumulation), or nil.
    let vRows: [IntegerRow?]
    let qM: MPFRBuffer, kM: MPFRBuffer, vM: MPFRBuffer
    /// `|v|` rounded to Double, for the magnitude estimates (not for results).
    let vAbs: [Double]
    /// `|q|`, `|k|` (after ReLU) in Double, for the magnitude estimates.
    let qAbs: [Double], kAbs: [Double]
    /// `L_t` (inclusive prefix sums) or nil without decay.
    let prefix: MPFRBuffer?
    /// Per-step log-decay `a_t` (`L_t − L_{t−1}`, with `L_{−1} = 0`).
    let steps: MPFRBuffer?
    /// The score scale at working precision (`OracleScale`), one element.
    let scale: MPFRBuffer
    /// The scale as a Double, for magnitude estimates only.
    let scaleValue: Double
    /// Initial state (`F × dv`, `F`), as given.
    let s0: MPFRBuffer?, z0: MPFRBuffer?

    init(problem p: CoreProblem, sequence seq: Int, precision: Int) {
        spec = p.spec
        n = p.length; dk = p.keyDim; dv = p.valueDim
        self.precision = precision
        let (pairwise, extraBits) = Self.decayRange(p, sequence: seq)
        pairwiseDecay = pairwise
        decayPrecision = precision + 64 + extraBits
        let relu = p.spec.score.traits.reluOnInputs
        let qs = p.q[seq * n * dk ..< (seq + 1) * n * dk].map { relu ? Swift.max($0, 0) : $0 }
        let ks = p.k[seq * n * dk ..< (seq + 1) * n * dk].map { relu ? Swift.max($0, 0) : $0 }
        qAbs = qs.map { Swift.abs($0) }
        kAbs = ks.map { Swift.abs($0) }
        let len = p.length, width = p.keyDim
        qRows = (0..<len).map { IntegerRow(qs[$0 * width ..< ($0 + 1) * width]) }
        kRows = (0..<len).map { IntegerRow(ks[$0 * width ..< ($0 + 1) * width]) }
        // Doubles are exact at 53 bits.
        qM = MPFRBuffer(count: n * dk, precision: 53); qM.setAll(qs[...])
        kM = MPFRBuffer(count: n * dk, precision: 53); kM.setAll(ks[...])
        vM = MPFRBuffer(count: n * dv, precision: 53)
        vM.setAll(p.v[seq * n * dv ..< (seq + 1) * n * dv])
        vAbs = p.v[seq * n * dv ..< (seq + 1) * n * dv].map { Swift.abs($0) }
        let vs = p.v[seq * n * dv ..< (seq + 1) * n * dv]
        let vw = p.valueDim, base = vs.startIndex
        vRows = (0..<len).map { IntegerRow(vs[base + $0 * vw ..< base + ($0 + 1) * vw], dotProductOperand: false) }
        // The scale is part of the problem (issue 14): the exact real value
        // rounded once to working precision, or the binary value the kernel received.
        scale = MPFRBuffer(count: 1, precision: Swift.max(precision, 64))
        p.scaleSpec.set(scale[0], MPFR_RNDN)
        scaleValue = p.scale
        if p.spec.hasDecay, let d = p.decay {
            let lp = decayPrecision
            let L = MPFRBuffer(count: n, precision: lp)
            let A = MPFRBuffer(count: n, precision: lp)
            switch d {
            case .perStep(let a):
                for t in 0..<n {
                    mc_set_d(A[t], a[seq * n + t], MPFR_RNDN)
                    if t == 0 { mc_set(L[0], A[0], MPFR_RNDN) } else { mc_add(L[t], L[t - 1], A[t], MPFR_RNDN) }
                }
            case .prefixSum(let l):
                for t in 0..<n {
                    mc_set_d(L[t], l[seq * n + t], MPFR_RNDN)
                    if t == 0 { mc_set(A[0], L[0], MPFR_RNDN) } else { mc_sub(A[t], L[t], L[t - 1], MPFR_RNDN) }
                }
            }
            prefix = L; steps = A
        } else {
            prefix = nil; steps = nil
        }
        if let st = p.initialState, let f = p.featureDim {
            s0 = MPFRBuffer.exactly(st.s[seq * f * dv ..< (seq + 1) * f * dv])
            z0 = st.z.map { MPFRBuffer.exactly($0[seq * f ..< (seq + 1) * f]) }
        } else { s0 = nil; z0 = nil }
    }

    /// A sequence whose inputs are already MPFR numbers (the block-level
    /// oracle feeds the core with high-precision activations). ReLU is applied
    /// here for relu-linear; dot products use the MPFR fallback.
    init(spec: CoreSpec, q: MPFRBuffer, k: MPFRBuffer, v: MPFRBuffer, steps a: MPFRBuffer?,
         length: Int, keyDim: Int, valueDim: Int, scale s: Double, precision: Int) {
        self.spec = spec
        n = length; dk = keyDim; dv = valueDim
        self.precision = precision
        decayPrecision = precision + 64
        var pairwise = false
        qRows = Array(repeating: nil, count: length)
        kRows = Array(repeating: nil, count: length)
        vRows = Array(repeating: nil, count: length)
        if spec.score.traits.reluOnInputs {
            for i in 0..<(length * keyDim) {
                if mc_sgn(q[i]) < 0 { mc_set_zero(q[i], 1) }
                if mc_sgn(k[i]) < 0 { mc_set_zero(k[i], 1) }
            }
        }
        qM = q; kM = k; vM = v
        qAbs = (0..<(length * keyDim)).map { Swift.abs(mc_get_d(q[$0], MPFR_RNDN)) }
        kAbs = (0..<(length * keyDim)).map { Swift.abs(mc_get_d(k[$0], MPFR_RNDN)) }
        vAbs = (0..<(length * valueDim)).map { Swift.abs(mc_get_d(v[$0], MPFR_RNDN)) }
        scale = MPFRBuffer(count: 1, precision: 53)
        mc_set_d(scale[0], s, MPFR_RNDN)
        scaleValue = s
        if let a, spec.hasDecay {
            let L = MPFRBuffer(count: length, precision: precision + 64)
            for t in 0..<length {
                if t == 0 { mc_set(L[0], a[0], MPFR_RNDN) } else { mc_add(L[t], L[t - 1], a[t], MPFR_RNDN) }
                if !(Swift.abs(mc_get_d(L[t], MPFR_RNDN)) <= Self.factoredDecayLimit) { pairwise = true }
            }
            prefix = L; steps = a
        } else { prefix = nil; steps = nil }
        pairwiseDecay = pairwise
        s0 = nil; z0 = nil
    }

    /// Whether sequence `seq` of `p` needs the pairwise decay, and how many
    /// extra prefix-sum bits it then needs: the binades of a bound on
    /// `max_t |L_t|` (`Σ|a_t|` for per-step decays, `max|L_t|` for prefix
    /// sums), computed without overflow from the Double inputs.
    static func decayRange(_ p: CoreProblem, sequence seq: Int) -> (pairwise: Bool, extraBits: Int) {
        guard p.spec.hasDecay, let d = p.decay, p.length > 0 else { return (false, 0) }
        let n = p.length
        var largest = 0.0, sum = 0.0
        switch d {
        case .perStep(let a):
            for t in 0..<n { let x = Swift.abs(a[seq * n + t]); largest = Swift.max(largest, x); sum += x }
        case .prefixSum(let l):
            for t in 0..<n { largest = Swift.max(largest, Swift.abs(l[seq * n + t])) }
            sum = largest
        }
        // NaN or ∞ (sum overflow) also leaves the factored form's range.
        guard !(sum <= factoredDecayLimit) else { return (false, 0) }
        let binades = largest.isFinite && largest > 0 ? Int(largest.exponent) + 1 : 1025
        let lengthBits = Int.bitWidth - n.leadingZeroBitCount
        return (true, Swift.max(0, binades + lengthBits))
    }

    /// Feature dimension of the state.
    var featureDim: Int? { spec.featureDimension(keyDim: dk) }

    /// `r ← q_i·k_j` (after ReLU for relu-linear), rounded once to r's precision.
    @inline(__always)
    func dot(_ r: UnsafeMutablePointer<__mpfr_struct>, _ i: Int, _ j: Int, _ t: ReferenceScratch) {
        if let a = qRows[i], let b = kRows[j] {
            let (m, e) = IntegerRow.dot(a, b)
            mpfrSet(r, int128: m, exponent: e, tmp: t.wide, tmpLo: t.lo)
        } else {
            // Fallback: accumulate in 2p + 128 bits (products of doubles are exact
            // in 106 bits), then round once to r's precision.
            mc_set_zero(t.acc, 1)
            for d in 0..<dk { mc_fma(t.acc, qM[i * dk + d], kM[j * dk + d], t.acc, MPFR_RNDN) }
            mc_set(r, t.acc, MPFR_RNDN)
        }
    }

    /// `r ← f(s·x)` given `x` (the raw dot product) for the non-exponential scores.
    @inline(__always)
    func score(_ r: UnsafeMutablePointer<__mpfr_struct>, x: UnsafeMutablePointer<__mpfr_struct>) {
        mc_mul(r, x, scale[0], MPFR_RNDN)
        spec.score.applyPolynomial(r, r)
    }

    /// `φ(x)` of row `row` of q or k as MPFR numbers into `out` (`F` entries).
    func features(of m: MPFRBuffer, row: Int, into out: MPFRBuffer, sqrt2: UnsafeMutablePointer<__mpfr_struct>) {
        Self.features(spec.score, dim: dk, x: m[row * dk], into: out[0], sqrt2: sqrt2)
    }

    /// `out[0..<F] ← φ(x[0..<d])` over contiguous MPFR arrays: identity (linear,
    /// relu-linear; ReLU already applied to the inputs) or the packed
    /// second-order map `φ₂(x)_(a,b) = c_ab x_a x_b`, `c_aa = 1`, `c_ab = √2`,
    /// row-major upper triangle (docs/MATH.md §4). Not defined for the exponential score.
    static func features(_ score: Score, dim dk: Int, x: UnsafeMutablePointer<__mpfr_struct>,
                         into out: UnsafeMutablePointer<__mpfr_struct>, sqrt2: UnsafeMutablePointer<__mpfr_struct>) {
        switch score {
        case .linear, .reluLinear:
            for d in 0..<dk { mc_set(out + d, x + d, MPFR_RNDN) }
        case .squared:
            var idx = 0
            for a in 0..<dk {
                mc_sqr(out + idx, x + a, MPFR_RNDN); idx += 1
                for b in (a + 1)..<Swift.max(dk, a + 1) where b < dk {
                    mc_mul(out + idx, x + a, x + b, MPFR_RNDN)
                    mc_mul(out + idx, out + idx, sqrt2, MPFR_RNDN)
                    idx += 1
                }
            }
        case .exponential:
            preconditionFailure("no feature map")
        }
    }

    /// The query-side constant `c` of the recurrent form: `s` or `s²`.
    func queryConstant(_ r: UnsafeMutablePointer<__mpfr_struct>) {
        spec.score.featureConstant(r, scale: scale[0])
    }
}

/// Per-worker temporaries for the oracle (no allocation in inner loops).
final class ReferenceScratch: @unchecked Sendable {
    let buf: MPFRBuffer
    init(precision p: Int) {
        buf = MPFRBuffer(count: 3, precision: 2 * p + 128)
        mc_set_prec(buf[1], 64)
        mc_set_prec(buf[0], Swift.max(128, p))
    }
    var wide: UnsafeMutablePointer<__mpfr_struct> { buf[0] }
    var lo: UnsafeMutablePointer<__mpfr_struct> { buf[1] }
    var acc: UnsafeMutablePointer<__mpfr_struct> { buf[2] }
}
