import CHalf
import MambaVariants

/// Feature maps `φ` of the first- and second-order cores in Float32 (docs/MATH.md §3–4)
/// and conversions between the packed state convention and the full `d²` one.
///
/// Packed `φ₂(x)` has `d(d+1)/2` entries in row-major upper-triangle order
/// (`FeatureMap.packedIndex`): `x_i·x_i` on the diagonal and `(√2·x_j)·x_i`
/// for `i < j`, so `⟨φ₂(q), φ₂(k)⟩ = (q·k)²` up to rounding. The full map is
/// `vec(x xᵀ)` (`d²` entries, no weights). ReLU of relu-linear scores was
/// applied when the inputs were loaded, so first-order `φ` is the identity.
enum Features {
    /// Transposed features: `out[:, r] = rowScale[r] · φ(x[r, :])` for `rows`
    /// rows of width `dk` (`x` row-major, leading dimension `dk`), written as
    /// an `F × rows` matrix (leading dimension `rows`), so that every entry
    /// of φ is one contiguous, fixed-length vector product over the rows
    /// (`x_{:,i} ∘ x_{:,j}`), which the compiler vectorises. GEMMs take the
    /// result with `transA` where they need `φ` row-major.
    ///
    /// Float32: the row scale and the √2 weight are folded into one factor
    /// (`x_i · (c_ij·scale·x_j)`). Pure float16: `√2·x_j`, the product with
    /// `x_i`, and the scaling are separate rounded operations.
    static func columns(_ ctx: CoreContext, x: UnsafePointer<Float>, rows: Int, dk: Int,
                        out: UnsafeMutablePointer<Float>, rowScale: UnsafePointer<Float>?) {
        let a = ctx.arith
        let f = ctx.internalFeatures(dk)!
        if rows == 1 && !a.pureHalf {
            single(ctx, x: x, dk: dk, out: out, scale: rowScale?[0])
            return
        }
        // xT: dk × rows; xs: the scaled copy used as the second factor.
        let xT = a.scratch.buffer(4, dk * rows), xs = a.scratch.buffer(5, dk * rows)
        let xs2 = a.scratch.buffer(6, dk * rows)
        mc_transpose_float(x, dk, rows, dk, xT, rows)
        let fold = !a.pureHalf && rowScale != nil
        if fold, let sc = rowScale {
            for i in 0..<dk {
                let src = xT + i * rows, dst = xs + i * rows
                for r in 0..<rows { dst[r] = src[r] * sc[r] }
            }
        } else {
            xs.update(from: xT, count: dk * rows)
        }
        switch ctx.spec.score {
        case .linear, .reluLinear:
            out.update(from: xs, count: dk * rows)
        case .squared:
            if ctx.options.fullSecondOrderState {
                for i in 0..<dk {
                    let xi = xT + i * rows
                    for j in 0..<dk {
                        let xj = xs + j * rows, o = out + (i * dk + j) * rows
                        for r in 0..<rows { o[r] = xi[r] * xj[r] }
                    }
                }
            } else {
                let sqrt2 = a.op(Float(2.0.squareRoot()))
                for e in 0..<(dk * rows) { xs2[e] = sqrt2 * xs[e] }
                a.op(xs2, dk * rows)
                // x_i ∘ xs_i on the diagonal, x_i ∘ xs2_j above it, in packed order
                // (vectorised in C with run-time dispatch; in Swift's SSE code it was 6% of Float32 chunked time).
                mc_pair_products(xT, xs, xs2, dk, rows, out)
            }
            a.op(out, f * rows)
        case .exponential:
            preconditionFailure("the exponential score has no feature map")
        }
        if !fold, let sc = rowScale {
            for e in 0..<f {
                let o = out + e * rows
                for r in 0..<rows { o[r] *= sc[r] }
            }
            a.op(out, f * rows)
        }
    }

    /// One row (the recurrent step), where both layouts coincide: contiguous
    /// loops over `j`, with the scale and √2 folded into the second factor.
    static func single(_ ctx: CoreContext, x: UnsafePointer<Float>, dk: Int, out: UnsafeMutablePointer<Float>,
                       scale: Float?) {
        let t = ctx.arith.scratch.buffer(4, 2 * dk)
        let sc = scale ?? 1
        for j in 0..<dk { t[j] = x[j] * sc }
        switch ctx.spec.score {
        case .linear, .reluLinear:
            out.update(from: t, count: dk)
        case .squared:
            if ctx.options.fullSecondOrderState {
                for i in 0..<dk {
                    let xi = x[i], o = out + i * dk
                    for j in 0..<dk { o[j] = xi * t[j] }
                }
            } else {
                let t2 = t + dk
                let sqrt2 = Float(2.0.squareRoot())
                for j in 0..<dk { t2[j] = sqrt2 * t[j] }
                var idx = 0
                for i in 0..<dk {
                    let xi = x[i]
                    out[idx] = xi * t[i]
                    let seg = out + idx + 1, rest = dk - i - 1
                    for j in 0..<rest { seg[j] = xi * t2[i + 1 + j] }
                    idx += rest + 1
                }
            }
        case .exponential:
            preconditionFailure("the exponential score has no feature map")
        }
    }

    /// The initial state in the internal augmented layout `F×ldv` (columns
    /// `0..<dv` hold `S`, column `dv` holds `z` for sum normalisation),
    /// converted from the packed convention when the full `d²` state is used:
    /// `S_full(i,j) = S_full(j,i) = S_packed(i,j)/√2` for `i < j`.
    static func initialState(_ ctx: CoreContext, _ seq: SequenceData) -> UnsafeMutablePointer<Float>? {
        guard let s0 = seq.s0, let fi = ctx.internalFeatures(seq.dk) else { return nil }
        let dv = seq.dv, ldv = ctx.ldv(dv), dk = seq.dk
        let out = allocateFloats(fi * ldv)
        func copyRow(from packedRow: Int, to row: Int, scale: Float?) {
            let dst = out + row * ldv, src = s0 + packedRow * dv
            for j in 0..<dv { dst[j] = scale.map { ctx.arith.op(src[j] * $0) } ?? src[j] }
            if ldv > dv {
                let z = seq.z0.map { $0[packedRow] } ?? 0
                dst[dv] = scale.map { ctx.arith.op(z * $0) } ?? z
            }
        }
        if ctx.isSquared && ctx.options.fullSecondOrderState {
            let invSqrt2 = ctx.arith.op(Float(0.5.squareRoot()))
            for i in 0..<dk {
                for j in i..<dk {
                    let p = FeatureMap.packedIndex(i, j, dim: dk)
                    if i == j {
                        copyRow(from: p, to: i * dk + i, scale: nil)
                    } else {
                        copyRow(from: p, to: i * dk + j, scale: invSqrt2)
                        copyRow(from: p, to: j * dk + i, scale: invSqrt2)
                    }
                }
            }
        } else {
            for r in 0..<fi { copyRow(from: r, to: r, scale: nil) }
        }
        return out
    }

    /// Converts a final augmented state back to FLA's packed convention:
    /// `S_packed(i,j) = (S(i,j) + S(j,i))/√2` for `i < j` when the full state
    /// was used (the exact linear map preserving `⟨φ(q), S⟩`).
    static func export(_ ctx: CoreContext, state: UnsafePointer<Float>, dk: Int, dv: Int)
        -> (s: [Float], z: [Float]?) {
        let ldv = ctx.ldv(dv)
        let packedF = ctx.spec.featureDimension(keyDim: dk)!
        var s = [Float](repeating: 0, count: packedF * dv)
        var z: [Float]? = ctx.isSum ? [Float](repeating: 0, count: packedF) : nil
        func row(_ r: Int) -> UnsafePointer<Float> { state + r * ldv }
        if ctx.isSquared && ctx.options.fullSecondOrderState {
            let invSqrt2 = ctx.arith.op(Float(0.5.squareRoot()))
            let a = ctx.arith
            for i in 0..<dk {
                for j in i..<dk {
                    let p = FeatureMap.packedIndex(i, j, dim: dk)
                    let r1 = row(i * dk + j), r2 = row(j * dk + i)
                    for c in 0..<ldv {
                        let val = i == j ? r1[c] : a.op(a.op(r1[c] + r2[c]) * invSqrt2)
                        if c < dv { s[p * dv + c] = val } else { z![p] = val }
                    }
                }
            }
        } else {
            for r in 0..<packedF {
                for c in 0..<dv { s[r * dv + c] = row(r)[c] }
                if ldv > dv { z![r] = row(r)[dv] }
            }
        }
        return (s, z)
    }
}
