import Foundation
import Testing
@testable import MambaOracle
import MambaPrecision
import MambaVariants

/// The certified oracle (Proofs/T7): enclosures, the Ziv loop, rounding decisions, the exact scale.
@Suite struct CertifiedOracleTests {
    /// The scale of `p` at `bits` bits, computed here from the problem's definition.
    static func independentScale(_ p: CoreProblem, bits: Int) -> BigFloat {
        switch p.scaleSpec.value {
        case .inverseSquareRoot(let m) where p.scaleSpec.receivedBinary == nil:
            return BigFloat(1, precision: bits) / BigFloat(m, precision: bits).squareRootForTest(bits)
        case .decimal(let t) where p.scaleSpec.receivedBinary == nil:
            return BigFloat(t, precision: bits)!
        default:
            return BigFloat(p.scaleSpec.doubleValue, precision: bits)
        }
    }

    /// Prefix sums `L_t` of sequence `seq` at `bits` bits (empty without decay).
    static func independentPrefix(_ p: CoreProblem, seq: Int, bits: Int) -> [BigFloat] {
        let n = p.length
        var L = [BigFloat](), acc = BigFloat(0.0, precision: bits)
        if let d = p.decay {
            for t in 0..<n {
                switch d {
                case .perStep(let a): acc = acc + BigFloat(a[seq * n + t], precision: bits); L.append(acc)
                case .prefixSum(let l): L.append(BigFloat(l[seq * n + t], precision: bits))
                }
            }
        }
        return L
    }

    /// `φ(x)` (docs/MATH.md §3.2, §4) of a Double row at `bits` bits: identity
    /// (after ReLU for relu-linear) or the packed second-order map with `√2` cross weights.
    static func independentFeatures(_ score: Score, _ x: [Double], bits: Int) -> [BigFloat] {
        let xs = x.map { BigFloat(score == .reluLinear ? max($0, 0) : $0, precision: bits) }
        guard score == .squared else { return xs }
        let r2 = BigFloat(2, precision: bits).squareRootForTest(bits)
        var out: [BigFloat] = []
        for a in 0..<xs.count {
            out.append(xs[a] * xs[a])
            for b in (a + 1)..<max(xs.count, a + 1) where b < xs.count { out.append(r2 * xs[a] * xs[b]) }
        }
        return out
    }

    /// An implementation of docs/MATH.md §1 that shares no code with the oracle
    /// but MPFR itself: plain `BigFloat` operators at `bits` bits, pairwise
    /// `exp(L_i − L_j)`, the scale computed here from the problem's definition,
    /// an initial state as `c·e^{L_i}·φ(q_i)ᵀS₀` (and `ᵀz₀`).
    static func independent(_ p: CoreProblem, bits: Int = 2048) -> [BigFloat] {
        let n = p.length, dk = p.keyDim, dv = p.valueDim
        let s = independentScale(p, bits: bits)
        var out: [BigFloat] = []
        for seq in 0..<p.sequences {
            let L = independentPrefix(p, seq: seq, bits: bits)
            func relu(_ x: Double) -> Double { p.spec.score == .reluLinear ? max(x, 0) : x }
            for i in 0..<n {
                var num = (0..<dv).map { _ in BigFloat(0.0, precision: bits) }
                var den = BigFloat(0.0, precision: bits)
                for j in 0...i {
                    var x = BigFloat(0.0, precision: bits)
                    for d in 0..<dk {
                        x = x + BigFloat(relu(p.q[(seq * n + i) * dk + d]), precision: bits)
                            * BigFloat(relu(p.k[(seq * n + j) * dk + d]), precision: bits)
                    }
                    let y = s * x
                    var w: BigFloat
                    switch p.spec.score {
                    case .linear, .reluLinear: w = y
                    case .squared: w = y * y
                    case .exponential: w = BigFloat(y).expForTest()
                    }
                    if p.spec.hasDecay { w = w * (L[i] - L[j]).expForTest() }
                    for c in 0..<dv { num[c] = num[c] + w * BigFloat(p.v[(seq * n + j) * dv + c], precision: bits) }
                    den = den + w
                }
                if let st = p.initialState, let f = p.featureDim {
                    // c·e^{L_i}·φ(q_i)ᵀS₀, c = s or s²
                    let phi = independentFeatures(p.spec.score, Array(p.q[(seq * n + i) * dk ..< (seq * n + i + 1) * dk]), bits: bits)
                    var cq = p.spec.score == .squared ? s * s : s
                    if p.spec.hasDecay { cq = cq * L[i].expForTest() }
                    for a in 0..<f {
                        let t = cq * phi[a]
                        for c in 0..<dv { num[c] = num[c] + t * BigFloat(st.s[(seq * f + a) * dv + c], precision: bits) }
                        if let z = st.z { den = den + t * BigFloat(z[seq * f + a], precision: bits) }
                    }
                }
                for c in 0..<dv { out.append(p.spec.normalization == .sum ? num[c] / den : num[c]) }
            }
        }
        return out
    }

    /// The final state `S = Σ_j e^{L_{N−1} − L_j}φ(k_j)v_jᵀ + e^{L_{N−1}}S₀` (and `z`),
    /// `[B, H, F, dv]` and `[B, H, F]`, independently at `bits` bits.
    static func independentFinalState(_ p: CoreProblem, bits: Int = 2048) -> (s: [BigFloat], z: [BigFloat]) {
        let n = p.length, dk = p.keyDim, dv = p.valueDim, f = p.featureDim!
        var S: [BigFloat] = [], Z: [BigFloat] = []
        for seq in 0..<p.sequences {
            let L = independentPrefix(p, seq: seq, bits: bits)
            var s = (0..<(f * dv)).map { _ in BigFloat(0.0, precision: bits) }
            var z = (0..<f).map { _ in BigFloat(0.0, precision: bits) }
            for j in 0..<n {
                var phi = independentFeatures(p.spec.score, Array(p.k[(seq * n + j) * dk ..< (seq * n + j + 1) * dk]), bits: bits)
                if p.spec.hasDecay { let g = (L[n - 1] - L[j]).expForTest(); phi = phi.map { $0 * g } }
                for a in 0..<f {
                    z[a] = z[a] + phi[a]
                    for c in 0..<dv { s[a * dv + c] = s[a * dv + c] + phi[a] * BigFloat(p.v[(seq * n + j) * dv + c], precision: bits) }
                }
            }
            if let st = p.initialState {
                let g = p.spec.hasDecay ? L[n - 1].expForTest() : BigFloat(1, precision: bits)
                for a in 0..<f {
                    for c in 0..<dv { s[a * dv + c] = s[a * dv + c] + g * BigFloat(st.s[(seq * f + a) * dv + c], precision: bits) }
                    if let zz = st.z { z[a] = z[a] + g * BigFloat(zz[seq * f + a], precision: bits) }
                }
            }
            S += s; Z += z
        }
        return (S, Z)
    }

    static func inside(_ y: BigFloat, _ lo: BigFloat, _ hi: BigFloat) -> Bool {
        !(y < lo) && !(hi < y)
    }

    // MARK: scale

    @Test func defaultScaleIsExactlyOneOverSquareRootOfKeyDim() throws {
        let p = CoreProblem.random(spec: CoreSpec.all[0], length: 2, keyDim: 48, valueDim: 2, seed: 1)
        var q = p; q.scaleSpec = .inverseSquareRoot(keyDim: 48)
        let e = EnclosedSequence(problem: q, sequence: 0, precision: 128)
        let lo = e.sLo.value(0), hi = e.sHi.value(0)
        #expect(lo < hi)  // 1/√48 is irrational: a proper enclosure, one ulp wide
        // lo²·48 ≤ 1 ≤ hi²·48, exactly (products of 128-bit numbers are exact at 512 bits).
        let one = BigFloat(1, precision: 512), k = BigFloat(48, precision: 512)
        #expect(!(one < BigFloat(lo, precision: 512) * BigFloat(lo, precision: 512) * k))
        #expect(!(BigFloat(hi, precision: 512) * BigFloat(hi, precision: 512) * k < one))
        // The default of a problem built without a scale is this exact value.
        let d = CoreProblem(spec: p.spec, batch: 1, heads: 1, length: 2, keyDim: 48, valueDim: 2,
                            q: p.q, k: p.k, v: p.v, decay: p.decay, scale: nil)
        #expect(d.scaleSpec == .inverseSquareRoot(keyDim: 48))
        #expect(d.scale == 1 / 48.0.squareRoot() || abs(d.scale - 1 / 48.0.squareRoot()) <= 0x1p-52 * d.scale)
    }

    @Test func receivedScaleIsTheRoundedBinaryValue() throws {
        let s32 = OracleScale.inverseSquareRoot(keyDim: 48, received: .float32)
        let s64 = OracleScale.inverseSquareRoot(keyDim: 48, received: .float64)
        #expect(s64.receivedBinary == s64.nearestDouble)
        #expect(s32.receivedBinary == Double(Float(s64.nearestDouble)))
        #expect(OracleScale(decimal: "0.1") != nil && OracleScale(decimal: "0") == nil && OracleScale(decimal: "nan") == nil)
        #expect(OracleScale(decimal: "1e-400") == nil && OracleScale(decimal: "1e300") == nil)  // Float32 range
        // A decimal scale is read exactly: 0.1 is enclosed strictly (not the Double 0.1).
        var p = CoreProblem.random(spec: CoreSpec.all[0], length: 1, keyDim: 4, valueDim: 1, seed: 1)
        p.scaleSpec = OracleScale(decimal: "0.1")!
        let e = EnclosedSequence(problem: p, sequence: 0, precision: 128)
        #expect(e.sLo.value(0) < e.sHi.value(0))
        #expect(Self.inside(BigFloat("0.1", precision: 1024)!, e.sLo.value(0), e.sHi.value(0)))
    }

    /// Issue 14: with dk not a power of 4, the Float64 scale moved softmax outputs by
    /// many Float64 ulps; the exact scale makes the oracle agree with the
    /// independent evaluation to the last bit.
    @Test func softmaxUsesTheExactScale() throws {
        let spec = CoreSpec(score: .exponential, hasDecay: false, normalization: .sum)
        var p = CoreProblem.random(spec: spec, length: 8, keyDim: 48, valueDim: 2, distribution: .fla, seed: 3)
        p.scaleSpec = .inverseSquareRoot(keyDim: 48)
        let c = try Reference.certified(p)
        let ind = Self.independent(p)
        #expect(c.isComplete)
        for (x, y) in zip(c.o, ind) { #expect(x == y.doubleValue) }
    }

    // MARK: closed forms

    @Test(arguments: CoreSpec.all.filter { $0.normalization == .sum })
    func singleTokenIsItsValueExactly(spec: CoreSpec) throws {
        var p = CoreProblem.random(spec: spec, length: 1, keyDim: 6, valueDim: 5, seed: 7)
        if spec.score == .reluLinear { p.q = p.q.map(abs); p.k = p.k.map(abs) }  // a non-zero weight
        let c = try Reference.certified(p)
        #expect(c.isComplete)
        #expect(c.o == p.v)  // y_0 = w·v_0/w = v_0 exactly
    }

    /// Equal weights on values 1, 0, 0: y = 1/3, certified to 40 digits.
    @Test func oneThirdToFortyDigits() throws {
        let spec = CoreSpec(score: .squared, hasDecay: false, normalization: .sum)
        // Three tokens with equal weights (q = k = 1, s = 1) and values 1, 0, 0: y_2 = 1/3.
        let p = CoreProblem(spec: spec, batch: 1, heads: 1, length: 3, keyDim: 1, valueDim: 1,
                            q: [1, 1, 1], k: [1, 1, 1], v: [1, 0, 0], decay: nil, scaleSpec: OracleScale(decimal: "1"))
        let c = try Reference.certified(p, decimalDigits: 40)
        #expect(c.isComplete)
        #expect(c.o[2] == 1.0 / 3.0)
        #expect(c.decimal?[2] == "3.333333333333333333333333333333333333333e-01")
        #expect(c.decimal?[1] == "5.000000000000000000000000000000000000000e-01")
    }

    // MARK: random cases against the independent implementation

    @Test(arguments: CoreSpec.all)
    func randomCasesAreCorrectlyRounded(spec: CoreSpec) throws {
        for (seed, dk) in [(UInt64(21), 6), (22, 3)] {
            var p = CoreProblem.random(spec: spec, length: 10, keyDim: dk, valueDim: 3, seed: seed)
            p.scaleSpec = .inverseSquareRoot(keyDim: dk)  // irrational: exercises the scale's enclosure
            let c = try Reference.certified(p, decimalDigits: 30)
            let ind = Self.independent(p)
            // Only rows whose weights are all exactly 0 (ReLU zeroes a whole query) may be undecided.
            #expect(c.undecided.allSatisfy { $0.reason == .zeroDenominator }, "\(spec.name): \(c.undecided)")
            let zeroRows = Set(c.undecided.map(\.index))
            for e in 0..<ind.count {
                if zeroRows.contains(e) { #expect(ind[e].isNaN && c.o[e].isNaN); continue }
                // 2048 bits: a random value this close to a Float64 or 30-digit boundary has probability ~2^-1900.
                #expect(Self.inside(ind[e], c.lower[e], c.upper[e]), "\(spec.name) element \(e) outside its enclosure")
                #expect(c.o[e] == ind[e].doubleValue, "\(spec.name) element \(e)")
                #expect(c.decimal?[e] == ind[e].decimalString(significantDigits: 30), "\(spec.name) element \(e)")
            }
        }
    }

    /// Huge per-step decays use the pairwise decay enclosure.
    @Test func hugeDecaysArePairwiseAndCertified() throws {
        let spec = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)
        var p = CoreProblem.random(spec: spec, length: 6, keyDim: 4, valueDim: 2, seed: 5)
        p.decay = .perStep([-0.5, -1e9, -0.25, -0.125, -3, -0.5])
        let c = try Reference.certified(p)
        let ind = Self.independent(p)
        #expect(c.isComplete)
        for e in 0..<ind.count { #expect(c.o[e] == ind[e].doubleValue) }
    }

    // MARK: a planted bug must be caught

    /// With the interval product's upper end rounded down (a wrong rounding
    /// direction), enclosures no longer contain the exact values: checking
    /// them against the independent 2048-bit evaluation catches it, while the
    /// correct enclosures all pass the same check.
    @Test(arguments: [CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .exponential, hasDecay: true, normalization: .sum),
                      CoreSpec(score: .linear, hasDecay: true, normalization: .none)])
    func plantedIntervalBugIsCaught(spec: CoreSpec) throws {
        let p = CoreProblem.random(spec: spec, length: 12, keyDim: 4, valueDim: 4, seed: 31)
        let ind = Self.independent(p)
        func outside(_ c: CertifiedOutput) -> Int {
            (0..<ind.count).filter { !Self.inside(ind[$0], c.lower[$0], c.upper[$0]) }.count
        }
        let good = try Reference.certified(p, precision: 64, maxPrecision: 64, decimalDigits: nil, fault: .none)
        let bad = try Reference.certified(p, precision: 64, maxPrecision: 64, decimalDigits: nil, fault: .upperEndRoundedDown)
        #expect(outside(good) == 0)
        #expect(outside(bad) > 0, "\(spec.name): the planted bug went unnoticed")
    }

    // MARK: table-maker's dilemma

    /// y_1 = (w_0·v_0 + w_1·v_1)/(w_0 + w_1) with v = 1, 1 + 2^−52 and
    /// w_0 = 1, w_1 = (1 + δ)²: δ = 0 is the exact Float64 midpoint 1 + 2^−53
    /// (undecidable: reported, not guessed); δ = ±2^−100 puts y_1 within
    /// ~2^−153 of it, which 128 bits cannot resolve (the Ziv loop raises the row).
    static func nearTie(delta: Double, swapValues: Bool = false) -> CoreProblem {
        let spec = CoreSpec(score: .squared, hasDecay: false, normalization: .sum)
        let v: [Double] = swapValues ? [1 + 0x1p-52, 1] : [1, 1 + 0x1p-52]
        return CoreProblem(spec: spec, batch: 1, heads: 1, length: 2, keyDim: 2, valueDim: 1,
                           q: [1, 0, 1, 1], k: [1, 0, 1, delta], v: v, decay: nil, scaleSpec: OracleScale(decimal: "1"))
    }

    /// An exact tie the enclosures prove exact (a point enclosure: every sum
    /// and the division are exact at 128 bits) is rounded to even, the IEEE
    /// rule, with no raise; it is not a guess (Proofs/T7, step 4).
    @Test func provenExactTieIsRoundedToEven() throws {
        let c = try Reference.certified(Self.nearTie(delta: 0), precision: 128, maxPrecision: 512)
        #expect(c.o == [1, 1])  // y_1 = 1 + 2^-53 exactly: halfway, even is 1
        #expect(c.isComplete && c.rowsRaised == 0 && c.finalPrecision == 128)
        #expect(Self.independent(Self.nearTie(delta: 0))[1].doubleValue == 1)
    }

    /// A rounding boundary the enclosures cannot pin down (an irrational
    /// scale puts every weight off the grid, and the value sits within
    /// ~2^−600 of a midpoint) stays undecided at a small cap: reported, never guessed.
    @Test func unresolvedBoundaryIsReportedNotGuessed() throws {
        var p = Self.nearTie(delta: 0x1p-600)
        p.scaleSpec = .inverseSquareRoot(keyDim: 2)
        let c = try Reference.certified(p, precision: 128, maxPrecision: 512)
        #expect(c.o[1].isNaN)
        #expect(c.undecided == [.init(index: 1, reason: .boundaryAtCap(precision: 512))])
        #expect(!c.isComplete && c.summary.hasSuffix("; undecided: o 1"))
    }

    @Test func nearTiesAreDecidedByRaisingPrecision() throws {
        // Above the midpoint: rounds up; the 128-bit oracle rounds it to the midpoint and then to even (1).
        let up = Self.nearTie(delta: 0x1p-100)
        let c = try Reference.certified(up)
        #expect(c.isComplete && c.rowsRaised >= 1 && c.finalPrecision > 128)
        #expect(c.o[1] == 1 + 0x1p-52)
        #expect(Self.independent(up)[1].doubleValue == 1 + 0x1p-52)
        #expect(try Reference.quadratic(up, precision: 128).oDouble[1] == 1)  // why certification matters
        // Below the midpoint (values swapped): rounds down.
        let down = Self.nearTie(delta: 0x1p-100, swapValues: true)
        let d = try Reference.certified(down)
        #expect(d.isComplete && d.o[1] == 1)
    }

    @Test func decimalTieIsRoundedToEven() throws {
        // y_1 = (1·0.25 + 1·0)/2 = 0.125 exactly, a point enclosure: a tie at 2
        // significant digits, rounded to even (1.2e-01); at 3 digits no tie.
        let spec = CoreSpec(score: .squared, hasDecay: false, normalization: .sum)
        let p = CoreProblem(spec: spec, batch: 1, heads: 1, length: 2, keyDim: 1, valueDim: 1,
                            q: [1, 1], k: [1, 1], v: [0.25, 0], decay: nil, scaleSpec: OracleScale(decimal: "1"))
        let two = try Reference.certified(p, precision: 64, maxPrecision: 256, decimalDigits: 2)
        #expect(two.isComplete && two.decimal?[1] == "1.2e-01", "\(String(describing: two.decimal))")
        let three = try Reference.certified(p, decimalDigits: 3)
        #expect(three.isComplete && three.decimal?[1] == "1.25e-01" && three.o[1] == 0.125)
    }

    @Test func zeroDenominatorIsReported() throws {
        let spec = CoreSpec(score: .reluLinear, hasDecay: false, normalization: .sum)
        // q_1 ≤ 0 after ReLU: every weight of row 1 is exactly 0.
        let p = CoreProblem(spec: spec, batch: 1, heads: 1, length: 2, keyDim: 1, valueDim: 2,
                            q: [1, -1], k: [1, 1], v: [1, 2, 3, 4], decay: nil, scaleSpec: nil)
        let c = try Reference.certified(p)
        #expect(c.o[0] == 1 && c.o[1] == 2)
        #expect(c.undecided == [.init(index: 2, reason: .zeroDenominator), .init(index: 3, reason: .zeroDenominator)])
        #expect(c.rowsRaised == 0)  // no precision can help: not raised
    }
}

extension BigFloat {
    /// Test-local helpers over the public API (the independent evaluation).
    func squareRootForTest(_ bits: Int) -> BigFloat { let r = BigFloat(precision: bits); r.setSquareRoot(self); return r }
    func expForTest() -> BigFloat { let r = BigFloat(precision: precision); r.setExp(self); return r }
}
