import Testing
import MambaKernels
import MambaVariants

/// Every form × every core of `CoreSpec.all` × every precision mode against
/// the Double evaluation of docs/MATH.md §1, within the componentwise error bound
/// derived in `FastReference` (output and final state).
@Suite("Fast kernels: accuracy against docs/MATH.md §1 in Double")
struct FastFormAccuracyTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var spec: CoreSpec
        var form: KernelForm
        var testDescription: String { "\(spec.name) \(form.rawValue)" }
    }

    static let cases: [Case] = CoreSpec.all.flatMap { s in KernelForm.allCases.map { Case(spec: s, form: $0) } }

    @Test(arguments: cases)
    func matchesReference(_ c: Case) throws {
        for (index, mode) in PrecisionMode.allCases.enumerated() {
            let withState = c.spec.score != .exponential
            let p = FastProblems.make(c.spec, mode: mode, length: 37, initialState: withState,
                                      seed: 1000 + UInt64(index))
            let options = KernelOptions(chunkSize: 16, tileSize: 16)
            let out = try CoreKernels.run(p, form: c.form, mode: mode, options: options)
            let ref = FastReference.run(p, mode: mode)
            let cmp = FastComparison(out.o, ref.o, bound: ref.bound)
            print("\(c.spec.name) \(c.form.rawValue) \(mode.rawValue): o \(cmp)")
            #expect(cmp.passes, "\(c.spec.name) \(c.form.rawValue) \(mode.rawValue): \(cmp)")
            // Diagnostics appear exactly when the exact result has zero denominators.
            #expect(out.diagnostics.isEmpty == ref.o.allSatisfy(\.isFinite), "\(out.diagnostics)")
            if let rs = ref.s {
                let st = try #require(out.finalState)
                let sc = FastComparison(st.s, rs, bound: ref.sBound!)
                #expect(sc.passes, "\(c.spec.name) \(c.form.rawValue) \(mode.rawValue) state S: \(sc)")
                if let rz = ref.z {
                    let zc = FastComparison(try #require(st.z), rz, bound: ref.zBound!)
                    #expect(zc.passes, "\(c.spec.name) \(c.form.rawValue) \(mode.rawValue) state z: \(zc)")
                }
            } else {
                #expect(out.finalState == nil)
            }
        }
    }

    /// The full `dk²` second-order state gives the same outputs and, after
    /// conversion, the same packed final state.
    @Test(arguments: [KernelForm.chunked, .recurrent, .quadratic, .tiled])
    func fullSecondOrderState(_ form: KernelForm) throws {
        for spec in CoreSpec.all where spec.score == .squared {
            let p = FastProblems.make(spec, mode: .float32, length: 29, initialState: true, seed: 77)
            let out = try CoreKernels.run(p, form: form, mode: .float32,
                                          options: KernelOptions(chunkSize: 8, fullSecondOrderState: true))
            let ref = FastReference.run(p, mode: .float32)
            let cmp = FastComparison(out.o, ref.o, bound: ref.bound)
            #expect(cmp.passes, "\(spec.name) \(form): \(cmp)")
            let sc = FastComparison(out.finalState!.s, ref.s!, bound: ref.sBound!)
            #expect(sc.passes, "\(spec.name) \(form) state: \(sc)")
        }
    }

    /// Given prefix sums (`.prefixSum`) are used as given by every form.
    @Test func prefixSumDecayInput() throws {
        for spec in CoreSpec.all where spec.hasDecay {
            var p = FastProblems.make(spec, mode: .float32, length: 33, initialState: spec.score != .exponential,
                                      seed: 5)
            guard case .perStep(let a)? = p.decay else { Issue.record("expected per-step"); return }
            var l = a
            for s in 0..<p.sequences {
                var acc: Float = 0
                for t in 0..<p.length { acc += Float(a[s * p.length + t]); l[s * p.length + t] = Double(acc) }
            }
            p.decay = .prefixSum(l)
            let ref = FastReference.run(p, mode: .float32)
            for form in KernelForm.allCases {
                let out = try CoreKernels.run(p, form: form, mode: .float32, options: KernelOptions(chunkSize: 8))
                let cmp = FastComparison(out.o, ref.o, bound: ref.bound)
                #expect(cmp.passes, "\(spec.name) \(form): \(cmp)")
            }
        }
    }
}
