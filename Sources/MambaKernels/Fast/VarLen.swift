import MambaVariants

extension CoreKernels {
    /// Variable-length batch in FLA's packed layout: `p.batch == 1`, the
    /// token axis holds sequences back to back, sequence `s` occupying tokens
    /// `cuSeqlens[s] ..< cuSeqlens[s+1]` (`cuSeqlens[0] == 0`, non-decreasing,
    /// last `== p.length`; empty sequences allowed).
    ///
    /// Every sequence starts from its own initial state (or zero) — the state
    /// is reset at each boundary, nothing leaks across sequences — so the
    /// result equals running each sequence separately. Shapes: `o` is
    /// `[1, H, T, dv]`; `p.initialState` (optional) and the returned final
    /// state are `[S, H, F, dv]` and `[S, H, F]` (`S = cuSeqlens.count − 1`),
    /// as FLA exchanges them. Per-step decays are taken per sequence; given
    /// prefix sums (`.prefixSum`) must restart at each sequence (as FLA's
    /// `chunk_local_cumsum` with `cu_seqlens` produces them).
    ///
    /// - Throws: `KernelError.invalidOffsets` for malformed offsets or
    ///   `batch != 1`, `KernelError.invalidProblem` for inconsistent shapes.
    public static func run(_ p: CoreProblem, cuSeqlens: [Int], form: KernelForm, mode: PrecisionMode,
                           options: KernelOptions = .init()) throws -> CoreOutput {
        if p.batch != 1 { throw KernelError.invalidOffsets("packed sequences need batch 1, got \(p.batch)") }
        guard cuSeqlens.count >= 2, cuSeqlens.first == 0, cuSeqlens.last == p.length else {
            throw KernelError.invalidOffsets("expected [0, …, \(p.length)], got \(cuSeqlens)")
        }
        for s in 1..<cuSeqlens.count where cuSeqlens[s] < cuSeqlens[s - 1] {
            throw KernelError.invalidOffsets("offsets must be non-decreasing: \(cuSeqlens)")
        }
        let count = cuSeqlens.count - 1
        var shape = p
        shape.initialState = nil
        if let e = shape.validationError() { throw KernelError.invalidProblem(e) }
        if let s0 = p.initialState {
            guard let f = p.featureDim else {
                throw KernelError.invalidProblem("initial_state: the exponential score has no finite state")
            }
            let h = p.heads, dv = p.valueDim
            if s0.s.count != count * h * f * dv {
                throw KernelError.invalidProblem("initial_state: expected \(count * h * f * dv) elements [S=\(count),H,\(f),dv], found \(s0.s.count)")
            }
            if p.spec.normalization == .sum, s0.z?.count != count * h * f {
                throw KernelError.invalidProblem("initial_state_z: expected \(count * h * f) elements [S=\(count),H,\(f)]")
            }
        }
        try validate(options)
        var units: [Unit] = []
        for s in 0..<count {
            for h in 0..<p.heads {
                units.append(Unit(row: h, start: cuSeqlens[s], count: cuSeqlens[s + 1] - cuSeqlens[s],
                                  stateIndex: s * p.heads + h, label: "seq=\(s) h=\(h)"))
            }
        }
        return execute(p, units: units, stateCount: count * p.heads, form: form, mode: mode, options: options)
    }
}
