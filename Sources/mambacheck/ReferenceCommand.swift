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
            FILE is .npz or .safetensors with arrays q, k, v and optionally a (alias g; per-step log-decay) \
            or a_cumsum (aliases A_cumsum, g_cumsum; prefix sums used exactly as given), initial_state \
            ([B,H,F,dv]) and initial_state_z ([B,H,F]). Writes o (Float64, in the input layout) and, when an \
            initial state is given or --final-state is set, final_state (and final_state_z).

            With --grad the file must also hold do (the upstream gradient dL/dO of L = Σ o·do, same shape and \
            layout as v), and the oracle's gradients (docs/MATH.md §5, MPFR) are written too, in the input layout: dq, dk, \
            dv and, for decayed cores, da (with respect to the per-step log-decay a) and da_cumsum (with respect to \
            the prefix sums); with an initial state also dinitial_state and dinitial_state_z. Rows whose \
            normaliser is exactly zero make the gradients that depend on them NaN (reported).

            Examples:
              mambacheck reference --variant 2mamba --inputs dump.npz --output ref.npz
              mambacheck reference --variant squared-decay-sum --inputs dump.safetensors --output ref.safetensors \\
                  --layout bnhd --precision 256 --decimal ref.txt
              mambacheck reference --variant 2mamba --inputs dump_with_do.npz --output ref_grads.npz --grad
            """)

    @Option(help: "Preset or core name (see `mambacheck variants`).") var variant: String
    @Option(help: "Input tensors (.npz or .safetensors).") var inputs: String
    @Option(help: "Where to write the reference (.npz, .npy or .safetensors).") var output: String
    @Option(help: "MPFR working precision in bits (64…65536).") var precision: Int = 128
    @Option(help: "Axis order of q, k, v, o: bhnd ([B,H,N,d]) or bnhd ([B,N,H,d]).") var layout: TensorLayout = .bhnd
    @Option(help: "Score scale s (default 1/sqrt(dk)).") var scale: Double?
    @Option(help: "Also write every output element as a decimal string exact at the chosen precision.")
    var decimal: String?
    @Flag(help: "Also compute the final state (cost N·F·dv).") var finalState = false
    @Flag(help: "Also compute the gradients dq, dk, dv (da, da_cumsum; dinitial_state) from the upstream gradient `do`.")
    var grad = false

    func validate() throws { try OracleArguments.validate(precision: precision, scale: scale) }

    func run() throws {
        // Never write over the inputs, and fail on an unwritable output before the oracle runs.
        try OutputPaths.check([("--output", output), ("--decimal", decimal)], inputs: [("--inputs", inputs)])
        let (core, _) = try resolveDumpCore(variant)
        let arrays = try TensorFile.read(inputs)
        if let hint = KernelDump.layoutHint(arrays, layout: layout) { printError("hint: \(hint)") }
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
        var gradientLines: [(String, [BigFloat], [Int])] = []
        if grad {
            let g = try KernelDump.gradientProblem(arrays, file: inputs, core: problem, layout: layout)
            let ref = try Reference.gradients(g, precision: precision)
            let b = problem.batch, h = problem.heads, n = problem.length
            func put(_ name: String, _ values: [BigFloat], canonical: [Int], layoutAware: Bool) {
                let x = values.map(\.doubleValue)
                let data = layoutAware ? KernelDump.fromBHND(x, canonicalShape: canonical, layout: layout) : x
                let shape = layoutAware && layout == .bnhd ? [canonical[0], canonical[2], canonical[1]] + canonical.dropFirst(3)
                                                          : canonical
                out[name] = Tensor(shape: shape, storage: data)
                gradientLines.append((name, values, canonical))
            }
            put("dq", ref.dq, canonical: [b, h, n, problem.keyDim], layoutAware: true)
            put("dk", ref.dk, canonical: [b, h, n, problem.keyDim], layoutAware: true)
            put("dv", ref.dv, canonical: [b, h, n, problem.valueDim], layoutAware: true)
            if let da = ref.da { put("da", da, canonical: [b, h, n], layoutAware: true) }
            if let dL = ref.dL { put("da_cumsum", dL, canonical: [b, h, n], layoutAware: true) }
            if let f = problem.featureDim {
                if let s = ref.dInitialState { put("dinitial_state", s, canonical: [b, h, f, problem.valueDim], layoutAware: false) }
                if let z = ref.dInitialStateZ { put("dinitial_state_z", z, canonical: [b, h, f], layoutAware: false) }
            }
            if !ref.zeroDenominatorRows.isEmpty {
                printError("warning: \(ref.zeroDenominatorRows.count) row(s) have a zero normaliser; gradients depending on them are NaN")
            }
        }
        try TensorFile.write(out, to: output, dtype: .float64)
        if let decimal {
            // ⌈p·log10 2⌉ + 1 significant digits identify a p-bit number uniquely.
            let digits = Int((Double(precision) * 0.30102999566398120).rounded(.up)) + 1
            var text = "# mambacheck reference: variant=\(variant) precision=\(precision) layout=bhnd\n"
            text += "# o[b,h,n,d] = value (\(digits) significant digits)\n"
            for (i, y) in ref.o.enumerated() {
                text += DecimalListing.line("o", TensorShape.index(ofOffset: i, in: shape), y, digits: digits) + "\n"
            }
            for (name, values, canonical) in gradientLines {
                text += "# \(name)\(canonical.count == 3 ? "[b,h,n]" : "[b,h,…]") (canonical order)\n"
                for (i, y) in values.enumerated() {
                    text += DecimalListing.line(name, TensorShape.index(ofOffset: i, in: canonical), y, digits: digits) + "\n"
                }
            }
            try AtomicFile.write(Data(text.utf8), to: decimal)
        }
        print("wrote \(output): o \(fileShape) at \(precision) bits" + (wantState ? " with final_state" : "")
              + (grad ? " and gradients " + gradientLines.map(\.0).joined(separator: ", ") : ""))
    }
}

extension TensorLayout: ExpressibleByArgument {}
