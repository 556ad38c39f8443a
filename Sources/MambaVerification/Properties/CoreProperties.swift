import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants

/// The outcome of one property on one case. A property that does not apply
/// (to the kernel at all, or to this case) is `notApplicable`, never a pass:
/// counting it as a pass would report a kernel green on a property that was
/// never checked.
public struct PropertyOutcome: Sendable {
    public enum Status: String, Sendable { case pass, fail, notApplicable = "not applicable" }
    public var status: Status
    public var detail: String
    public var passed: Bool { status == .pass }
    public var failed: Bool { status == .fail }
    public var isApplicable: Bool { status != .notApplicable }
    public static let pass = PropertyOutcome(status: .pass, detail: "")
    public static func fail(_ m: String) -> PropertyOutcome { PropertyOutcome(status: .fail, detail: m) }
    public static func notApplicable(_ why: String) -> PropertyOutcome { PropertyOutcome(status: .notApplicable, detail: why) }
}

/// A property of a kernel, with the theorem of Proofs/ it checks.
public struct KernelProperty: Sendable {
    public var name: String
    /// Stable ID of the theorem in Proofs/ (e.g. "T1").
    public var theorem: String
    /// Why the property cannot apply to the kernel on any case (nil: it applies).
    public var kernelRequirement: @Sendable (any KernelUnderTest) -> String? = { _ in nil }
    /// Why it does not apply to one case of an applicable kernel (nil: it
    /// applies). Generators redraw such cases (`PropertySuite.run`, the
    /// property tests' generator filter).
    public var caseRequirement: @Sendable (any KernelUnderTest, PropertyCase) -> String? = { _, _ in nil }
    /// The check itself, run only where both requirements hold.
    var body: @Sendable (any KernelUnderTest, PropertyCase) throws -> PropertyOutcome

    init(name: String, theorem: String,
         kernelRequirement: @escaping @Sendable (any KernelUnderTest) -> String? = { _ in nil },
         caseRequirement: @escaping @Sendable (any KernelUnderTest, PropertyCase) -> String? = { _, _ in nil },
         body: @escaping @Sendable (any KernelUnderTest, PropertyCase) throws -> PropertyOutcome) {
        self.name = name
        self.theorem = theorem
        self.kernelRequirement = kernelRequirement
        self.caseRequirement = caseRequirement
        self.body = body
    }

    /// Why the property does not apply to `kernel` on `c` (nil: it applies).
    public func notApplicable(to kernel: any KernelUnderTest, _ c: PropertyCase) -> String? {
        kernelRequirement(kernel) ?? caseRequirement(kernel, c)
    }

    /// The outcome on one case: `notApplicable` where a requirement fails.
    public func check(_ kernel: any KernelUnderTest, _ c: PropertyCase) throws -> PropertyOutcome {
        if let why = notApplicable(to: kernel, c) { return .notApplicable(why) }
        return try body(kernel, c)
    }

    /// Every forward property, in the order `PropertySuite.run` checks them.
    public static let all: [KernelProperty] = [
        formsAgree, accuracyAgainstOracle, causality, stateRoundTrip, linearityInValues, zeroValues,
        headPermutation, scaleInvariance,
    ]

    /// Forms agree (T1): every form, judged against the oracle with the kernel's
    /// *other* forms as baselines, passes the verdict of T9 — outputs and final states.
    public static let formsAgree = KernelProperty(
        name: "forms agree", theorem: "T1",
        kernelRequirement: { $0.forms.count > 1 ? nil : "the kernel has one form" }
    ) { kernel, c in
        let p = c.problem(for: kernel)
        let outs = try kernel.forms.map { try kernel.forward(p, form: $0) }
        let oracle = try Reference.quadratic(p, finalState: kernel.supportsState && p.featureDim != nil)
        var failures: [String] = []
        for (i, form) in kernel.forms.enumerated() {
            let others = outs.enumerated().filter { $0.offset != i }.map(\.element)
            let settings = ComparisonSettings(format: kernel.format, policy: .propertyTests, mode: kernel.mode)
            let cases = try KernelComparison.compare(
                problem: p, candidate: CandidateTensors(o: outs[i].o, finalState: outs[i].finalState),
                name: "\(kernel.name)/\(form.rawValue)", settings: settings, oracle: oracle, baselines: others)
            for rc in cases where !rc.verdict.passedWhereDefined { failures.append("\(form.rawValue) \(rc.tensor): \(rc.verdict.reason)") }
        }
        return failures.isEmpty ? .pass : .fail(failures.joined(separator: "; "))
    }

    /// Accuracy against the oracle (T8, T9): every form passes the verdict with
    /// MambaCheck's built-in kernels in the same mode as baselines.
    public static let accuracyAgainstOracle = KernelProperty(name: "accuracy against the oracle", theorem: "T8") { kernel, c in
        let p = c.problem(for: kernel)
        let oracle = try Reference.quadratic(p, finalState: kernel.supportsState && p.featureDim != nil)
        let settings = ComparisonSettings(format: kernel.format, policy: .propertyTests, kernelOptions: KernelOptions(chunkSize: 16, tileSize: 16),
                                          mode: kernel.mode)
        let baselines = try KernelComparison.baselineOutputs(p, settings: settings)
        var failures: [String] = []
        for form in kernel.forms {
            let out = try kernel.forward(p, form: form)
            let cases = try KernelComparison.compare(
                problem: p, candidate: CandidateTensors(o: out.o, finalState: out.finalState),
                name: "\(kernel.name)/\(form.rawValue)", settings: settings, oracle: oracle, baselines: baselines)
            for rc in cases where !rc.verdict.passedWhereDefined { failures.append("\(form.rawValue) \(rc.tensor): \(rc.verdict.reason)") }
        }
        return failures.isEmpty ? .pass : .fail(failures.joined(separator: "; "))
    }

    /// Causality (T2): perturbing q, k, v and the decay at every position > t
    /// leaves every output at positions ≤ t bit-identical, in every form.
    public static let causality = KernelProperty(
        name: "causality", theorem: "T2",
        caseRequirement: { _, c in c.length >= 2 ? nil : "N = 1 has no later token to perturb" }
    ) { kernel, c in
        let p = c.problem(for: kernel)
        var g = SeededGenerator(seed: c.seed ^ 0xCA05)
        let t = Int(g.next() % UInt64(c.length - 1))  // keep 0…t, perturb t+1…N−1
        var q = p
        let storage = kernel.mode.formats.inputStorage
        for s in 0..<p.sequences {
            for i in (t + 1)..<p.length {
                for d in 0..<p.keyDim {
                    q.q[(s * p.length + i) * p.keyDim + d] = storage.round(g.normal(std: 2))
                    q.k[(s * p.length + i) * p.keyDim + d] = storage.round(g.normal(std: 2))
                }
                for d in 0..<p.valueDim { q.v[(s * p.length + i) * p.valueDim + d] = storage.round(g.normal(std: 2)) }
            }
        }
        switch q.decay {
        case .perStep(var a)?:
            for s in 0..<p.sequences { for i in (t + 1)..<p.length { a[s * p.length + i] = storage.round(-3 * g.uniform()) } }
            q.decay = .perStep(a)
        case .prefixSum(var l)?:
            for s in 0..<p.sequences { for i in (t + 1)..<p.length { l[s * p.length + i] = storage.round(l[s * p.length + i] - 2 * g.uniform()) } }
            q.decay = .prefixSum(l)
        case nil: break
        }
        for form in kernel.forms {
            let a = try kernel.forward(p, form: form).o, b = try kernel.forward(q, form: form).o
            for s in 0..<p.sequences {
                for i in 0...t {
                    for d in 0..<p.valueDim {
                        let idx = (s * p.length + i) * p.valueDim + d
                        if a[idx].bitPattern != b[idx].bitPattern {
                            return .fail("\(form.rawValue): output at token \(i) (≤ t = \(t)) changed from \(a[idx]) to \(b[idx]) when only tokens > \(t) changed")
                        }
                    }
                }
            }
        }
        return .pass
    }

    /// State round trip (T1): running N tokens equals running N₁ then N₂ from
    /// the first part's final state, within the verdict of T9 (the split run
    /// is the candidate, the full run the baseline).
    public static let stateRoundTrip = KernelProperty(
        name: "state round trip", theorem: "T1",
        kernelRequirement: { k in
            k.supportsState && k.core.score.hasFeatureMap ? nil : "the kernel has no finite state"
        },
        caseRequirement: { k, c in
            if c.length < 2 { return "N = 1 cannot be split" }
            // With decays given as prefix sums, the second part would need
            // L'_t = L_t − L_{n1−1}, which is not representable in the kernel's
            // input format in general: the split would change the inputs. The
            // round trip is checked on per-step decays (and cores without decay).
            if c.decayAsPrefixSum && k.core.hasDecay { return "decays given as prefix sums cannot be split exactly" }
            return nil
        }
    ) { kernel, c in
        let p = c.problem(for: kernel)
        var g = SeededGenerator(seed: c.seed ^ 0x5711)
        let n1 = 1 + Int(g.next() % UInt64(c.length - 1))
        let (first, second) = split(p, at: n1)
        let oracle = try Reference.quadratic(p, finalState: true)
        var failures: [String] = []
        for form in kernel.forms where form != .tiled || p.spec.normalization == .sum {
            let full = try kernel.forward(p, form: form)
            let a = try kernel.forward(first, form: form)
            guard let mid = a.finalState else { return .fail("\(form.rawValue): no final state returned") }
            var secondWithState = second
            secondWithState.initialState = mid
            let b = try kernel.forward(secondWithState, form: form)
            let joined = join(a.o, b.o, problem: p, at: n1)
            let cases = try KernelComparison.compare(
                problem: p, candidate: CandidateTensors(o: joined, finalState: b.finalState),
                name: "\(kernel.name)/\(form.rawValue)/split@\(n1)",
                settings: ComparisonSettings(format: kernel.format, policy: .propertyTests, mode: kernel.mode), oracle: oracle,
                baselines: [full])
            for rc in cases where !rc.verdict.passedWhereDefined { failures.append("\(form.rawValue) split at \(n1) \(rc.tensor): \(rc.verdict.reason)") }
        }
        return failures.isEmpty ? .pass : .fail(failures.joined(separator: "; "))
    }

    /// Linearity in V (T6): for un-normalised cores `y(2V, 2S₀) = 2·y(V, S₀)`.
    /// In binary32-range formats this holds *bit for bit*: scaling by a power
    /// of two commutes with every rounding barring overflow and underflow,
    /// which these inputs cannot reach. In binary16 (subnormals below 6.1e−5,
    /// reached by decayed states and small products at these sizes) it is
    /// checked with the verdict of T9 instead: `y(2V)/2` judged against the
    /// oracle with `y(V)` as the baseline.
    public static let linearityInValues = KernelProperty(
        name: "linear in V", theorem: "T6",
        kernelRequirement: { $0.core.normalization == .none ? nil : "a sum-normalised core is not linear in V" }
    ) { kernel, c in
        let p = c.problem(for: kernel)
        var d = p
        d.v = p.v.map { 2 * $0 }
        if let st = p.initialState { d.initialState = CoreState(s: st.s.map { 2 * $0 }, z: st.z) }
        let halfRange = kernel.mode == .float16 || kernel.mode == .float16Acc32
        let oracle = halfRange ? try Reference.quadratic(p) : nil
        for form in kernel.forms {
            let a = try kernel.forward(p, form: form).o, b = try kernel.forward(d, form: form).o
            if let oracle {
                let cases = try KernelComparison.compare(
                    problem: p, candidate: CandidateTensors(o: b.map { $0 / 2 }),
                    name: "\(kernel.name)/\(form.rawValue)/2V", settings: ComparisonSettings(format: kernel.format, policy: .propertyTests, mode: kernel.mode),
                    oracle: oracle, baselines: [CoreOutput(o: a, finalState: nil)])
                if let bad = cases.first(where: { !$0.verdict.passedWhereDefined }) { return .fail("\(form.rawValue): y(2V)/2: \(bad.verdict.reason)") }
            } else if let i = a.indices.first(where: { (a[$0] * 2).bitPattern != b[$0].bitPattern && !(a[$0].isNaN && b[$0].isNaN) }) {
                return .fail("\(form.rawValue): y(2V)[\(i)] = \(b[i]) but 2·y(V)[\(i)] = \(2 * a[i])")
            }
        }
        return .pass
    }

    /// Zero values give zero outputs (T6): with `V = 0` and no initial state,
    /// every output is ±0, except NaN where a sum-normalised row's
    /// denominator is exactly zero (reported, docs/MATH.md §1).
    public static let zeroValues = KernelProperty(name: "zero values give zero outputs", theorem: "T6") { kernel, c in
        var p = c.problem(for: kernel)
        p.v = p.v.map { _ in 0 }
        p.initialState = nil
        for form in kernel.forms {
            let o = try kernel.forward(p, form: form).o
            if let i = o.firstIndex(where: { $0 != 0 && !$0.isNaN }) {
                return .fail("\(form.rawValue): output [\(i)] = \(o[i]) with all values zero")
            }
        }
        return .pass
    }

    /// Permuting heads permutes outputs (T6), bit for bit (heads are independent).
    public static let headPermutation = KernelProperty(
        name: "head permutation", theorem: "T6",
        caseRequirement: { _, c in c.heads >= 2 || c.batch >= 2 ? nil : "one sequence has nothing to permute" }
    ) { kernel, c in
        let p = c.problem(for: kernel)
        let r = reversedSequences(p)
        for form in kernel.forms {
            let a = try kernel.forward(p, form: form), b = try kernel.forward(r, form: form)
            let back = reverseBlocks(b.o, blocks: p.sequences)
            if let i = a.o.indices.first(where: { a.o[$0].bitPattern != back[$0].bitPattern }) {
                return .fail("\(form.rawValue): reversing the (batch, head) order changed output [\(i)]: \(a.o[i]) vs \(back[i])")
            }
        }
        return .pass
    }

    /// The scale cancels for sum-normalised linear and squared cores (T6):
    /// with `s' = 2s`, the outputs pass the verdict against the oracle at `s`
    /// with the run at `s` as baseline.
    public static let scaleInvariance = KernelProperty(
        name: "scale cancels", theorem: "T6",
        kernelRequirement: { k in
            // s enters f(s·q·k) as s^power only for the power scores; e^{s x} does not factor.
            k.core.normalization == .sum && k.core.score != .exponential
                ? nil : "the scale cancels only for sum-normalised linear and squared scores"
        }
    ) { kernel, c in
        let p = c.problem(for: kernel)
        var d = p
        d.scale = 2 * p.scale
        let oracle = try Reference.quadratic(p)
        for form in kernel.forms {
            let a = try kernel.forward(p, form: form), b = try kernel.forward(d, form: form)
            let cases = try KernelComparison.compare(
                problem: p, candidate: CandidateTensors(o: b.o), name: "\(kernel.name)/\(form.rawValue)/2s",
                settings: ComparisonSettings(format: kernel.format, policy: .propertyTests, mode: kernel.mode), oracle: oracle, baselines: [a])
            if let bad = cases.first(where: { !$0.verdict.passedWhereDefined }) { return .fail("\(form.rawValue): \(bad.verdict.reason)") }
        }
        return .pass
    }

    // MARK: helpers

    /// Tokens `0..<n1` and `n1..<N` of every sequence as two problems.
    static func split(_ p: CoreProblem, at n1: Int) -> (CoreProblem, CoreProblem) {
        func cut(_ x: [Double], width: Int, _ r: Range<Int>) -> [Double] {
            var out: [Double] = []
            for s in 0..<p.sequences {
                let lo = (s * p.length + r.lowerBound) * width, hi = (s * p.length + r.upperBound) * width
                out += x[lo..<hi]
            }
            return out
        }
        var a = p, b = p
        a.length = n1; b.length = p.length - n1
        a.q = cut(p.q, width: p.keyDim, 0..<n1); b.q = cut(p.q, width: p.keyDim, n1..<p.length)
        a.k = cut(p.k, width: p.keyDim, 0..<n1); b.k = cut(p.k, width: p.keyDim, n1..<p.length)
        a.v = cut(p.v, width: p.valueDim, 0..<n1); b.v = cut(p.v, width: p.valueDim, n1..<p.length)
        switch p.decay {
        case .perStep(let x)?:
            a.decay = .perStep(cut(x, width: 1, 0..<n1)); b.decay = .perStep(cut(x, width: 1, n1..<p.length))
        case .prefixSum(let x)?:
            // The second part's prefix sums restart: L'_t = L_t − L_{n1−1}.
            a.decay = .prefixSum(cut(x, width: 1, 0..<n1))
            var rest = cut(x, width: 1, n1..<p.length)
            for s in 0..<p.sequences {
                let base = x[s * p.length + n1 - 1]
                for t in 0..<(p.length - n1) { rest[s * (p.length - n1) + t] -= base }
            }
            b.decay = .prefixSum(rest)
        case nil: break
        }
        b.initialState = nil
        return (a, b)
    }

    static func join(_ a: [Double], _ b: [Double], problem p: CoreProblem, at n1: Int) -> [Double] {
        let n2 = p.length - n1, dv = p.valueDim
        var out: [Double] = []
        out.reserveCapacity(a.count + b.count)
        for s in 0..<p.sequences {
            out += a[s * n1 * dv ..< (s + 1) * n1 * dv]
            out += b[s * n2 * dv ..< (s + 1) * n2 * dv]
        }
        return out
    }

    static func reverseBlocks(_ x: [Double], blocks: Int) -> [Double] {
        guard blocks > 0, !x.isEmpty else { return x }
        let w = x.count / blocks
        var out: [Double] = []
        out.reserveCapacity(x.count)
        for b in (0..<blocks).reversed() { out += x[b * w ..< (b + 1) * w] }
        return out
    }

    /// The problem with its (batch, head) sequences in reverse order.
    static func reversedSequences(_ p: CoreProblem) -> CoreProblem {
        var r = p
        let s = p.sequences
        r.q = reverseBlocks(p.q, blocks: s); r.k = reverseBlocks(p.k, blocks: s); r.v = reverseBlocks(p.v, blocks: s)
        switch p.decay {
        case .perStep(let a)?: r.decay = .perStep(reverseBlocks(a, blocks: s))
        case .prefixSum(let l)?: r.decay = .prefixSum(reverseBlocks(l, blocks: s))
        case nil: break
        }
        if let st = p.initialState {
            r.initialState = CoreState(s: reverseBlocks(st.s, blocks: s), z: st.z.map { reverseBlocks($0, blocks: s) })
        }
        return r
    }
}
