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

    /// Loads the core problem from `arrays` read from `file`.
    public static func coreProblem(_ arrays: [String: TensorData], file: String, spec: CoreSpec,
                                   layout: TensorLayout, scale: Double?) throws -> CoreProblem {
        func need(_ names: [String], _ purpose: String) throws -> TensorData {
            for n in names { if let a = arrays[n] { return a } }
            throw DumpError.missingArray(file: file, names: names, purpose: purpose)
        }
        let q = try need(["q"], "queries, [B,H,N,dk] (bhnd) or [B,N,H,dk] (bnhd)")
        let k = try need(["k"], "keys, same shape as q")
        let v = try need(["v"], "values, [B,H,N,dv] (bhnd) or [B,N,H,dv] (bnhd)")
        guard q.shape.count == 4 else {
            throw DumpError.wrongShape(file: file, array: "q", expected: "4 axes \(layoutName(layout, "dk"))", found: q.shape)
        }
        let (b, h, n, dk) = dims(q.shape, layout)
        guard k.shape == q.shape else {
            throw DumpError.wrongShape(file: file, array: "k", expected: "\(q.shape) (same as q)", found: k.shape)
        }
        guard v.shape.count == 4, dims(v.shape, layout).0 == b, dims(v.shape, layout).1 == h,
              dims(v.shape, layout).2 == n, dims(v.shape, layout).3 >= 1 else {
            throw DumpError.wrongShape(file: file, array: "v", expected: "\(layoutName(layout, "dv")) with B=\(b), H=\(h), N=\(n)", found: v.shape)
        }
        let dv = dims(v.shape, layout).3
        let qv = try finite(q, file: file, layout: layout)
        let kv = try finite(k, file: file, layout: layout)
        let vv = try finite(v, file: file, layout: layout)
        var decay: LogDecay? = nil
        let stepArray = decayNames.compactMap { arrays[$0] }.first
        let prefixArray = prefixNames.compactMap { arrays[$0] }.first
        if spec.hasDecay {
            guard let d = stepArray ?? prefixArray else {
                throw DumpError.missingArray(file: file, names: decayNames + prefixNames,
                                             purpose: "the core has a decay: per-step log-decay [B,H,N] or its prefix sum")
            }
            let expected = layout == .bhnd ? [b, h, n] : [b, n, h]
            guard d.shape == expected else {
                throw DumpError.wrongShape(file: file, array: d.name, expected: "\(expected) (\(layout == .bhnd ? "[B,H,N]" : "[B,N,H]"))", found: d.shape)
            }
            let vals = try finite(d, file: file, layout: layout)
            if stepArray != nil {
                if let i = vals.firstIndex(where: { $0 > 0 }) {
                    throw DumpError.invalid(file: file, array: d.name, message: "log-decays must be ≤ 0; element \(i) is \(vals[i])")
                }
                decay = .perStep(vals)
            } else { decay = .prefixSum(vals) }
        }
        var state: CoreState? = nil
        if let s0 = arrays["initial_state"] {
            guard let f = spec.featureDimension(keyDim: dk) else {
                throw DumpError.invalid(file: file, array: "initial_state", message: "the exponential score has no finite state")
            }
            guard s0.shape == [b, h, f, dv] else {
                throw DumpError.wrongShape(file: file, array: "initial_state", expected: "[\(b), \(h), \(f), \(dv)] = [B,H,F,dv] with F = \(spec.score == .squared ? "dk(dk+1)/2 (packed)" : "dk")", found: s0.shape)
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
            throw DumpError.missingArray(file: file, names: [name], purpose: "candidate output with canonical shape \(expectedCanonicalShape)")
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
            throw DumpError.nonFinite(file: file, array: t.name, index: multiIndex(i, t.shape), value: values[i])
        }
        return layout == .bnhd ? toBHND(values, shape: t.shape) : values
    }

    static func multiIndex(_ flat: Int, _ shape: [Int]) -> [Int] {
        var r = flat
        var idx = [Int](repeating: 0, count: shape.count)
        for a in stride(from: shape.count - 1, through: 0, by: -1) where shape[a] > 0 {
            idx[a] = r % shape[a]; r /= shape[a]
        }
        return idx
    }
}
