import Foundation
import MambaKernels
import MambaTensors
import MambaVariants
import MambaVerification

/// Writing kernel dumps the way a user's Python script would: inputs and
/// candidate outputs as .npz in a chosen layout and dtype.
enum Dumps {
    /// q, k, v, a (per-step), initial_state(_z) of `p` in `layout`, every value rounded once to `dtype`.
    static func writeInputs(_ p: CoreProblem, layout: TensorLayout, dtype: DType, to url: URL) throws {
        let (b, h, n) = (p.batch, p.heads, p.length)
        var arrays: [String: Tensor<Double>] = [
            "q": tensor(p.q, [b, h, n, p.keyDim], layout),
            "k": tensor(p.k, [b, h, n, p.keyDim], layout),
            "v": tensor(p.v, [b, h, n, p.valueDim], layout),
        ]
        if case .perStep(let a)? = p.decay { arrays["a"] = tensor(a, [b, h, n], layout) }
        if let s0 = p.initialState, let f = p.featureDim {
            arrays["initial_state"] = Tensor(shape: [b, h, f, p.valueDim], storage: s0.s)
            if let z = s0.z { arrays["initial_state_z"] = Tensor(shape: [b, h, f], storage: z) }
        }
        try TensorFile.write(arrays, to: url.path, dtype: dtype)
    }

    /// A candidate: `o` (canonical `[B,H,N,dv]`) and optionally a final state, rounded once to `dtype`.
    static func writeCandidate(_ o: [Double], state: CoreState? = nil, problem p: CoreProblem, layout: TensorLayout,
                               dtype: DType, to url: URL) throws {
        var arrays = ["o": tensor(o, [p.batch, p.heads, p.length, p.valueDim], layout)]
        if let state, let f = p.featureDim {
            arrays["final_state"] = Tensor(shape: [p.batch, p.heads, f, p.valueDim], storage: state.s)
            if let z = state.z { arrays["final_state_z"] = Tensor(shape: [p.batch, p.heads, f], storage: z) }
        }
        try TensorFile.write(arrays, to: url.path, dtype: dtype)
    }

    /// Canonical `[B,H,N,…]` values as a tensor in the file layout.
    static func tensor(_ x: [Double], _ canonical: [Int], _ layout: TensorLayout) -> Tensor<Double> {
        var shape = canonical
        if layout == .bnhd { shape.swapAt(1, 2) }
        return Tensor(shape: shape, storage: KernelDump.fromBHND(x, canonicalShape: canonical, layout: layout))
    }

    static func storage(for dtype: DType) -> InputStorage {
        switch dtype {
        case .float16: return .float16
        case .bfloat16: return .bfloat16
        case .float64: return .float64
        default: return .float32
        }
    }

    /// The worst element's `|ŷ − y| / τ` and the normwise `‖ŷ − y‖ / allowance`
    /// of tensor `o` in a JSON report written by `--json`.
    static func overAllowance(report url: URL) throws -> (elementwise: Double, normwise: Double, failing: Int, judged: Int) {
        let report = try VerificationReport(jsonData: Data(contentsOf: url))
        guard let o = report.cases.first(where: { $0.tensor == "o" }) else { return (0, 0, 0, 0) }
        let v = o.verdict
        return (v.worst?.ratio ?? 0, v.normwise.allowance > 0 ? v.normwise.candidateError / v.normwise.allowance : .infinity,
                v.failingCount, v.judgedCount)
    }
}
