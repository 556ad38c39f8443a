import ArgumentParser
import Foundation
import MambaKernels
import MambaOracle
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

            The outputs o are certified (docs/MATH.md §7.3, Proofs/T7): every element is enclosed with MPFR \
            directed rounding, the working precision is raised (Ziv's strategy, up to --max-precision bits) until \
            its Float64 rounding is decided, and o holds the correctly rounded value. Elements that cannot be \
            decided (an exact tie, a zero denominator) are NaN in o and listed by index, never guessed. \
            --decimal then prints only certified digits (--digits significant digits). Final states and \
            gradients are certified the same way.

            With --grad the file must also hold do (the upstream gradient dL/dO of L = Σ o·do, same shape and \
            layout as v), and the oracle's gradients (docs/MATH.md §5, MPFR) are written too, in the input layout: dq, dk, \
            dv and, for decayed cores, da (with respect to the per-step log-decay a) and da_cumsum (with respect to \
            the prefix sums); with an initial state also dinitial_state and dinitial_state_z. Rows whose \
            normaliser is exactly zero make the gradients that depend on them undecided (NaN, reported).

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
    @OptionGroup var scaleOptions: ScaleOptions
    @Option(help: "Also write every output element as a decimal string with --digits certified significant digits.")
    var decimal: String?
    @Option(help: "Significant digits of --decimal, each certified (1…10000).") var digits: Int = 17
    @Option(help: "Highest precision (bits) the certified oracle may raise to before reporting an element undecided.")
    var maxPrecision: Int = 4096
    @Flag(help: "Also compute the final state (cost N·F·dv).") var finalState = false
    @Flag(help: "Also compute the gradients dq, dk, dv (da, da_cumsum; dinitial_state) from the upstream gradient `do`.")
    var grad = false

    func validate() throws {
        try OracleArguments.validate(precision: precision, scale: nil)
        guard (1...10_000).contains(digits) else { throw ValidationError("--digits must be in 1…10000, found \(digits)") }
        guard maxPrecision >= precision, OracleArguments.precisionRange.contains(maxPrecision) else {
            throw ValidationError("--max-precision must be in \(precision)…\(OracleArguments.precisionRange.upperBound) bits, found \(maxPrecision)")
        }
    }

    func run() throws {
        // Never write over the inputs, and fail on an unwritable output before the oracle runs.
        try OutputPaths.check([("--output", output), ("--decimal", decimal)], inputs: [("--inputs", inputs)])
        let (_, arrays, problem) = try readDumpProblem(variant: variant, inputs: inputs, layout: layout,
                                                       scaleOptions: scaleOptions)
        let wantState = finalState || problem.initialState != nil
        let decimalDigits = decimal == nil ? nil : digits
        // Every tensor written is certified (Proofs/T7): correctly rounded, or NaN and listed as undecided.
        let certified = try Reference.certified(problem, precision: precision, maxPrecision: maxPrecision,
                                                decimalDigits: decimalDigits)
        let b = problem.batch, h = problem.heads, n = problem.length, dv = problem.valueDim
        let shape = [b, h, n, dv]
        let fileShape = layout == .bhnd ? shape : [shape[0], shape[2], shape[1], shape[3]]
        var out: [String: Tensor<Double>] = [:]
        // (file name, certified tensor, canonical shape) of everything written, for the listing and the summary.
        var written: [(name: String, values: CertifiedOutput, shape: [Int])] = []
        func put(_ name: String, _ c: CertifiedOutput, canonical: [Int], layoutAware: Bool) {
            let data = layoutAware ? KernelDump.fromBHND(c.o, canonicalShape: canonical, layout: layout) : c.o
            let fileShape = layoutAware && layout == .bnhd ? [canonical[0], canonical[2], canonical[1]] + canonical.dropFirst(3)
                                                           : canonical
            out[name] = Tensor(shape: fileShape, storage: data)
            written.append((name, c, canonical))
        }
        put("o", certified, canonical: shape, layoutAware: true)
        if wantState, let f = problem.featureDim,
           let st = try Reference.certifiedFinalState(problem, precision: precision, maxPrecision: maxPrecision,
                                                      decimalDigits: decimalDigits) {
            put("final_state", st.s, canonical: [b, h, f, dv], layoutAware: false)
            if let z = st.z { put("final_state_z", z, canonical: [b, h, f], layoutAware: false) }
        }
        let forward = written.count
        if grad {
            let g = try KernelDump.gradientProblem(arrays, file: inputs, core: problem, layout: layout)
            let (c, zeroRows) = try Reference.certifiedGradients(g, precision: precision, maxPrecision: maxPrecision,
                                                                 decimalDigits: decimalDigits)
            put("dq", c.dq, canonical: [b, h, n, problem.keyDim], layoutAware: true)
            put("dk", c.dk, canonical: [b, h, n, problem.keyDim], layoutAware: true)
            put("dv", c.dv, canonical: [b, h, n, dv], layoutAware: true)
            if let da = c.da { put("da", da, canonical: [b, h, n], layoutAware: true) }
            if let dL = c.dL { put("da_cumsum", dL, canonical: [b, h, n], layoutAware: true) }
            if let f = problem.featureDim {
                if let s = c.dInitialState { put("dinitial_state", s, canonical: [b, h, f, dv], layoutAware: false) }
                if let z = c.dInitialStateZ { put("dinitial_state_z", z, canonical: [b, h, f], layoutAware: false) }
            }
            if !zeroRows.isEmpty {
                printError("warning: \(zeroRows.count) row(s) have a zero normaliser; gradients depending on them are undecided (NaN)")
            }
        }
        try TensorFile.write(out, to: output, dtype: .float64)
        let parts = written.map { (name: $0.name, values: $0.values) }
        if let decimal {
            var text = "# mambacheck reference: variant=\(variant) precision=\(precision) layout=bhnd scale=\(problem.scaleSpec)\n"
            text += "# \(CertifiedOutput.summary(parts)); digits below are certified\n"
            for (name, c, canonical) in written {
                let axes = canonical.count == 3 ? "[b,h,n]" : (name.hasPrefix("final") || name.hasPrefix("dinitial") ? "[b,h,f,…]" : "[b,h,n,d]")
                text += "# \(name)\(axes) = value (\(digits) significant digits, correctly rounded; canonical order)\n"
                let reasons = Dictionary(c.undecided.map { ($0.index, $0.reason) }, uniquingKeysWith: { a, _ in a })
                for i in 0..<c.o.count {
                    let idx = TensorShape.indexText(TensorShape.index(ofOffset: i, in: canonical), compact: true)
                    if let v = c.decimal?[i] { text += "\(name)\(idx) = \(v)\n" } else {
                        text += "\(name)\(idx) = undecided: \(reasons[i].map(\.description) ?? "undecided")\n"
                    }
                }
            }
            try AtomicFile.write(Data(text.utf8), to: decimal)
        }
        print("wrote \(output): o \(fileShape) at \(precision) bits" + (wantState ? " with final_state" : "")
              + (grad ? " and gradients " + written.dropFirst(forward).map(\.name).joined(separator: ", ") : ""))
        print("scale: \(problem.scaleSpec)")
        let raised = written.map(\.values.rowsRaised).max() ?? 0, top = written.map(\.values.finalPrecision).max() ?? precision
        print(CertifiedOutput.summary(parts) + (raised > 0 ? " (precision raised up to \(top) bits)" : ""))
        var listed = 0
        for (name, c, canonical) in written {
            for u in c.undecided {
                listed += 1
                if listed <= 20 {
                    printError("undecided: \(name)\(TensorShape.indexText(TensorShape.index(ofOffset: u.index, in: canonical), compact: true)): \(u.reason) (NaN in \(output))")
                }
            }
        }
        if listed > 20 { printError("undecided: … \(listed - 20) more") }
    }
}

extension TensorLayout: ExpressibleByArgument {}
