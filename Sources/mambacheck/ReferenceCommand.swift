import ArgumentParser
import Foundation
import MambaKernels
import MambaPrecision
import MambaTensors
import MambaVerification

struct ReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference",
        abstract: "Compute the arbitrary-precision (MPFR) reference output of a core from dumped inputs.",
        discussion: """
            FILE is .npz or .safetensors with arrays q, k, v and optionally a (alias g; per-step log-decay)
            or a_cumsum (aliases A_cumsum, g_cumsum; prefix sums used exactly as given), initial_state
            ([B,H,F,dv]) and initial_state_z ([B,H,F]). Writes o (Float64, in the input layout) and, when an
            initial state is given or --final-state is set, final_state (and final_state_z).

            Examples:
              mambacheck reference --variant 2mamba --inputs dump.npz --output ref.npz
              mambacheck reference --variant squared-decay-sum --inputs dump.safetensors --output ref.safetensors \\
                  --layout bnhd --precision 256 --decimal ref.txt
            """)

    @Option(help: "Preset or core name (see `mambacheck variants`).") var variant: String
    @Option(help: "Input tensors (.npz or .safetensors).") var inputs: String
    @Option(help: "Where to write the reference (.npz, .npy or .safetensors).") var output: String
    @Option(help: "MPFR working precision in bits.") var precision: Int = 128
    @Option(help: "Axis order of q, k, v, o: bhnd ([B,H,N,d]) or bnhd ([B,N,H,d]).") var layout: TensorLayout = .bhnd
    @Option(help: "Score scale s (default 1/sqrt(dk)).") var scale: Double?
    @Option(help: "Also write every output element as a decimal string exact at the chosen precision.")
    var decimal: String?
    @Flag(help: "Also compute the final state (cost N·F·dv).") var finalState = false

    func validate() throws {
        guard (16...4096).contains(precision) else { throw ValidationError("--precision must be in 16…4096 bits") }
    }

    func run() throws {
        let (core, _) = try resolveCore(variant)
        let arrays = try TensorFile.read(inputs)
        let problem = try KernelDump.coreProblem(arrays, file: inputs, spec: core, layout: layout, scale: scale)
        if let m = problem.validationError() { throw InputProblem(description: "\(inputs): \(m)") }
        let wantState = finalState || problem.initialState != nil
        let ref = try Reference.quadratic(problem, precision: precision, finalState: wantState)
        let shape = [problem.batch, problem.heads, problem.length, problem.valueDim]
        let o = KernelDump.fromBHND(ref.oDouble, canonicalShape: shape, layout: layout)
        let fileShape = layout == .bhnd ? shape : [shape[0], shape[2], shape[1], shape[3]]
        var out: [String: Tensor<Double>] = ["o": Tensor(shape: fileShape, storage: o)]
        if wantState, let s = ref.finalStateS, let f = problem.featureDim {
            out["final_state"] = Tensor(shape: [problem.batch, problem.heads, f, problem.valueDim], storage: s.map(\.doubleValue))
            if let z = ref.finalStateZ {
                out["final_state_z"] = Tensor(shape: [problem.batch, problem.heads, f], storage: z.map(\.doubleValue))
            }
        }
        try TensorFile.write(out, to: output, dtype: .float64)
        if let decimal {
            // ⌈p·log10 2⌉ + 1 significant digits identify a p-bit number uniquely.
            let digits = Int((Double(precision) * 0.30102999566398120).rounded(.up)) + 1
            var text = "# mambacheck reference: variant=\(variant) precision=\(precision) layout=bhnd\n"
            text += "# o[b,h,n,d] = value (\(digits) significant digits)\n"
            for (i, y) in ref.o.enumerated() {
                let idx = KernelDumpIndex.multiIndex(i, shape)
                text += "o\(idx) = \(y.decimalString(significantDigits: digits))\n"
            }
            try AtomicFile.write(Data(text.utf8), to: decimal)
        }
        print("wrote \(output): o \(fileShape) at \(precision) bits" + (wantState ? " with final_state" : ""))
    }
}

extension TensorLayout: ExpressibleByArgument {}

enum KernelDumpIndex {
    static func multiIndex(_ flat: Int, _ shape: [Int]) -> [Int] {
        var r = flat
        var idx = [Int](repeating: 0, count: shape.count)
        for a in stride(from: shape.count - 1, through: 0, by: -1) where shape[a] > 0 {
            idx[a] = r % shape[a]; r /= shape[a]
        }
        return idx
    }
}
