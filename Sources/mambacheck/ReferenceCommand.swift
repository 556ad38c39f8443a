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
            --decimal then prints only certified digits (--digits significant digits). Not yet certified: outputs \
            of a problem with an initial state, final states and gradients (computed at --precision bits, and \
            said so).

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
        let (core, _) = try resolveDumpCore(variant)
        let arrays = try TensorFile.read(inputs)
        if let hint = KernelDump.layoutHint(arrays, layout: layout) { printError("hint: \(hint)") }
        var problem = try KernelDump.coreProblem(arrays, file: inputs, spec: core, layout: layout, scale: nil)
        problem.scaleSpec = scaleOptions.oracleScale(keyDim: problem.keyDim)
        if let m = problem.validationError() { throw InputProblem(description: "\(inputs): \(m)") }
        let wantState = finalState || problem.initialState != nil
        // Certified outputs where covered (no initial state yet); the p-bit oracle for the rest.
        let certified = problem.initialState == nil
            ? try Reference.certified(problem, precision: precision, maxPrecision: maxPrecision,
                                      decimalDigits: decimal == nil ? nil : digits)
            : nil
        let ref = certified == nil || wantState ? try Reference.quadratic(problem, precision: precision, finalState: wantState) : nil
        let shape = [problem.batch, problem.heads, problem.length, problem.valueDim]
        let o = KernelDump.fromBHND(certified?.o ?? ref!.oDouble, canonicalShape: shape, layout: layout)
        let fileShape = layout == .bhnd ? shape : [shape[0], shape[2], shape[1], shape[3]]
        var out: [String: Tensor<Double>] = ["o": Tensor(shape: fileShape, storage: o)]
        if wantState, let ref, let s = ref.finalStateS, let f = problem.featureDim {
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
            var text = "# mambacheck reference: variant=\(variant) precision=\(precision) layout=bhnd scale=\(problem.scaleSpec)\n"
            if let certified {
                text += "# \(certified.summary); digits below are certified\n"
                text += "# o[b,h,n,d] = value (\(digits) significant digits, correctly rounded)\n"
                let reasons = Dictionary(certified.undecided.map { ($0.index, $0.reason) }, uniquingKeysWith: { a, _ in a })
                for i in 0..<certified.o.count {
                    let idx = DecimalListing.indexText(TensorShape.index(ofOffset: i, in: shape))
                    if let v = certified.decimal?[i] { text += "o\(idx) = \(v)\n" } else {
                        text += "o\(idx) = undecided: \(reasons[i].map(\.description) ?? "undecided")\n"
                    }
                }
            } else if let ref {
                text += "# oracle not certified (an initial state is not covered yet): digits exact at \(precision) bits only\n"
                text += "# o[b,h,n,d] = value (\(digits) significant digits)\n"
                for (i, y) in ref.o.enumerated() {
                    text += "o\(DecimalListing.indexText(TensorShape.index(ofOffset: i, in: shape))) = \(y.decimalString(significantDigits: digits))\n"
                }
            }
            // Gradients are not certified yet: print only the digits a p-bit number determines.
            let gradientDigits = Swift.min(digits, Int((Double(precision) * 0.30102999566398120).rounded(.up)) + 1)
            for (name, values, canonical) in gradientLines {
                text += "# \(name)\(canonical.count == 3 ? "[b,h,n]" : "[b,h,…]") (canonical order; not certified, \(precision)-bit oracle)\n"
                for (i, y) in values.enumerated() {
                    text += "\(name)\(DecimalListing.indexText(TensorShape.index(ofOffset: i, in: canonical))) = \(y.decimalString(significantDigits: gradientDigits))\n"
                }
            }
            try AtomicFile.write(Data(text.utf8), to: decimal)
        }
        print("wrote \(output): o \(fileShape) at \(precision) bits" + (wantState ? " with final_state" : "")
              + (grad ? " and gradients " + gradientLines.map(\.0).joined(separator: ", ") : ""))
        print("scale: \(problem.scaleSpec)")
        if let certified {
            print(certified.summary + (certified.rowsRaised > 0
                ? " (\(certified.rowsRaised) row(s) raised, up to \(certified.finalPrecision) bits)" : ""))
            for u in certified.undecided.prefix(20) {
                printError("undecided: o\(DecimalListing.indexText(TensorShape.index(ofOffset: u.index, in: shape))): \(u.reason) (NaN in \(output))")
            }
            if certified.undecided.count > 20 { printError("undecided: … \(certified.undecided.count - 20) more") }
        } else {
            print("oracle not certified: an initial state is not covered by the certified oracle yet (\(precision)-bit values)")
        }
        if wantState || grad { print("final states and gradients: not certified yet (\(precision)-bit oracle)") }
    }
}

extension TensorLayout: ExpressibleByArgument {}
