import Dispatch
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants

/// The main job (`mambacheck verify`): every core and every preset, in every
/// form and precision mode of MambaCheck's own kernels, against the MPFR
/// oracle on built-in seeded cases.
///
/// Each candidate (one form in one mode) is judged with the conditioning-aware
/// verdict (Proofs/T9) whose baselines are the *other* forms in the same mode:
/// the forms must agree with the oracle as well as each other can. Core-level
/// cases check `o` and the final state; block-level cases check the layer output.
public enum BuiltinVerification {
    public enum Size: String, Sendable, CaseIterable {
        /// Small cases, a few seconds: N = 100 (a partial last chunk), dk = dv = 16.
        case quick
        /// Larger and more varied: N = 300 and 1000, FLA inputs, 64-wide heads.
        case full
    }

    /// One unit of work (shardable): a core or a preset with its seed.
    public struct Job: Sendable, Hashable {
        public var name: String
        public var core: CoreSpec?
        public var variant: VariantSpec?
        public var seed: UInt64
    }

    /// Every job of a run, in a fixed order (so `--shard k/n` is reproducible).
    public static func jobs(size: Size, seed: UInt64) -> [Job] {
        var jobs: [Job] = CoreSpec.all.enumerated().map { i, c in
            Job(name: "core:\(c.name)", core: c, variant: nil, seed: seed &+ UInt64(i))
        }
        jobs += VariantSpec.presets.enumerated().map { i, v in
            Job(name: v.name, core: nil, variant: v, seed: seed &+ 1000 &+ UInt64(i))
        }
        return jobs
    }

    /// Runs `jobs` and returns their report cases. `progress` is called after each job.
    public static func run(_ jobs: [Job], size: Size, policy: VerdictPolicy = .standard,
                           progress: ((Int, Int, String) -> Void)? = nil) throws -> [ReportCase] {
        var cases: [ReportCase] = []
        for (i, job) in jobs.enumerated() {
            if let c = job.core {
                cases += try coreCases(c, name: job.name, size: size, seed: job.seed, policy: policy)
            } else if let v = job.variant {
                cases += try blockCases(v, size: size, seed: job.seed, policy: policy)
            }
            progress?(i + 1, jobs.count, job.name)
        }
        return cases
    }

    static func forms(for spec: CoreSpec) -> [KernelForm] {
        spec.normalization == .sum ? KernelForm.allCases : [.quadratic, .chunked, .recurrent]
    }

    static func coreCases(_ spec: CoreSpec, name: String, size: Size, seed: UInt64,
                          policy: VerdictPolicy) throws -> [ReportCase] {
        let (n, d, dist): (Int, Int, InputDistribution) = size == .quick ? (100, 16, .paper) : (300, 64, .fla)
        let problem = CoreProblem.random(spec: spec, batch: 1, heads: 2, length: n, keyDim: d, valueDim: d,
                                         distribution: dist, withInitialState: spec.score.hasFeatureMap, seed: seed)
        let options = KernelOptions(chunkSize: 32, tileSize: 32)
        var oracles: [InputStorage: ReferenceOutput] = [:]
        var cases: [ReportCase] = []
        for mode in PrecisionMode.allCases {
            let format = KernelComparison.format(for: mode)
            // The kernel reads its inputs in its storage format; the oracle is
            // evaluated on exactly those values (inputs taken as exact).
            let storage = mode.formats.inputStorage
            let problem = problem.rounded(to: storage)
            let oracle = try oracles[storage] ?? Reference.quadratic(problem, precision: 128,
                                                                    finalState: spec.score.hasFeatureMap)
            oracles[storage] = oracle
            let formList = forms(for: spec)
            var outputs: [KernelForm: CoreOutput] = [:]
            var seconds: [KernelForm: Double] = [:]
            for form in formList {
                let t0 = DispatchTime.now().uptimeNanoseconds
                outputs[form] = try CoreKernels.run(problem, form: form, mode: mode, options: options)
                seconds[form] = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }
            for form in formList {
                let out = outputs[form]!
                var others = formList.filter { $0 != form }.map { outputs[$0]! }
                // A chunked kernel's decay exponents come from chunk-local prefix sums over
                // C tokens (error u·|ℓ|, growing with C): its same-arithmetic yardstick
                // includes a chunked kernel of chunk length 2C (Proofs/T9, `mambacheck calibrate`).
                if form == .chunked, let wider = try? CoreKernels.run(
                    problem, form: .chunked, mode: mode,
                    options: KernelOptions(chunkSize: 2 * options.chunkSize, tileSize: options.tileSize)) {
                    others.append(wider)
                }
                let settings = ComparisonSettings(format: format, policy: policy, kernelOptions: options, mode: mode)
                var cs = try KernelComparison.compare(
                    problem: problem, candidate: CandidateTensors(o: out.o, finalState: out.finalState),
                    name: "\(name)/\(form.rawValue)/\(mode.rawValue)", settings: settings, oracle: oracle,
                    baselines: others)
                for i in cs.indices { cs[i].durationSeconds = seconds[form]! }
                cases += cs
            }
        }
        return cases
    }

    static func blockCases(_ v: VariantSpec, size: Size, seed: UInt64, policy: VerdictPolicy) throws -> [ReportCase] {
        let (n, dm, h, dh) = size == .quick ? (48, 32, 2, 8) : (200, 64, 2, 32)
        let problem = BlockProblem.random(variant: v, length: n, modelDim: dm, heads: h, headDim: dh, seed: seed)
        let shape = [1, n, dm]
        let options = KernelOptions(chunkSize: 16, tileSize: 16)
        let formList: [KernelForm] = [.quadratic, .chunked, .recurrent]
        var cases: [ReportCase] = []
        for mode in [PrecisionMode.float32, .float16Acc32] {
            let format = KernelComparison.format(for: mode)
            // Each output's magnitude carries the core's Σ|terms| through the
            // later stages (Reference.blockWithMagnitude, Proofs/T7).
            let (oracle, mag) = try Reference.blockWithMagnitude(
                problem, precision: 128,
                accumulationRatio: KernelComparison.accumulationRatio(format: format, mode: mode))
            let magnitude = mag!
            var outputs: [KernelForm: [Double]] = [:]
            var seconds: [KernelForm: Double] = [:]
            for form in formList {
                let t0 = DispatchTime.now().uptimeNanoseconds
                outputs[form] = try BlockKernels.run(problem, form: form, mode: mode, options: options)
                seconds[form] = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }
            for form in formList {
                let cand = outputs[form]!
                let others = formList.filter { $0 != form }.map { outputs[$0]! }
                let metrics = try TensorMetrics(candidate: cand, oracle: oracle, shape: shape, format: format)
                // Block outputs pass through RMSNorm, gates and projections whose rounding the
                // propagated magnitude only approximates: 4 a-priori stages on top (Proofs/T9).
                var blockPolicy = policy
                blockPolicy.boundFactor = Swift.max(policy.boundFactor, VerdictPolicy.propertyTests.boundFactor)
                let verdict = try blockPolicy.judge(candidate: cand, oracle: oracle, magnitude: magnitude,
                                                    baselines: others, shape: shape, format: format)
                cases.append(ReportCase(name: "\(v.name)/block-\(form.rawValue)/\(mode.rawValue)", tensor: "out",
                                        metrics: metrics, verdict: verdict, durationSeconds: seconds[form]!))
            }
        }
        return cases
    }
}
