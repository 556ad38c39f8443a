import MambaKernels
import MambaTensors
import MambaVariants

/// Axis order of a dumped attention tensor.
public enum TensorLayout: String, CaseIterable, Sendable, Codable {
    /// `[batch, head, token, dim]` (the paper's kernels).
    case bhnd
    /// `[batch, token, head, dim]` (FLA's default).
    case bnhd
}

/// An input or candidate file that cannot be used, with everything a user
/// needs to fix it: the file, the array, what was expected and what was found.
public enum DumpError: Error, CustomStringConvertible, Equatable {
    case missingArray(file: String, names: [String], purpose: String)
    case wrongShape(file: String, array: String, expected: String, found: [Int])
    case nonFinite(file: String, array: String, index: [Int], value: Double)
    case invalid(file: String, array: String, message: String)

    public var description: String {
        switch self {
        case let .missingArray(file, names, purpose):
            let alt = names.count > 1 ? " (or \(names.dropFirst().joined(separator: ", ")))" : ""
            return "\(file): missing array '\(names[0])'\(alt): \(purpose)"
        case let .wrongShape(file, array, expected, found):
            return "\(file): array '\(array)' has shape \(found), expected \(expected)"
        case let .nonFinite(file, array, index, value):
            return "\(file): array '\(array)' holds \(value) at index \(index); inputs must be finite"
        case let .invalid(file, array, message):
            return "\(file): array '\(array)': \(message)"
        }
    }
}

/// Reads a kernel's dumped inputs into a `CoreProblem`, and candidate outputs
/// into the canonical `[B, H, N, d]` order.
///
/// Input arrays: `q`, `k` (`[B,H,N,dk]` or `[B,N,H,dk]`), `v` (`… dv`),
/// optionally `a` (alias `g`: per-step log-decay `[B,H,N]` / `[B,N,H]`) or
/// `a_cumsum` (aliases `A_cumsum`, `g_cumsum`: inclusive prefix sums, used
/// exactly as given), `initial_state` (`[B,H,F,dv]`, FLA convention) and
/// `initial_state_z` (`[B,H,F]`, sum-normalised cores). Values stored in
/// Float16/bfloat16/Float32/Float64 are taken as exact.
public enum KernelDump {
    public static let decayNames = ["a", "g"]
    public static let prefixNames = ["a_cumsum", "A_cumsum", "g_cumsum"]

    /// Largest head dimension `dk`, `dv` accepted from a dump (real kernels use ≤ 256).
    public static let maximumHeadDim = 4096
    /// Largest state `F·dv` per sequence (the baselines allocate one per
    /// sequence whatever the dump holds; 2^27 Doubles = 1 GiB).
    public static let maximumStateElements = 1 << 27

    /// Loads the core problem from `arrays` read from `file`.
    ///
    /// Sizes are checked before anything is allocated from them: N ≥ 1 (a dump
    /// without tokens has nothing to verify, and B·H sequences of nothing would
    /// still cost per-sequence work: an 878-byte file with N = 0 took 4.8 GB),
    /// head dimensions and the state size below `maximumHeadDim` and
    /// `maximumStateElements`, with overflow-checked products. Conflicting
    /// decay arrays (`a` with `g`, or a per-step array with a prefix sum) are
    /// refused rather than resolved silently, and prefix sums must be
    /// non-increasing, like per-step log-decays must be ≤ 0.
    public static func coreProblem(_ arrays: [String: TensorData], file: String, spec: CoreSpec,
                                   layout: TensorLayout, scale: Double?) throws -> CoreProblem {
        func need(_ names: [String], _ purpose: String) throws -> TensorData {
            for n in names { if let a = arrays[n] { return a } }
            throw DumpError.missingArray(file: file, names: names, purpose: purpose + present(arrays))
        }
        let q = try need(["q"], "queries, [B,H,N,dk] (bhnd) or [B,N,H,dk] (bnhd)")
        let k = try need(["k"], "keys, same shape as q")
        let v = try need(["v"], "values, [B,H,N,dv] (bhnd) or [B,N,H,dv] (bnhd)")
        guard q.shape.count == 4 else {
            throw DumpError.wrongShape(file: file, array: "q", expected: "4 axes \(layoutName(layout, "dk"))", found: q.shape)
        }
        let (b, h, n, dk) = dims(q.shape, layout)
        try checkSizes(q, file: file, layout: layout)
        guard k.shape == q.shape else {
            throw DumpError.wrongShape(file: file, array: "k", expected: "\(q.shape) (same as q)", found: k.shape)
        }
        guard v.shape.count == 4, dims(v.shape, layout).0 == b, dims(v.shape, layout).1 == h,
              dims(v.shape, layout).2 == n, dims(v.shape, layout).3 >= 1 else {
            throw DumpError.wrongShape(file: file, array: "v", expected: "\(layoutName(layout, "dv")) with B=\(b), H=\(h), N=\(n)", found: v.shape)
        }
        let dv = dims(v.shape, layout).3
        guard dv <= maximumHeadDim else {
            throw DumpError.invalid(file: file, array: "v", message: "dv = \(dv) exceeds the largest supported head dimension \(maximumHeadDim)")
        }
        let qv = try finite(q, file: file, layout: layout)
        let kv = try finite(k, file: file, layout: layout)
        let vv = try finite(v, file: file, layout: layout)
        var decay: LogDecay? = nil
        let stepArray = decayNames.compactMap { arrays[$0] }.first
        let prefixArray = prefixNames.compactMap { arrays[$0] }.first
        let given = (decayNames + prefixNames).filter { arrays[$0] != nil }
        if spec.hasDecay, given.count > 1 {
            throw DumpError.invalid(file: file, array: given[0], message: "conflicts with '\(given[1])'"
                                    + (given.count > 2 ? " (and \(given.dropFirst(2).map { "'\($0)'" }.joined(separator: ", ")))" : "")
                                    + ": give exactly one decay array, the per-step log-decay (a or its alias g) "
                                    + "or its prefix sum (a_cumsum, A_cumsum or g_cumsum)")
        }
        if spec.hasDecay {
            guard let d = stepArray ?? prefixArray else {
                throw DumpError.missingArray(file: file, names: decayNames + prefixNames,
                                             purpose: "the core has a decay: per-step log-decay [B,H,N] or its prefix sum"
                                                 + present(arrays))
            }
            let expected = layout == .bhnd ? [b, h, n] : [b, n, h]
            guard d.shape == expected else {
                throw DumpError.wrongShape(file: file, array: d.name, expected: "\(expected) (\(layout == .bhnd ? "[B,H,N]" : "[B,N,H]"))", found: d.shape)
            }
            let vals = try finite(d, file: file, layout: layout)
            if stepArray != nil {
                if let i = vals.firstIndex(where: { $0 > 0 }) {
                    throw DumpError.invalid(file: file, array: d.name, message: "log-decays must be ≤ 0; element "
                                            + "\(fileIndex(i, canonical: [b, h, n], layout: layout)) is \(vals[i])")
                }
                decay = .perStep(vals)
            } else {
                // L_t = Σ_{u≤t} a_u with a_u ≤ 0: L_0 ≤ 0 and L never increases (the test a > 0 gets).
                for seq in 0..<(b * h) {
                    for t in 0..<n {
                        let i = seq * n + t, previous = t == 0 ? 0 : vals[i - 1]
                        guard vals[i] <= previous else {
                            let at = fileIndex(i, canonical: [b, h, n], layout: layout)
                            let was = t == 0 ? "0 (a_0 = L_0 must be ≤ 0)"
                                : "\(previous) at \(fileIndex(i - 1, canonical: [b, h, n], layout: layout))"
                            throw DumpError.invalid(file: file, array: d.name, message: "prefix sums of log-decays must not "
                                                    + "increase along N: element \(at) is \(vals[i]), above \(was)")
                        }
                    }
                }
                decay = .prefixSum(vals)
            }
        }
        try checkState(spec, keyDim: dk, valueDim: dv, file: file)
        var state: CoreState? = nil
        if let s0 = arrays["initial_state"] {
            guard let f = spec.featureDimension(keyDim: dk) else {
                throw DumpError.invalid(file: file, array: "initial_state", message: "the exponential score has no finite state")
            }
            guard s0.shape == [b, h, f, dv] else {
                throw DumpError.wrongShape(file: file, array: "initial_state", expected: "[\(b), \(h), \(f), \(dv)] = [B,H,F,dv] with F = \(Self.featureFormula(spec))", found: s0.shape)
            }
            let sv = try finite(s0, file: file, layout: nil)
            var zv: [Double]? = nil
            if spec.normalization == .sum {
                guard let z0 = arrays["initial_state_z"] else {
                    throw DumpError.missingArray(file: file, names: ["initial_state_z"], purpose: "a sum-normalised core with an initial state needs its normaliser state [B,H,F]")
                }
                guard z0.shape == [b, h, f] else {
                    throw DumpError.wrongShape(file: file, array: "initial_state_z", expected: "[\(b), \(h), \(f)]", found: z0.shape)
                }
                zv = try finite(z0, file: file, layout: nil)
            }
            state = CoreState(s: sv, z: zv)
        }
        return CoreProblem(spec: spec, batch: b, heads: h, length: n, keyDim: dk, valueDim: dv, q: qv, k: kv, v: vv,
                           decay: decay, scale: scale, initialState: state)
    }

    /// A candidate tensor in canonical order (`[B,H,N,d]` from either layout;
    /// states are always `[B,H,…]`), checked against `expected` (canonical)
    /// shape. Non-finite values are kept: they are verification failures, not
    /// input errors.
    public static func candidate(_ arrays: [String: TensorData], name: String, file: String, layout: TensorLayout?,
                                 expectedCanonicalShape: [Int]) throws -> [Double] {
        guard let t = arrays[name] else {
            throw DumpError.missingArray(file: file, names: [name], purpose: "candidate output with canonical shape "
                                         + "\(expectedCanonicalShape)" + present(arrays))
        }
        let canonical = layout.map { canonicalShape(t.shape, $0) } ?? t.shape
        guard canonical == expectedCanonicalShape else {
            throw DumpError.wrongShape(file: file, array: name,
                                       expected: layout.map { "\(fileShape(expectedCanonicalShape, $0)) (\($0.rawValue))" } ?? "\(expectedCanonicalShape)",
                                       found: t.shape)
        }
        let values = try t.asFloat64().storage
        return layout == .bnhd ? toBHND(values, shape: t.shape) : values
    }

    // MARK: size and layout checks

    /// Refuses q shapes that cannot be a problem before anything is allocated
    /// from them (see `coreProblem`).
    static func checkSizes(_ q: TensorData, file: String, layout: TensorLayout) throws {
        let (b, h, n, dk) = dims(q.shape, layout)
        let read = "\(q.shape) read as \(layoutName(layout, "dk"))"
        guard n >= 1 else {
            throw DumpError.invalid(file: file, array: "q", message: "no tokens (N = 0 in \(read)): nothing to verify")
        }
        guard b >= 1, h >= 1, dk >= 1 else {
            throw DumpError.invalid(file: file, array: "q", message: "an empty axis in \(read)")
        }
        guard dk <= maximumHeadDim else {
            throw DumpError.invalid(file: file, array: "q", message: "dk = \(dk) exceeds the largest supported head dimension \(maximumHeadDim)")
        }
        guard CoreProblem.checkedProduct([b, h, n, dk]) != nil else {
            throw DumpError.invalid(file: file, array: "q", message: "shape \(q.shape) overflows")
        }
    }

    /// Checks the state size `F·dv` of `spec` (F = dk(dk+1)/2 for the squared score).
    static func checkState(_ spec: CoreSpec, keyDim dk: Int, valueDim dv: Int, file: String) throws {
        guard let f = spec.featureDimension(keyDim: dk) else { return }
        guard let e = CoreProblem.checkedProduct([f, dv]), e <= maximumStateElements else {
            throw DumpError.invalid(file: file, array: "q", message: "the \(spec.name) state would have F·dv = \(f)·\(dv) "
                                    + "elements per sequence, above the supported \(maximumStateElements)")
        }
    }

    /// A hint when the arrays look like the other layout than `layout` — a
    /// wrong `--layout` otherwise shows only as a FAIL (bnhd read as bhnd: H
    /// and N swapped). Evidence: `initial_state` (always `[B,H,F,dv]`) whose
    /// H matches only the other reading; or, without it, fewer tokens than
    /// heads (N < H) in the declared reading; or a decay array whose last two
    /// axes are q's swapped. nil when nothing is suspicious.
    public static func layoutHint(_ arrays: [String: TensorData], layout: TensorLayout) -> String? {
        guard let q = arrays["q"], q.shape.count == 4 else { return nil }
        let other: TensorLayout = layout == .bhnd ? .bnhd : .bhnd
        let (_, h, n, _) = dims(q.shape, layout)
        let (_, h2, n2, _) = dims(q.shape, other)
        let suggestion = "shapes look like \(other.rawValue); did you mean --layout \(other.rawValue)?"
        if let s0 = arrays["initial_state"] ?? arrays["initial_state_z"], s0.shape.count >= 3 {
            if s0.shape[1] == h { return nil }
            if s0.shape[1] == h2 {
                return "'\(s0.name)' has H = \(h2) heads, which matches q \(q.shape) as \(layoutName(other, "dk")), "
                    + "not as \(layoutName(layout, "dk")) (H = \(h)); \(suggestion)"
            }
        }
        if let d = (decayNames + prefixNames).compactMap({ arrays[$0] }).first, d.shape.count == 3,
           q.shape[1] != q.shape[2], d.shape == [q.shape[0], q.shape[2], q.shape[1]] {
            return "'\(d.name)' \(d.shape) has q \(q.shape)'s token and head axes swapped; q, k, v and the decay "
                + "must share one layout (bhnd: a [B,H,N]; bnhd: a [B,N,H])"
        }
        if n >= 1, n < h {
            return "with --layout \(layout.rawValue), q \(q.shape) reads as H = \(h) heads of N = \(n) tokens; "
                + "as \(other.rawValue) it would be H = \(h2), N = \(n2): \(suggestion)"
        }
        return nil
    }

    /// "; arrays present: …" for missing-array messages.
    static func present(_ arrays: [String: TensorData]) -> String {
        "; arrays present: " + (arrays.isEmpty ? "none" : arrays.keys.sorted().joined(separator: ", "))
    }

    /// A canonical `[B,H,N]` flat index as an index into the file's array.
    static func fileIndex(_ flat: Int, canonical: [Int], layout: TensorLayout) -> [Int] {
        var i = TensorShape.index(ofOffset: flat, in: canonical)
        if layout == .bnhd, i.count >= 3 { i.swapAt(1, 2) }
        return i
    }

    // MARK: helpers

    static func dims(_ s: [Int], _ layout: TensorLayout) -> (Int, Int, Int, Int) {
        layout == .bhnd ? (s[0], s[1], s[2], s[3]) : (s[0], s[2], s[1], s[3])
    }
    static func layoutName(_ layout: TensorLayout, _ d: String) -> String {
        layout == .bhnd ? "[B,H,N,\(d)]" : "[B,N,H,\(d)]"
    }
    /// Shape in canonical order given a file shape (3-axis decays and 4-axis tensors).
    static func canonicalShape(_ s: [Int], _ layout: TensorLayout) -> [Int] {
        guard layout == .bnhd, s.count >= 3 else { return s }
        var c = s
        c.swapAt(1, 2)
        return c
    }
    static func fileShape(_ canonical: [Int], _ layout: TensorLayout) -> [Int] { canonicalShape(canonical, layout) }

    /// `[B, N, H, rest…]` → `[B, H, N, rest…]`.
    static func toBHND(_ x: [Double], shape s: [Int]) -> [Double] {
        guard s.count >= 3 else { return x }
        let (b, n, h) = (s[0], s[1], s[2])
        let inner = s.dropFirst(3).reduce(1, *)
        var out = [Double](repeating: 0, count: x.count)
        for bi in 0..<b { for t in 0..<n { for hi in 0..<h {
            let src = ((bi * n + t) * h + hi) * inner, dst = ((bi * h + hi) * n + t) * inner
            for e in 0..<inner { out[dst + e] = x[src + e] }
        } } }
        return out
    }

    /// `[B, H, N, rest…]` → `[B, N, H, rest…]` (for writing outputs in the user's layout).
    public static func fromBHND(_ x: [Double], canonicalShape s: [Int], layout: TensorLayout) -> [Double] {
        guard layout == .bnhd, s.count >= 3 else { return x }
        let (b, h, n) = (s[0], s[1], s[2])
        let inner = s.dropFirst(3).reduce(1, *)
        var out = [Double](repeating: 0, count: x.count)
        for bi in 0..<b { for hi in 0..<h { for t in 0..<n {
            let src = ((bi * h + hi) * n + t) * inner, dst = ((bi * n + t) * h + hi) * inner
            for e in 0..<inner { out[dst + e] = x[src + e] }
        } } }
        return out
    }

    /// Values in canonical order; throws on the first NaN/Inf, naming its file index.
    static func finite(_ t: TensorData, file: String, layout: TensorLayout?) throws -> [Double] {
        let values = try t.asFloat64().storage
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw DumpError.nonFinite(file: file, array: t.name, index: TensorShape.index(ofOffset: i, in: t.shape), value: values[i])
        }
        return layout == .bnhd ? toBHND(values, shape: t.shape) : values
    }

}

extension KernelDump {
    /// How `F` follows from `dk` for a core, for messages.
    static func featureFormula(_ spec: CoreSpec) -> String {
        switch spec.score.traits.featureMap {
        case .identity, .relu: "dk"
        case .packedSecondOrder: "dk(dk+1)/2 (packed)"
        case nil: "none (no finite state)"
        }
    }
}
