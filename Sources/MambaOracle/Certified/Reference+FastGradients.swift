import CMPFR
import Dispatch
import MambaVariants

/// The pair terms of the fast gradient pass (Proofs/T7, step 8 (b)) as
/// `DDBall`s: `w_ij = f(s·x_ij)·F_i·E_j`, `f′(X_ij)Γ_ij` and `G_ij = dO_i·v_j`,
/// from the exact integer dot products, the scale ball `S` and the decay
/// balls `F_i ∋ e^{L_i}`, `E_j ∋ e^{−L_j}` (factored decay; none: exactly 1).
struct FastGradientPairs: @unchecked Sendable {
    let q: [IntegerRow], k: [IntegerRow], dO: [IntegerRow], v: [IntegerRow]
    let s: DDBall, f: [DDBall], e: [DDBall]
    let squared: Bool, hasDecay: Bool

    /// `(w, f′Γ, G)` of `(i, j)`, or nil when a ball leaves the range where
    /// `DDBall`'s bounds hold (the sequence is then declined).
    @inline(__always)
    func terms(_ i: Int, _ j: Int) -> (w: DDBall, fp: DDBall, g: DDBall)? {
        let g: DDBall
        let (gh, gl) = DD.dot(dO[i], v[j])
        if gh == 0 && gl == 0 { g = .zero } else {
            guard let x = DD.exact(gh, gl, dO[i].exponent + v[j].exponent) else { return nil }
            g = DDBall(h: x.0, l: x.1, r: 0)
        }
        let (mh, ml) = DD.dot(q[i], k[j])
        if mh == 0 && ml == 0 {  // x_ij = 0: w = 0 and f′ = 0 (squared) or 1 (first order)
            let fp = squared ? .zero : (hasDecay ? f[i] * e[j] : .one)
            return fp.inRange && g.inRange ? (.zero, fp, g) : nil
        }
        guard let xe = DD.exact(mh, ml, q[i].exponent + k[j].exponent) else { return nil }
        let x = DDBall(h: xe.0, l: xe.1, r: 0)
        guard x.inRange else { return nil }
        let big = s * x  // X = s·x
        var w = big, fp = DDBall.one
        if squared {
            guard big.inRange else { return nil }
            w = big * big; fp = big.doubled  // f = X², f′ = 2X
        }
        if hasDecay {
            let gam = f[i] * e[j]
            guard gam.inRange, w.inRange, fp.inRange else { return nil }
            w = w * gam; fp = fp * gam
        }
        guard w.inRange, fp.inRange, g.inRange else { return nil }
        return (w, fp, g)
    }
}

extension Reference {
    /// The fast first attempt of the certified gradients (Proofs/T7, step 8):
    /// every gradient of one sequence enclosed by `DDBall` arithmetic, in the
    /// two sweeps of `enclosedGradients` (row sweep: `D_i`, `δ_i`, `dq_i` and
    /// the row part of `dL_i`; column sweep: `dk_j`, `dv_j` and the column
    /// part of `dL_j`), with the sums by `DDWeightedSum`. `D_i`, `δ_i` and
    /// `1/D_i` are formed by MPFR interval operations from the sums' enclosures
    /// and taken back as balls; `dW_ij = (G_ij − δ_i)·(1/D_i)` (sum) or `G_ij`,
    /// `t_ij = (f′Γ_ij·dW_ij)·s`, `dv`'s weights `w_ij·(1/D_i)`, `dL`'s `w_ij·dW_ij`.
    /// The structural zeros of the MPFR passes are kept exact: `dW_00 = 0`
    /// (sum normalisation), `da_0 = 0`, relu-linear's zero gradients.
    ///
    /// - Returns: enclosures at the sequence's precision, or nil when the
    ///   attempt does not apply (exponential score, initial state, pairwise
    ///   decay, rows that are not `IntegerRow`s of binary32 numbers, widths
    ///   above 64, a ball out of range, a normaliser whose enclosure holds 0):
    ///   the MPFR passes then take the whole sequence.
    static func fastEnclosedGradients(_ e: EnclosedSequence, dO: ValueRows, fault: EnclosureFault = .none)
        -> GradientEnclosures? {
        let c = e.base
        let n = c.n, dk = c.dk, dv = c.dv, p = c.precision
        guard c.spec.score != .exponential, e.s0 == nil, n > 0, n <= 1 << 20, dk > 0, dv > 0, dk <= 64, dv <= 64,
              dO.width == dv else { return nil }
        let isSum = c.spec.normalization == .sum, hasDecay = e.lLo != nil
        if hasDecay && !e.factored { return nil }
        let qr = c.qRows.compactMap { $0 }, kr = c.kRows.compactMap { $0 }, vr = c.vRows.compactMap { $0 }
        let gr = dO.integer.compactMap { $0 }
        guard qr.count == n, kr.count == n, vr.count == n, gr.count == n else { return nil }
        guard let qs = SIMDRows(c.qM, rows: n, width: dk), let ks = SIMDRows(c.kM, rows: n, width: dk),
              let gs = SIMDRows(dO.mpfr, rows: n, width: dv) else { return nil }
        // Constants as balls (from MPFR enclosures: exact subtraction needs the enclosures' precision).
        let tb = MPFRBuffer(count: 2, precision: Swift.max(p, c.decayPrecision) + 128)
        guard let s = DDBall.holding(e.sLo[0], e.sHi[0], tmp: tb[0], tmp2: tb[1]), s.inRange else { return nil }
        var fb = [DDBall](), eb = [DDBall]()
        if hasDecay, let fLo = e.fLo, let fHi = e.fHi, let eLo = e.eLo, let eHi = e.eHi {
            for i in 0..<n {
                guard let a = DDBall.holding(fLo[i], fHi[i], tmp: tb[0], tmp2: tb[1]), a.inRange,
                      let b = DDBall.holding(eLo[i], eHi[i], tmp: tb[0], tmp2: tb[1]), b.inRange else { return nil }
                fb.append(a); eb.append(b)
            }
        }
        let pairs = FastGradientPairs(q: qr, k: kr, dO: gr, v: vr, s: s, f: fb, e: eb,
                                      squared: c.spec.score == .squared, hasDecay: hasDecay)
        let drop = fault == .fastBoundDropped
        let dq = EnclosedTensor(count: n * dk, precision: p), dkT = EnclosedTensor(count: n * dk, precision: p)
        let dvT = EnclosedTensor(count: n * dv, precision: p)
        let dL = hasDecay ? EnclosedTensor(count: n, precision: p) : nil
        // Per row: δ_i and 1/D_i as balls (sum normalisation); the row part of dL_i (none).
        let rowBalls = UnsafeMutablePointer<DDBall>.allocate(capacity: 2 * n)
        rowBalls.initialize(repeating: .zero, count: 2 * n)
        // Per row (row sweep) or column (column sweep): a ball out of range or a normaliser holding 0,
        // each flag written by the one worker that owns its index.
        let failed = UnsafeMutablePointer<Bool>.allocate(capacity: n)
        failed.initialize(repeating: false, count: n)
        defer { rowBalls.deallocate(); failed.deallocate() }
        let rb = UnsafeMutableSendable(rowBalls), fl = UnsafeMutableSendable(failed)
        let rowL = hasDecay && !isSum ? EnclosedTensor(count: n, precision: p) : nil
        let ones = SIMDRows.ones

        // Row sweep, rows i: D_i, δ_i, 1/D_i; dq_i; the row part of dL_i.
        parallelRows(n) { rows in
            let w = UnsafeMutablePointer<DDBall>.allocate(capacity: 3 * n)
            defer { w.deallocate() }
            let fp = w + n, g = w + 2 * n
            let accQ = DDWeightedSum(chunks: ks.chunks), acc1 = DDWeightedSum(chunks: 1)
            accQ.dropBound = drop; acc1.dropBound = drop
            let t = MPFRBuffer(count: 10, precision: p)
            let big = MPFRBuffer(count: 2, precision: p + 128)
            for i in rows {
                for j in 0...i {
                    guard let x = pairs.terms(i, j) else { fl.pointer[i] = true; return }
                    w[j] = x.w; fp[j] = x.fp; g[j] = x.g
                }
                var delta = DDBall.zero, inv = DDBall.one
                if isSum {
                    let dl = t[0], dh = t[1], nl = t[2], nh = t[3], el = t[4], eh = t[5], il = t[6], ih = t[7]
                    acc1.start(terms: i + 1)
                    for j in 0...i { acc1.add(w[j], ones, 0) }
                    acc1.finish(width: 1, tmp: t[8], tmp2: t[9]) { _ in (dl, dh) }
                    guard Interval.excludesZero(dl, dh) else { fl.pointer[i] = true; return }
                    acc1.start(terms: i + 1)
                    for j in 0...i {
                        let y = w[j] * g[j]
                        guard y.inRange else { fl.pointer[i] = true; return }
                        acc1.add(y, ones, 0)
                    }
                    acc1.finish(width: 1, tmp: t[8], tmp2: t[9]) { _ in (nl, nh) }
                    // δ_i = num_i/D_i (row 0: δ_0 = G_00 exactly, and dW_00 = 0 below); 1/D_i.
                    Interval.div(el, eh, nl, nh, dl, dh, tmp: t[8], tmp2: t[9])
                    mc_set_ui(t[8], 1, MPFR_RNDN)
                    Interval.div(il, ih, t[8], t[8], dl, dh, tmp: t[9], tmp2: big[1])
                    guard let d = i == 0 ? g[0] : DDBall.holding(el, eh, tmp: big[0], tmp2: big[1]),
                          let v = DDBall.holding(il, ih, tmp: big[0], tmp2: big[1]), d.inRange, v.inRange else {
                        fl.pointer[i] = true; return
                    }
                    delta = d; inv = v
                    rb.pointer[2 * i] = d; rb.pointer[2 * i + 1] = v
                }
                // t_ij = (f′Γ_ij·dW_ij)·s; dq̃_i = Σ_j t_ij k̃_j
                accQ.start(terms: i + 1)
                if rowL != nil { acc1.start(terms: i + 1) }
                for j in 0...i {
                    var dW = g[j]
                    if isSum {
                        if i == 0 { dW = .zero } else {
                            let y = g[j] - delta
                            guard y.inRange else { fl.pointer[i] = true; return }
                            dW = y * inv
                        }
                    }
                    let a = fp[j] * dW
                    guard dW.inRange, a.inRange else { fl.pointer[i] = true; return }
                    let tij = a * pairs.s
                    guard tij.inRange else { fl.pointer[i] = true; return }
                    accQ.add(tij, ks, j)
                    if rowL != nil {
                        let y = w[j] * dW
                        guard y.inRange else { fl.pointer[i] = true; return }
                        acc1.add(y, ones, 0)
                    }
                }
                accQ.finish(width: dk, tmp: t[8], tmp2: t[9]) { (dq.lo[i * dk + $0], dq.hi[i * dk + $0]) }
                if let rowL { acc1.finish(width: 1, tmp: t[8], tmp2: t[9]) { _ in (rowL.lo[i], rowL.hi[i]) } }
            }
        }
        if (0..<n).contains(where: { failed[$0] }) { return nil }

        // Column sweep, columns j: dk̃_j = Σ_{i≥j} t_ij q̃_i, dv_j = Σ_{i≥j} (w_ij/D_i) dO_i, Σ_{i≥j} w_ij dW_ij.
        parallelRows(n) { columns in
            let accK = DDWeightedSum(chunks: qs.chunks), accV = DDWeightedSum(chunks: gs.chunks)
            let acc1 = DDWeightedSum(chunks: 1)
            accK.dropBound = drop; accV.dropBound = drop; acc1.dropBound = drop
            let t = MPFRBuffer(count: 4, precision: p)
            for j in columns {
                let m = n - j
                accK.start(terms: m); accV.start(terms: m)
                if hasDecay { acc1.start(terms: m) }
                for i in j..<n {
                    guard let x = pairs.terms(i, j) else { fl.pointer[j] = true; return }
                    var dW = x.g, y = x.w
                    if isSum {
                        let delta = rb.pointer[2 * i], inv = rb.pointer[2 * i + 1]
                        if i == 0 { dW = .zero } else {
                            let d = x.g - delta
                            guard d.inRange else { fl.pointer[j] = true; return }
                            dW = d * inv
                        }
                        y = x.w * inv
                    }
                    let a = x.fp * dW
                    guard dW.inRange, a.inRange, y.inRange else { fl.pointer[j] = true; return }
                    let tij = a * pairs.s
                    guard tij.inRange else { fl.pointer[j] = true; return }
                    accK.add(tij, qs, i)
                    accV.add(y, gs, i)
                    if hasDecay {
                        let z = x.w * dW
                        guard z.inRange else { fl.pointer[j] = true; return }
                        acc1.add(z, ones, 0)
                    }
                }
                accK.finish(width: dk, tmp: t[0], tmp2: t[1]) { (dkT.lo[j * dk + $0], dkT.hi[j * dk + $0]) }
                accV.finish(width: dv, tmp: t[0], tmp2: t[1]) { (dvT.lo[j * dv + $0], dvT.hi[j * dv + $0]) }
                guard let dL else { continue }
                // dL_j = (row part) − Σ_{i≥j} w_ij dW_ij, the column sum enclosed in [t2, t3].
                acc1.finish(width: 1, tmp: t[0], tmp2: t[1]) { _ in (t[2], t[3]) }
                if let rowL {
                    mc_sub(dL.lo[j], rowL.lo[j], t[3], MPFR_RNDD); mc_sub(dL.hi[j], rowL.hi[j], t[2], MPFR_RNDU)
                } else {
                    mc_neg(dL.lo[j], t[3], MPFR_RNDD); mc_neg(dL.hi[j], t[2], MPFR_RNDU)
                }
            }
        }
        if (0..<n).contains(where: { failed[$0] }) { return nil }
        // relu-linear: ReLU′(x) = 0 for x ≤ 0: the gradient is exactly 0 (as in `enclosedGradients`).
        if c.spec.score == .reluLinear {
            for x in 0..<(n * dk) {
                if mc_sgn(c.qM[x]) <= 0 { mc_set_zero(dq.lo[x], 1); mc_set_zero(dq.hi[x], 1) }
                if mc_sgn(c.kM[x]) <= 0 { mc_set_zero(dkT.lo[x], 1); mc_set_zero(dkT.hi[x], 1) }
            }
        }
        // da_t = Σ_{u≥t} dL_u, summed down and up. Without an initial state and with every normaliser
        // bounded away from 0, Σ_u dL_u = da_0 = 0 exactly (`enclosedGradients`), so also
        // da_t = −Σ_{u<t} dL_u: both sums enclose da_t, and their intersection is kept (the
        // prefix form has t terms where the suffix form has N − t: the widths of the dL_u add up,
        // and a small da_t of an early t, the sum of many cancelling dL_u, needs the short form).
        var da: EnclosedTensor? = nil
        if let dL {
            let a = EnclosedTensor(count: n, precision: p)
            for u in stride(from: n - 1, through: 0, by: -1) {
                if u == n - 1 { mc_set(a.lo[u], dL.lo[u], MPFR_RNDD); mc_set(a.hi[u], dL.hi[u], MPFR_RNDU); continue }
                mc_add(a.lo[u], a.lo[u + 1], dL.lo[u], MPFR_RNDD); mc_add(a.hi[u], a.hi[u + 1], dL.hi[u], MPFR_RNDU)
            }
            let b = EnclosedTensor(count: 2, precision: p)  // −Σ_{u<t} dL_u ∈ [b.lo[0], b.hi[0]]
            mc_set_zero(b.lo[0], 1); mc_set_zero(b.hi[0], 1)
            for t in 1..<n {
                mc_sub(b.lo[0], b.lo[0], dL.hi[t - 1], MPFR_RNDD); mc_sub(b.hi[0], b.hi[0], dL.lo[t - 1], MPFR_RNDU)
                if mc_cmp(b.lo[0], a.lo[t]) > 0 { mc_set(a.lo[t], b.lo[0], MPFR_RNDD) }
                if mc_cmp(b.hi[0], a.hi[t]) < 0 { mc_set(a.hi[t], b.hi[0], MPFR_RNDU) }
            }
            mc_set_zero(a.lo[0], 1); mc_set_zero(a.hi[0], 1)
            da = a
        }
        return GradientEnclosures(dq: dq, dk: dkT, dv: dvT, dL: dL, da: da, dS0: nil, dz0: nil, zeroRows: [])
    }
}
