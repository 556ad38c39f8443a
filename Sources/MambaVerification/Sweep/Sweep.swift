import Dispatch
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants

/// What `Sweep` measures.
public struct SweepSettings: Sendable {
    /// The `--variant` name (a preset's core is used at kernel level).
    public var variant: String
    public var core: CoreSpec
    /// Sequence lengths N.
    public var lengths: [Int] = [64, 256, 1024]
    /// Working precisions (bits) of the reduced-precision oracle runs.
    public var precisions: [Int] = [8, 11, 16, 24, 32, 53, 64]
    /// Head width `dk = dv`.
    public var headDim: Int = 32
    public var heads: Int = 1
    public var seed: UInt64 = 20_260_217
    /// Chunk size of the chunked form and tile size of the tiled form.
    public var chunkSize: Int = 64
    /// Precision of the oracle every point is measured against.
    public var oraclePrecision: Int = 128

    public init(variant: String, core: CoreSpec) {
        self.variant = variant
        self.core = core
    }
}

/// Error against the MPFR oracle as the sequence length grows and as the
/// working precision shrinks (`mambacheck sweep`).
///
/// - **Kernel points**: for every length N, one seeded problem
///   (`CoreProblem.random`, paper distribution, Float32 inputs); for every
///   precision mode the inputs are rounded to the mode's storage format and
///   the 128-bit oracle is evaluated on exactly those values; every form
///   (tiled only for sum-normalised cores) runs in that mode and its `o` is
///   measured against that oracle.
/// - **Precision points**: `Reference.quadratic` on the Float32 problem with
///   every MPFR operation rounded to `p` bits (exact dot products and
///   fixed-point sums, Proofs/T7), against the same oracle at 128 bits. This
///   is the oracle's own accuracy as a function of its precision: it should
///   fall like `2^−p` and be flat in N.
///
/// Metrics (`SweepPoint`): normwise relative error, max ULP of binary32 and
/// max relative error, all from differences formed exactly (in MPFR), so a
/// 64-bit result's 1e−19 error is measured, not lost in Double.
public enum Sweep {
    /// One shardable unit of work.
    public enum Job: Sendable, Hashable, CustomStringConvertible {
        /// Every form × mode at length N.
        case kernels(length: Int)
        /// The oracle at `bits` bits at length N.
        case precision(bits: Int, length: Int)

        public var description: String {
            switch self {
            case .kernels(let n): return "kernels N=\(n)"
            case .precision(let p, let n): return "p=\(p) N=\(n)"
            }
        }
    }

    /// Every job, in a fixed order (so `--shard k/n` is reproducible).
    public static func jobs(_ s: SweepSettings) -> [Job] {
        s.lengths.map { Job.kernels(length: $0) } + s.lengths.flatMap { n in s.precisions.map { Job.precision(bits: $0, length: n) } }
    }

    /// The forms measured for a core (tiled needs sum normalisation).
    public static func forms(for spec: CoreSpec) -> [KernelForm] {
        BuiltinVerification.forms(for: spec)
    }

    /// Runs `jobs`; `progress(done, total, item)` after every job.
    public static func run(_ jobs: [Job], settings s: SweepSettings,
                           progress: ((Int, Int, String) -> Void)? = nil) throws -> [SweepPoint] {
        var points: [SweepPoint] = []
        var oracles: [OracleKey: ReferenceOutput] = [:]
        func oracle(_ p: CoreProblem, length: Int, storage: InputStorage) throws -> ReferenceOutput {
            let key = OracleKey(length: length, storage: storage)
            if let o = oracles[key] { return o }
            let o = try Reference.quadratic(p, precision: s.oraclePrecision)
            oracles[key] = o
            return o
        }
        for (i, job) in jobs.enumerated() {
            switch job {
            case .kernels(let n):
                let base = problem(s, length: n)
                let options = KernelOptions(chunkSize: s.chunkSize, tileSize: s.chunkSize)
                for mode in PrecisionMode.allCases {
                    let storage = mode.formats.inputStorage
                    let p = base.rounded(to: storage)
                    let ref = try oracle(p, length: n, storage: storage)
                    for form in forms(for: s.core) {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        let out = try CoreKernels.run(p, form: form, mode: mode, options: options)
                        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                        var point = measure(out.o.map { BigFloat($0, precision: 53) }, against: ref.o)
                        point.kind = .kernel
                        point.length = n
                        point.form = form.rawValue
                        point.mode = mode.rawValue
                        point.seconds = seconds
                        points.append(point)
                    }
                }
            case .precision(let bits, let n):
                let p = problem(s, length: n)
                let ref = try oracle(p, length: n, storage: .float32)
                let t0 = DispatchTime.now().uptimeNanoseconds
                let low = try Reference.quadratic(p, precision: bits)
                var point = measure(low.o, against: ref.o)
                point.kind = .precision
                point.length = n
                point.precision = bits
                point.seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                points.append(point)
            }
            progress?(i + 1, jobs.count, job.description)
        }
        return points
    }

    struct OracleKey: Hashable {
        var length: Int
        var storage: InputStorage
    }

    /// The seeded problem at length `n` (the same for every job of a sweep).
    static func problem(_ s: SweepSettings, length n: Int) -> CoreProblem {
        CoreProblem.random(spec: s.core, heads: s.heads, length: n, keyDim: s.headDim, valueDim: s.headDim,
                           distribution: .paper, storage: .float32, seed: s.seed &+ UInt64(n))
    }

    /// The metrics of `candidate` against `oracle`, differences formed in MPFR.
    /// Elements whose oracle value is NaN or ±∞ are skipped; a non-finite
    /// candidate where the oracle is finite is counted and makes every metric +∞.
    static func measure(_ candidate: [BigFloat], against oracle: [BigFloat]) -> SweepPoint {
        precondition(candidate.count == oracle.count, "candidate and oracle differ in size")
        var errorSquares = 0.0, valueSquares = 0.0, maxULP = 0.0, maxRelative = 0.0
        var nonFinite = 0
        // Scale the sums of squares by the largest |y| so they neither overflow nor underflow.
        let scale = oracle.lazy.filter(\.isFinite).map { Swift.abs($0.doubleValue) }.max() ?? 1
        let unit = scale > 0 && scale.isFinite ? scale : 1
        for (c, y) in zip(candidate, oracle) where y.isFinite {
            guard c.isFinite else { nonFinite += 1; continue }
            let d = Swift.abs((c - y).doubleValue)
            let yd = y.doubleValue
            errorSquares += (d / unit) * (d / unit)
            valueSquares += (yd / unit) * (yd / unit)
            maxULP = Swift.max(maxULP, d / NumberFormat.binary32.ulp(at: yd))
            if yd != 0 { maxRelative = Swift.max(maxRelative, d / Swift.abs(yd)) }
        }
        var normwise = valueSquares > 0 ? (errorSquares / valueSquares).squareRoot() : (errorSquares > 0 ? .infinity : 0)
        if nonFinite > 0 { normwise = .infinity; maxULP = .infinity; maxRelative = .infinity }
        return SweepPoint(kind: .kernel, length: 0, normwiseRelativeError: normwise, maxULP32: maxULP,
                          maxRelativeError: maxRelative, nonFiniteCount: nonFinite, seconds: 0)
    }
}
