import MambaTensors

/// Variable-length batches in FLA's packing (docs/MATH.md §0): `B = 1`, the
/// token axis holds `S` sequences back to back, sequence `s` occupying tokens
/// `cu_seqlens[s] ..< cu_seqlens[s+1]`; each starts from its own initial
/// state (or zero) and nothing crosses a boundary, so the packed result is,
/// in exact arithmetic, the `S` separate results side by side.
///
/// Arrays (bhnd): token arrays `[1, H, T, …]` (`q`, `k`, `v`, `o`, `do`, the
/// gradients `dq`, `dk`, `dv`) and `[1, H, T]` (`a`, `a_cumsum`, `da`, …),
/// with `T = cu_seqlens[S]`; state arrays indexed by sequence,
/// `[S, H, F, dv]` and `[S, H, F]` (`initial_state`, `final_state`, their `_z`
/// and their gradients). Splitting and packing keep every bit pattern.
public enum PackedBatch {
    /// The arrays whose first axis is the sequence (not the batch of one).
    public static let stateNames: Set<String> = ["initial_state", "initial_state_z", "final_state", "final_state_z",
                                                 "dinitial_state", "dinitial_state_z"]

    /// `cu_seqlens` of a file, or nil when the file has none (not packed).
    ///
    /// - Throws: `DumpError` naming the file and `cu_seqlens` when the offsets
    ///   are not an integer vector `[0, …]` of at least two non-decreasing entries.
    public static func offsets(_ arrays: [String: TensorData], file: String) throws -> [Int]? {
        guard let c = arrays["cu_seqlens"] else { return nil }
        guard c.shape.count == 1, c.shape[0] >= 2 else {
            throw DumpError.wrongShape(file: file, array: "cu_seqlens", expected: "[S+1] with S ≥ 1 sequences", found: c.shape)
        }
        guard !c.dtype.isFloatingPoint else {
            throw DumpError.invalid(file: file, array: "cu_seqlens", message: "expected int32 or int64 offsets, found \(c.dtype)")
        }
        let v = try c.asInt64().storage.map { Int($0) }
        guard v[0] == 0 else {
            throw DumpError.invalid(file: file, array: "cu_seqlens", message: "cu_seqlens[0] must be 0, found \(v[0])")
        }
        for i in 1..<v.count where v[i] < v[i - 1] {
            throw DumpError.invalid(file: file, array: "cu_seqlens", message: "offsets must not decrease: "
                                    + "cu_seqlens[\(i)] = \(v[i]) < cu_seqlens[\(i - 1)] = \(v[i - 1])")
        }
        return v
    }

    /// One dictionary per sequence, each an ordinary (unpacked, `B = 1`) file's
    /// arrays: token arrays cut along the token axis, state arrays along the
    /// sequence axis; `cu_seqlens` is dropped.
    ///
    /// - Throws: `DumpError.wrongShape` naming the file and array whose shape
    ///   does not fit the offsets.
    public static func split(_ arrays: [String: TensorData], offsets: [Int], file: String) throws -> [[String: TensorData]] {
        let count = offsets.count - 1, total = offsets[count]
        var out = Array(repeating: [String: TensorData](), count: count)
        for name in arrays.keys.sorted() where name != "cu_seqlens" {
            let a = arrays[name]!
            if stateNames.contains(name) {
                guard a.shape.count >= 2, a.shape[0] == count else {
                    throw DumpError.wrongShape(file: file, array: name, expected: "[\(count), H, …]: one state per "
                                               + "sequence of cu_seqlens (\(count) sequences)", found: a.shape)
                }
                for s in 0..<count { out[s][name] = a.sliced(axis: 0, s..<(s + 1)) }
            } else {
                guard a.shape.count >= 3, a.shape[0] == 1, a.shape[2] == total else {
                    throw DumpError.wrongShape(file: file, array: name, expected: "[1, H, \(total), …] (bhnd, packed: "
                                               + "B = 1, N = cu_seqlens[-1] = \(total))", found: a.shape)
                }
                for s in 0..<count { out[s][name] = a.sliced(axis: 2, offsets[s]..<offsets[s + 1]) }
            }
        }
        return out
    }

    /// The inverse of `split`: per-sequence arrays (the same names in every
    /// part) joined into one packed file's arrays, with `cu_seqlens` (int32)
    /// from the parts' token counts (`q`'s, else `o`'s, axis 2).
    public static func pack(_ parts: [[String: TensorData]]) -> [String: TensorData] {
        precondition(!parts.isEmpty)
        var out: [String: TensorData] = [:]
        for name in parts[0].keys {
            out[name] = TensorData.concatenated(parts.map { $0[name]! }, axis: stateNames.contains(name) ? 0 : 2)
        }
        let lengths = parts.map { ($0["q"] ?? $0["o"]).map { $0.shape[2] } ?? 0 }
        let offsets = lengths.reduce(into: [Int32(0)]) { $0.append($0.last! + Int32($1)) }
        out["cu_seqlens"] = TensorData(Tensor<Int32>(shape: [offsets.count], storage: offsets))
        return out
    }
}
