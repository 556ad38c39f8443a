import Testing
import MambaKernels
import MambaVariants

/// The forms compute one thing (docs/MATH.md §3): they agree with each other and
/// with the Double definition for every core, chunk size and tile size.
/// Tolerances: each form is within the derived bound `β` of `FastReference`
/// of the exact result, so two forms differ by at most `2β`.
@Suite("Fast kernels: forms agree")
struct FastFormAgreementTests {
    @Test(arguments: CoreSpec.all)
    func formsAgree(_ spec: CoreSpec) throws {
        let p = FastProblems.make(spec, mode: .float32, heads: 1, length: 150, keyDim: 16, valueDim: 8,
                                  initialState: spec.score != .exponential, seed: 31)
        let ref = FastReference.run(p, mode: .float32)
        let outs = try KernelForm.allCases.map { try CoreKernels.run(p, form: $0, mode: .float32) }
        let twice = ref.bound.map { 2 * $0 }
        for (i, a) in outs.enumerated() {
            for (j, b) in outs.enumerated() where j > i {
                let cmp = FastComparison(a.o, b.o, bound: twice)
                print("\(spec.name) \(KernelForm.allCases[i].rawValue) vs \(KernelForm.allCases[j].rawValue): \(cmp)")
                #expect(cmp.passes, "\(spec.name) \(KernelForm.allCases[i]) vs \(KernelForm.allCases[j]): \(cmp)")
                if let sa = a.finalState, let sb = b.finalState {
                    let sc = FastComparison(sa.s, sb.s, bound: ref.sBound!.map { 2 * $0 })
                    #expect(sc.passes, "\(spec.name) state \(KernelForm.allCases[i]) vs \(KernelForm.allCases[j]): \(sc)")
                }
            }
        }
    }

    /// Chunk sizes 1, 7, 16, 64 and ≥ N (one chunk, last chunk partial for
    /// 7 and 16), and tile sizes likewise, against the Double definition.
    @Test(arguments: CoreSpec.all)
    func chunkAndTileSizes(_ spec: CoreSpec) throws {
        let n = 100
        let p = FastProblems.make(spec, mode: .float32, heads: 1, length: n, keyDim: 8, valueDim: 4,
                                  initialState: spec.score != .exponential, seed: 47)
        let ref = FastReference.run(p, mode: .float32)
        for size in [1, 7, 16, 64, n, n + 13] {
            let options = KernelOptions(chunkSize: size, tileSize: size)
            for form in [KernelForm.chunked, .tiled] {
                let out = try CoreKernels.run(p, form: form, mode: .float32, options: options)
                let cmp = FastComparison(out.o, ref.o, bound: ref.bound)
                #expect(cmp.passes, "\(spec.name) \(form) size \(size): \(cmp)")
                if let rs = ref.s {
                    let sc = FastComparison(out.finalState!.s, rs, bound: ref.sBound!)
                    #expect(sc.passes, "\(spec.name) \(form) size \(size) state: \(sc)")
                }
            }
        }
    }

    /// Sequences of length 0 and 1, batch > 1: shapes and trivial cases.
    @Test func edgeLengths() throws {
        for spec in CoreSpec.all {
            for n in [0, 1, 2] {
                let p = FastProblems.make(spec, mode: .float32, batch: 2, heads: 2, length: n,
                                          initialState: spec.score != .exponential, seed: 3)
                let ref = FastReference.run(p, mode: .float32)
                for form in KernelForm.allCases {
                    let out = try CoreKernels.run(p, form: form, mode: .float32)
                    #expect(out.o.count == p.sequences * n * p.valueDim)
                    let cmp = FastComparison(out.o, ref.o, bound: ref.bound)
                    #expect(cmp.passes, "\(spec.name) \(form) N=\(n): \(cmp)")
                    if let rs = ref.s {
                        let sc = FastComparison(out.finalState!.s, rs, bound: ref.sBound!)
                        #expect(sc.passes, "\(spec.name) \(form) N=\(n) state: \(sc)")
                    }
                }
            }
        }
    }

    /// Invalid inputs are refused with a message, not a crash.
    @Test func refusesInvalidProblems() throws {
        let spec = CoreSpec(score: .exponential, hasDecay: true, normalization: .sum)
        var p = FastProblems.make(spec, mode: .float32, length: 8, initialState: false, seed: 1)
        p.initialState = CoreState(s: [0], z: nil)
        #expect(throws: KernelError.self) { try CoreKernels.run(p, form: .chunked, mode: .float32) }
        p.initialState = nil
        #expect(throws: KernelError.self) {
            try CoreKernels.run(p, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: 0))
        }
        p.decay = nil
        #expect(throws: KernelError.self) { try CoreKernels.run(p, form: .recurrent, mode: .float32) }
    }
}
