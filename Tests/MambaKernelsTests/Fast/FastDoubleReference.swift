import Foundation
import MambaKernels
import MambaVariants

/// A direct Double evaluation of docs/MATH.md §1 (and the state convention of §3),
/// written from the definition, plus a first-order *componentwise error
/// bound* for a Float32/Float16 kernel computing the same thing. The bound
/// is what the tests' tolerances come from; it is derived as follows.
///
/// Let `u` be the unit roundoff of the working arithmetic (2⁻²⁴ Float32,
/// 2⁻¹¹ pure binary16), `γ_n = n·u/(1 − n·u)`. Every form evaluates the
/// same sums in different orders, so with the majorant `M_ij` of `|w_ij|`
/// (`A_ij = s·Σ_t |q_it k_jt|`; `M = A·Γ` linear, `A²·Γ` squared, `w`
/// itself exponential):
///
/// - the score dot product (`dk` terms; squared doubles the relative error),
///   the φ₂ dot product of the inter-chunk/recurrent path (`F` terms), the
///   sum over keys and chunks (≤ `2N` terms) and a few single roundings
///   (scale, exp, product with the decay, division): at most
///   `K = 2·dk + F + 2·N + 20` roundings on any path, giving `γ_K·M_ij`;
/// - the decay `exp(L_i − L_j)`: the Float32 prefix sum of `i + 1` terms of
///   one sign has absolute error `≤ u·(i+1)·|L_i|` (global prefix sums, the
///   worst case — `KernelOptions.globalPrefixSums`; the default segment
///   sums, chunk-local sums and products of per-step exps are smaller,
///   `≤ u·(i−j)·|L_i − L_j|` and `≤ 3·N·u` relative), so `Γ` carries a
///   relative error `δΓ_i = 2u·(i+1)·S_i + 3Nu` with `S_i = Σ_{t≤i}|a_t|`;
/// - exponential score: the exponent `λ = s·q·k + L_i − L_j` itself carries
///   `s·γ_dk·A_ij + 2u(|λ_ij| + |m_i|)`, which becomes a relative error of `w`;
/// - acc32 modes: each GEMM operand rounded to the storage format
///   (`u_op` = 2⁻¹¹ binary16, 2⁻⁸ bfloat16, 2⁻¹¹ TF32) — at most 8 such
///   roundings on a path (score matrix, scaled features, state copy, features
///   and scaled values of the update, squared features, √2), `8·u_op`;
/// - output rounding `u_out·|y|`.
///
/// Un-normalised: `|ŷ − y| ≤ Σ_j E_ij |v_j|` with `E_ij = (γ_K + δΓ_i +
/// 8u_op + extra_ij)·M_ij` (and the initial-state term likewise). Sum
/// normalised: `|ŷ − y| ≤ (Σ_j E_ij|v_j| + |y|·Σ_j E_ij)/|den|`. A factor 2
/// covers the neglected second-order terms. Inputs are generated already in
/// the mode's storage format, so input rounding contributes nothing.
enum FastReference {
    struct Units {
        var working: Double
        var operand: Double
        var output: Double

        static func of(_ mode: PrecisionMode) -> Units {
            switch mode {
            case .float32: return Units(working: 0x1p-24, operand: 0, output: 0)
            case .float16Acc32: return Units(working: 0x1p-24, operand: 0x1p-11, output: 0x1p-11)
            case .float16: return Units(working: 0x1p-11, operand: 0x1p-11, output: 0x1p-11)
            case .bfloat16Acc32: return Units(working: 0x1p-24, operand: 0x1p-8, output: 0x1p-8)
            case .tf32: return Units(working: 0x1p-24, operand: 0x1p-11, output: 0)
            }
        }
    }

    struct Result {
        var o: [Double]
        /// Componentwise error bound of `o` for the given units.
        var bound: [Double]
        var s: [Double]?
        var z: [Double]?
        var sBound: [Double]?
        var zBound: [Double]?
    }

    static func gamma(_ n: Int, _ u: Double) -> Double { Double(n) * u / (1 - Double(n) * u) }

    static func run(_ p: CoreProblem, mode: PrecisionMode) -> Result {
        let units = Units.of(mode)
        let spec = p.spec, n = p.length, dk = p.keyDim, dv = p.valueDim, bh = p.sequences
        let s = p.scale
        let fdim = p.featureDim
        let c = spec.score == .squared ? s * s : s
        var o = [Double](repeating: 0, count: bh * n * dv), bound = o
        var sOut: [Double]? = fdim.map { [Double](repeating: 0, count: bh * $0 * dv) }
        var zOut: [Double]? = (fdim != nil && spec.normalization == .sum) ? [Double](repeating: 0, count: bh * fdim!) : nil
        var sB = sOut, zB = zOut
        let K = 2 * dk + (fdim ?? 0) + 2 * n + 20
        let baseRel = gamma(K, units.working) + 8 * units.operand
        for seq in 0..<bh {
            func row(_ x: [Double], _ t: Int, _ w: Int) -> [Double] {
                let r = Array(x[(seq * n + t) * w ..< (seq * n + t + 1) * w])
                return spec.score == .reluLinear && w == dk ? r.map { max($0, 0) } : r
            }
            let q = (0..<n).map { row(p.q, $0, dk) }
            let k = (0..<n).map { row(p.k, $0, dk) }
            let v = (0..<n).map { t in Array(p.v[(seq * n + t) * dv ..< (seq * n + t + 1) * dv]) }
            var L = [Double](repeating: 0, count: n), S = L
            if spec.hasDecay, let d = p.decay {
                var acc = 0.0, absAcc = 0.0
                for t in 0..<n {
                    switch d {
                    case .perStep(let a): acc += a[seq * n + t]; absAcc += abs(a[seq * n + t])
                    case .prefixSum(let l): acc = l[seq * n + t]; absAcc = abs(acc)
                    }
                    L[t] = acc; S[t] = absAcc
                }
            }
            let phiQ = fdim == nil ? [] : q.map { FeatureMap.apply(spec.score == .squared ? .squared : .linear, $0) }
            let phiK = fdim == nil ? [] : k.map { FeatureMap.apply(spec.score == .squared ? .squared : .linear, $0) }
            var s0: [Double]? = nil, z0: [Double]? = nil
            if let st = p.initialState, let f = fdim {
                s0 = Array(st.s[seq * f * dv ..< (seq + 1) * f * dv])
                z0 = st.z.map { Array($0[seq * f ..< (seq + 1) * f]) }
            }
            for i in 0..<n {
                let dGamma = 2 * units.working * Double(i + 1) * S[i] + 3 * Double(n) * units.working
                var logits = [Double](repeating: 0, count: i + 1)
                var absA = logits
                for j in 0...i {
                    var dot = 0.0, ab = 0.0
                    for t in 0..<dk { dot += q[i][t] * k[j][t]; ab += abs(q[i][t] * k[j][t]) }
                    logits[j] = s * dot
                    absA[j] = s * ab
                }
                var w = [Double](repeating: 0, count: i + 1), mag = w, err = w
                var m = -Double.infinity
                if spec.score == .exponential {
                    for j in 0...i { m = max(m, logits[j] + L[i] - L[j]) }
                }
                for j in 0...i {
                    let g = exp(L[i] - L[j])
                    switch spec.score {
                    case .linear, .reluLinear:
                        w[j] = logits[j] * g; mag[j] = absA[j] * g
                        err[j] = (baseRel + dGamma) * mag[j]
                    case .squared:
                        w[j] = logits[j] * logits[j] * g; mag[j] = absA[j] * absA[j] * g
                        err[j] = (baseRel + dGamma) * mag[j]
                    case .exponential:
                        let lam = logits[j] + L[i] - L[j]
                        // sum: weights relative to the row maximum (m cancels); none: exp(λ).
                        w[j] = spec.normalization == .sum ? exp(lam - m) : exp(lam)
                        mag[j] = w[j]
                        let extra = gamma(dk, units.working) * absA[j] + 2 * units.working * (abs(lam) + abs(m))
                        err[j] = (baseRel + dGamma + extra) * w[j]
                    }
                }
                var num = [Double](repeating: 0, count: dv), numB = num
                var den = 0.0, denB = 0.0
                for j in 0...i {
                    for col in 0..<dv { num[col] += w[j] * v[j][col]; numB[col] += err[j] * abs(v[j][col]) }
                    den += w[j]; denB += err[j]
                }
                if let s0, let f = fdim {
                    let g = exp(L[i]) * c
                    let rel = baseRel + dGamma
                    for fi in 0..<f {
                        let pq = phiQ[i][fi] * g
                        for col in 0..<dv {
                            num[col] += pq * s0[fi * dv + col]
                            numB[col] += rel * abs(pq * s0[fi * dv + col])
                        }
                        if let z0 { den += pq * z0[fi]; denB += rel * abs(pq * z0[fi]) }
                    }
                }
                for col in 0..<dv {
                    let idx = (seq * n + i) * dv + col
                    let y: Double, b: Double
                    if spec.normalization == .sum {
                        y = num[col] / den
                        b = (numB[col] + abs(y) * denB) / abs(den)
                    } else {
                        y = num[col]
                        b = numB[col]
                    }
                    o[idx] = y
                    bound[idx] = 2 * b + units.output * abs(y) + 2 * units.working * abs(y)
                }
            }
            if let f = fdim {
                let last = n > 0 ? L[n - 1] : 0
                let dGamma = 2 * units.working * Double(n) * (n > 0 ? S[n - 1] : 0) + 3 * Double(n) * units.working
                let rel = 2 * (baseRel + dGamma)
                for fi in 0..<f {
                    var zs = 0.0, zb = 0.0
                    for col in 0..<dv {
                        var acc = 0.0, ab = 0.0
                        if let s0 { acc = exp(last) * s0[fi * dv + col]; ab = abs(acc) }
                        for j in 0..<n {
                            let t = exp(last - L[j]) * phiK[j][fi] * v[j][col]
                            acc += t; ab += abs(t)
                        }
                        sOut![(seq * f + fi) * dv + col] = acc
                        sB![(seq * f + fi) * dv + col] = rel * ab + 2 * units.working * abs(acc)
                    }
                    if zOut != nil {
                        if let z0 { zs = exp(last) * z0[fi]; zb = abs(zs) }
                        for j in 0..<n { let t = exp(last - L[j]) * phiK[j][fi]; zs += t; zb += abs(t) }
                        zOut![seq * f + fi] = zs
                        zB![seq * f + fi] = rel * zb + 2 * units.working * abs(zs)
                    }
                }
            }
        }
        return Result(o: o, bound: bound, s: sOut, z: zOut, sBound: sB, zBound: zB)
    }
}

/// A comparison of `actual` against `expected` under a componentwise bound,
/// with the numbers FLA's helpers print: maximum absolute error, RMS error
/// ratio, and the worst ratio error/bound (≤ 1 passes).
struct FastComparison: CustomStringConvertible {
    var maxAbs = 0.0
    var rmsRatio = 0.0
    var worst = 0.0
    var worstIndex = -1
    var nonFinite = 0

    init(_ actual: [Double], _ expected: [Double], bound: [Double]) {
        precondition(actual.count == expected.count && bound.count == expected.count)
        var se = 0.0, sr = 0.0
        for i in actual.indices {
            if !expected[i].isFinite {
                // A genuine NaN/Inf of the exact result (e.g. 0/0 on a zero
                // denominator) must be reproduced, not hidden.
                if !(actual[i].isNaN && expected[i].isNaN) && actual[i] != expected[i] { nonFinite += 1 }
                continue
            }
            if !actual[i].isFinite { nonFinite += 1; continue }
            let e = abs(actual[i] - expected[i])
            maxAbs = max(maxAbs, e)
            se += e * e; sr += expected[i] * expected[i]
            let r = e / max(bound[i], Double.leastNormalMagnitude)
            if r > worst { worst = r; worstIndex = i }
        }
        rmsRatio = sr > 0 ? (se / sr).squareRoot() : se.squareRoot()
    }

    var passes: Bool { nonFinite == 0 && worst <= 1 }
    var description: String {
        "max|err| \(String(format: "%.3e", maxAbs)), rms ratio \(String(format: "%.3e", rmsRatio)), worst err/bound \(String(format: "%.3f", worst)) at \(worstIndex)\(nonFinite > 0 ? ", \(nonFinite) non-finite" : "")"
    }
}

enum FastProblems {
    /// The storage format in which a mode receives its inputs exactly.
    static func storage(_ mode: PrecisionMode) -> InputStorage {
        switch mode {
        case .float32: return .float32
        case .float16Acc32, .float16: return .float16
        case .bfloat16Acc32, .tf32: return .bfloat16
        }
    }

    /// A small random problem whose inputs are exact in `mode`'s formats.
    /// Pure float16 gets decays scaled by 1/16 so that the binary16 prefix
    /// sums stay meaningful (see the bound's δΓ term).
    static func make(_ spec: CoreSpec, mode: PrecisionMode, batch: Int = 1, heads: Int = 2, length: Int,
                     keyDim: Int = 8, valueDim: Int = 4, initialState: Bool, seed: UInt64) -> CoreProblem {
        let st = storage(mode)
        var p = CoreProblem.random(spec: spec, batch: batch, heads: heads, length: length, keyDim: keyDim,
                                   valueDim: valueDim, storage: st, withInitialState: initialState, seed: seed)
        if mode == .float16, case .perStep(let a)? = p.decay {
            p.decay = .perStep(a.map { st.round($0 / 16) })
        }
        return p
    }
}
