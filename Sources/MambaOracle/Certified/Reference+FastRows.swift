import CMPFR
import Dispatch
import MambaPrecision
import MambaVariants

/// Double-double arithmetic for the certified oracle's fast first attempt
/// (Proofs/T7, step 6). Every function is exact or has the error bound its
/// comment states, for operands whose magnitudes the caller keeps in
/// `[2^−900, 2^900]` (or exactly 0): no overflow, no underflow.
/// Round-to-nearest Double operations, no contraction into FMA (Swift does not fuse).
enum DD {
    static let u = 0x1p-53

    /// `a = hi + lo` exactly, `hi` with 26 significant bits, `lo` with at most 26 (Veltkamp, C = 2^27 + 1).
    @inline(__always)
    static func split(_ a: Double) -> (Double, Double) {
        let c = 134217729.0 * a
        let hi = c - (c - a)
        return (hi, a - hi)
    }

    /// `s + e = a + b` exactly, `s = fl(a + b)` (Knuth's TwoSum; no overflow).
    @inline(__always)
    static func twoSum(_ a: Double, _ b: Double) -> (Double, Double) {
        let s = a + b
        let bb = s - a
        return (s, (a - (s - bb)) + (b - bb))
    }

    /// `twoSum` lane by lane (the same operations on each lane).
    @inline(__always)
    static func twoSum(_ a: SIMD4<Double>, _ b: SIMD4<Double>) -> (SIMD4<Double>, SIMD4<Double>) {
        let s = a + b
        let bb = s - a
        return (s, (a - (s - bb)) + (b - bb))
    }

    /// `p + e = a·b` exactly, `p = fl(a·b)` (Dekker's product through `split`).
    @inline(__always)
    static func twoProd(_ a: Double, _ b: Double) -> (Double, Double) {
        let p = a * b
        let (ah, al) = split(a), (bh, bl) = split(b)
        return (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
    }

    /// `(ah + al)(bh + bl)` for normalised pairs (`|lo| ≤ u|hi|`), normalised,
    /// with relative error ≤ 9u² (Proofs/T7, step 6: `al·bl` dropped, three roundings).
    @inline(__always)
    static func mul(_ a: (Double, Double), _ b: (Double, Double)) -> (Double, Double) {
        let (p, e) = twoProd(a.0, b.0)
        let lo = (e + a.0 * b.1) + a.1 * b.0
        let h = p + lo  // Fast2Sum: |p| ≥ |lo|
        return (h, lo - (h - p))
    }

    @inline(__always)
    static func inRange(_ a: Double, _ lo: Double = 0x1p-900, _ hi: Double = 0x1p900) -> Bool {
        let m = a.magnitude
        return m >= lo && m <= hi
    }

    /// The exact dot product of two integer rows as a two's-complement
    /// 128-bit integer `hi·2^64 + lo` (`IntegerRow.dotParts`).
    @inline(__always)
    static func dot(_ a: IntegerRow, _ b: IntegerRow) -> (Int64, UInt64) { IntegerRow.dotParts(a, b) }

    /// The exact integer `(hi·2^64 + lo)·2^e` as a normalised pair, or nil
    /// when it does not fit (more than 106 significant bits, or out of range).
    @inline(__always)
    static func exact(_ hi: Int64, _ lo: UInt64, _ e: Int) -> (Double, Double)? {
        let negative = hi < 0
        var h = UInt64(bitPattern: hi), l = lo
        if negative {  // two's-complement negation of the 128-bit pair
            h = ~h; l = ~l
            let (s, o) = l.addingReportingOverflow(1)
            l = s; h = h &+ (o ? 1 : 0)
        }
        let bits = h != 0 ? 128 - h.leadingZeroBitCount : 64 - l.leadingZeroBitCount
        guard bits <= 106, e > -1000, e < 1000 else { return nil }
        var x: (Double, Double)
        if bits <= 53 {
            x = (Double(l), 0)  // exact
        } else {
            // M = A·2^k + B, A < 2^53, B < 2^k ≤ 2^53: both exact; Fast2Sum normalises exactly.
            let k = bits - 53
            let a = (h &<< UInt64(64 - k)) | (l &>> UInt64(k))
            let b = l & ((1 &<< UInt64(k)) - 1)
            let ah = Double(a) * pow2(k), bl = Double(b)
            let s = ah + bl
            x = (s, bl - (s - ah))
        }
        let sc = pow2(e)
        return negative ? (-x.0 * sc, -x.1 * sc) : (x.0 * sc, x.1 * sc)
    }

    /// A normalised pair near the MPFR interval `[lo, hi]` and a bound `ρ`
    /// with `|x − (h + l)| ≤ ρ·|h|` for every `x` in it (directed rounding),
    /// or nil when `h` is out of range.
    static func approximate(_ lo: MPFRPointer, _ hi: MPFRPointer, tmp: MPFRPointer, tmp2: MPFRPointer) -> (Double, Double, rho: Double)? {
        // The ball holding [lo, hi] (`DDBall.holding`: the same directed MPFR steps), then its radius relative to h.
        guard let ball = DDBall.holding(lo, hi, tmp: tmp, tmp2: tmp2), inRange(ball.h) else { return nil }
        let h = ball.h, l = ball.l
        let rho = ((ball.r / h.magnitude).nextUp * (1 + 0x1p-50)).nextUp
        return (h, l, rho)
    }
}

extension Reference {
    /// The fast first attempt of the certified oracle (Proofs/T7, step 6):
    /// every output row `i` of one sequence enclosed in double-double
    /// arithmetic with a rigorous error bound, then divided (or multiplied by
    /// `e^{L_i}`) by the MPFR interval operations of `enclosedRows`.
    ///
    /// Each weight `w_ij = f(s·x_ij)·e^{−L_j}` is formed from the exact
    /// integer dot product `x_ij` by three double-double products (relative
    /// error `ε_w`); the sums `Σ_j ŵ_j v_jc` and `Σ_j ŵ_j` are accumulated
    /// with error-free transformations (TwoSum on the exact products
    /// `split(ŵh)·v`, Float32 values) and a Double sum of the errors, bounded by
    /// `(ε_w(1+u) + (8m² + 8m)u²)·W̄·max_j|v_jc| + (m + 8)·2^−1074` for `m` terms,
    /// `W̄ ≥ Σ_j |ŵh_j|`.
    ///
    /// - Returns: enclosures at the sequence's precision, or nil when the
    ///   fast path does not apply to the sequence (exponential score, initial
    ///   state, pairwise decay, inputs that are not Float32 values, ranges
    ///   beyond `2^±600`); `ok[i]` is false for rows it does not enclose
    ///   (a weight out of range, a normaliser whose enclosure holds 0), which
    ///   the MPFR passes take.
    static func fastEnclosedRows(_ e: EnclosedSequence, fault: EnclosureFault = .none) -> (RowEnclosures, ok: [Bool])? {
        let c = e.base
        let n = c.n, dv = c.dv, p = c.precision
        guard c.spec.score != .exponential, e.s0 == nil, n > 0, n <= 1 << 20, dv > 0 else { return nil }
        let squared = c.spec.score == .squared
        let hasDecay = c.prefix != nil
        if hasDecay && !e.factored { return nil }
        guard c.qRows.allSatisfy({ $0 != nil }), c.kRows.allSatisfy({ $0 != nil }) else { return nil }
        let qRows = c.qRows.map { $0! }, kRows = c.kRows.map { $0! }
        // Values: Float32 numbers (so that a 26-bit half of a weight times a value is exact).
        // Rows of V padded with zeros to `chunks` SIMD4 lanes (each lane is one column,
        // the same Double operations as column by column; padded lanes are dropped).
        let chunks = (dv + 3) / 4
        var v = [SIMD4<Double>](repeating: .zero, count: n * chunks)
        var vmax = [Double](repeating: 0, count: dv)
        for r in 0..<n {
            for col in 0..<dv {
                let x = mc_get_d(c.vM[r * dv + col], MPFR_RNDN)  // exact: 53-bit copies of the inputs
                guard x.isFinite, Double(Float(x)) == x else { return nil }
                v[r * chunks + col / 4][col % 4] = x
                vmax[col] = Swift.max(vmax[col], x.magnitude)
            }
        }
        let tb = MPFRBuffer(count: 2, precision: Swift.max(p, c.decayPrecision) + 128)
        // s and e^{−L_j} as normalised pairs with relative bounds ρ_s, ρ_g ≤ 2^−100.
        guard let (sh, sl, rhoS) = DD.approximate(e.sLo[0], e.sHi[0], tmp: tb[0], tmp2: tb[1]), rhoS <= 0x1p-100 else {
            return nil
        }
        var g = [(Double, Double)](repeating: (1, 0), count: hasDecay ? n : 0)
        var rhoG = 0.0
        if hasDecay, let lo = e.eLo, let hi = e.eHi {
            for j in 0..<n {
                guard let (h, l, r) = DD.approximate(lo[j], hi[j], tmp: tb[0], tmp2: tb[1]), DD.inRange(h, 0x1p-600, 0x1p600),
                      r <= 0x1p-100 else { return nil }
                g[j] = (h, l); rhoG = Swift.max(rhoG, r)
            }
        }
        let gam = g, vmx = vmax
        let u = DD.u, uu = u * u
        // ε_w ≥ (1+ρ_s)²(1+9u²)⁴(1+ρ_g) − 1, relative to ŵ (Proofs/T7, step 6).
        let epsW = ((2 * rhoS + rhoG + 40 * uu) * (1 + 0x1p-40)).nextUp
        let out = RowEnclosures(rows: n, dv: dv, precision: p)
        let okRows = UnsafeMutableBufferPointer<Bool>.allocate(capacity: n)
        okRows.initialize(repeating: false)
        defer { okRows.deallocate() }
        let sum = c.spec.normalization == .sum
        let workers = Swift.max(1, Swift.min(n, 2 * ProcessInfoLite.activeProcessorCount))
        let okPtr = UnsafeMutableSendable(okRows.baseAddress!)
        v.withUnsafeBufferPointer { vb in
            let vp = UnsafeMutableSendable(UnsafeMutablePointer(mutating: vb.baseAddress!))
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let S = UnsafeMutablePointer<SIMD4<Double>>.allocate(capacity: chunks)
                let C = UnsafeMutablePointer<SIMD4<Double>>.allocate(capacity: chunks)
                defer { S.deallocate(); C.deallocate() }
                let t = MPFRBuffer(count: 8, precision: p)
                let vv = UnsafePointer(vp.pointer)
                var i = w
                rows: while i < n {
                    defer { i += workers }
                    S.initialize(repeating: .zero, count: chunks); C.initialize(repeating: .zero, count: chunks)
                    var dS = 0.0, dC = 0.0, wSum = 0.0
                    let qi = qRows[i]
                    for j in 0...i {
                        let kj = kRows[j]
                        let (mh, ml) = DD.dot(qi, kj)
                        if mh == 0 && ml == 0 { continue }  // the weight is exactly 0
                        guard let x = DD.exact(mh, ml, qi.exponent + kj.exponent), DD.inRange(x.0) else { continue rows }
                        var f = DD.mul((sh, sl), x)
                        guard DD.inRange(f.0) else { continue rows }
                        if squared { f = DD.mul(f, f); guard DD.inRange(f.0) else { continue rows } }
                        let wt = hasDecay ? DD.mul(f, gam[j]) : f
                        guard DD.inRange(wt.0, 0x1p-700, 0x1p700) else { continue rows }
                        let (wh, wl) = wt
                        wSum += wh.magnitude
                        let (s0, e0) = DD.twoSum(dS, wh)
                        dS = s0; dC = (dC + e0) + wl
                        let (h1, h2) = DD.split(wh)
                        let a1 = SIMD4(repeating: h1), a2 = SIMD4(repeating: h2), a3 = SIMD4(repeating: wl)
                        let vr = vv + j * chunks
                        for k in 0..<chunks {
                            let x = vr[k]
                            let p1 = a1 * x, p2 = a2 * x, p3 = a3 * x  // p1, p2 exact
                            let (s1, e1) = DD.twoSum(S[k], p1)
                            let (s2, e2) = DD.twoSum(s1, p2)
                            S[k] = s2
                            C[k] = ((C[k] + e1) + e2) + p3
                        }
                    }
                    // Error bounds (Proofs/T7, step 6), every Double operation rounded up by the final factor.
                    let m = Double(i + 1)
                    let wBar = (wSum * (1 + 2 * m * u)).nextUp
                    let rel = epsW * (1 + u) + (8 * m * m + 8 * m) * uu
                    let tiny = (m + 8) * 0x1p-1074
                    func bound(_ scale: Double) -> Double {
                        fault == .fastBoundDropped ? 0 : ((rel * wBar * scale) * (1 + 0x1p-40) + tiny).nextUp
                    }
                    let nLo = t[0], nHi = t[1], dLo = t[2], dHi = t[3], tmp = t[4], tmp2 = t[5]
                    func enclose(_ s: Double, _ c: Double, _ b: Double, _ lo: MPFRPointer, _ hi: MPFRPointer) {
                        mc_set_d(tmp, s, MPFR_RNDN)
                        mc_set_d(tmp2, c, MPFR_RNDN)
                        mc_add(lo, tmp, tmp2, MPFR_RNDD); mc_add(hi, tmp, tmp2, MPFR_RNDU)
                        mc_set_d(tmp, b, MPFR_RNDN)
                        mc_sub(lo, lo, tmp, MPFR_RNDD); mc_add(hi, hi, tmp, MPFR_RNDU)
                    }
                    if sum {
                        enclose(dS, dC, bound(1), dLo, dHi)
                        guard Interval.excludesZero(dLo, dHi) else { continue rows }
                    }
                    let ro = out.lo.base + i * dv, rh = out.hi.base + i * dv
                    for col in 0..<dv {
                        enclose(S[col / 4][col % 4], C[col / 4][col % 4], bound(vmx[col]), nLo, nHi)
                        if sum {
                            Interval.div(ro + col, rh + col, nLo, nHi, dLo, dHi, tmp: tmp, tmp2: tmp2)
                        } else if let fLo = e.fLo, let fHi = e.fHi {
                            Interval.mul(ro + col, rh + col, nLo, nHi, fLo[i], fHi[i], tmp: tmp)
                        } else {
                            mc_set(ro + col, nLo, MPFR_RNDD); mc_set(rh + col, nHi, MPFR_RNDU)
                        }
                    }
                    okPtr.pointer[i] = true
                }
            }
        }
        return (out, Array(okRows))
    }
}
