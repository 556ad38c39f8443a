import MambaKernels
import MambaPrecision
import MambaVariants

/// An undeclared chunk length, read from the candidate's own error pattern
/// (true Float32, per-step decays; Proofs/T9, "An undeclared chunk length").
///
/// A chunk kernel forms chunk-local prefix sums `ℓ_i` in Float32 and
/// exponentiates `ℓ_i − ℓ_j`: under strong decays a row's error grows with its
/// depth in its chunk (`≈ u·|ℓ_i|`). A kernel with chunk `C` larger than the
/// declared one (Mamba-2's SSD defaults to 256, the declaration to 64) is then
/// several times less accurate on rows deep in `C`-token chunks, and only
/// there. With `d⁽ᶜ⁾_r` the row errors of MambaCheck's chunked Float32 kernel
/// at chunk `c` and `e_r` the candidate's:
///
/// - `D = {r : d⁽ᶜ⁾_r > 4·d⁽⁰⁾_r}` the rows a `C`-chunk kernel finds much harder
///   than one at the declared chunk `c₀`, `S = {r : d⁽ᶜ⁾_r ≤ 1.5·d⁽⁰⁾_r}` the rows
///   both find alike (at least 16 each);
/// - the contrast `κ_C = median_D(e_r/d⁽⁰⁾_r) / median_S(e_r/d⁽⁰⁾_r)`.
///
/// `C` is inferred when `κ_C ≥ 3` (the largest contrast wins). A kernel at the
/// declared chunk has `κ ≈ 1`; a uniform or one-row bug leaves both medians
/// alike or untouched, so it is never taken for a chunk length. The inference
/// only replaces a *default*: `+chunk=` always wins, and the report says what
/// was inferred and from what.
public enum ChunkLengthInference {
    /// Chunk lengths tried above the declared one.
    public static let candidates = [128, 256]
    /// The contrast `κ` needed to infer a chunk length. Measured on the SSD dump's
    /// inputs (Proofs/T9): Float32 kernels at chunk 256 and 128 give 8.1 and 7.3,
    /// kernels at 64 and 32, the real SSD and its planted bugs stay below 3 (not
    /// inferred); 3 leaves a factor 2.4 to the weakest long-chunk kernel.
    public static let minimumContrast = 3.0

    public struct Inference: Sendable, Equatable {
        public var chunkSize: Int
        /// `κ_C`.
        public var contrast: Double
        /// What the report says.
        public var note: String
    }

    /// The inferred chunk length, or nil where the rule does not apply (not true
    /// Float32, decays not per-step, a declared form other than chunked) or no
    /// candidate length reaches `minimumContrast`.
    public static func infer(_ problem: CoreProblem, candidate o: [Double], oracle y: [Double],
                             arithmetic: DeclaredArithmetic, options: KernelOptions = .init(),
                             runs: BaselineRuns? = nil) -> Inference? {
        guard (try? arithmetic.mode()) == .float32, arithmetic.form == nil || arithmetic.form == .chunked,
              case .perStep = problem.decay, o.count == y.count, problem.valueDim > 0 else { return nil }
        var base = options
        base.roundOutput = false
        base.chunkSize = arithmetic.chunkSize
        guard let declared = try? runs.run(problem, .base, form: .chunked, mode: .float32, options: base),
              declared.o.count == y.count else { return nil }
        let width = problem.valueDim
        func rowErrors(_ x: [Double]) -> [Double] { rowErrorNorms(x, y, width: width) }
        let d0 = rowErrors(declared.o), e = rowErrors(o)
        var best: Inference? = nil
        for c in candidates where c > arithmetic.chunkSize && c < 2 * problem.length {
            var t = base
            t.chunkSize = c
            guard let run = try? runs.run(problem, .base, form: .chunked, mode: .float32, options: t) else { continue }
            let dc = rowErrors(run.o)
            var deep: [Double] = [], alike: [Double] = []
            for r in d0.indices where d0[r] > 0 && d0[r].isFinite && dc[r].isFinite && e[r].isFinite {
                if dc[r] > 4 * d0[r] { deep.append(e[r] / d0[r]) } else if dc[r] <= 1.5 * d0[r] { alike.append(e[r] / d0[r]) }
            }
            guard deep.count >= 16, alike.count >= 16 else { continue }
            let a = Percentile.nearestRank(of: alike.sorted(), percent: 50)
            guard a > 0 else { continue }
            let contrast = Percentile.nearestRank(of: deep.sorted(), percent: 50) / a
            guard contrast >= minimumContrast, contrast > (best?.contrast ?? 0) else { continue }
            best = Inference(chunkSize: c, contrast: contrast, note: "chunk length \(c) inferred (not declared): "
                + "rows deep in \(c)-token chunks err \(NumberText.significant(contrast, digits: 2))x more than rows "
                + "shallow in every chunk grid, as chunk-local Float32 prefix sums over \(c) tokens do; "
                + "declare +chunk=C to judge at another length")
        }
        return best
    }
}
