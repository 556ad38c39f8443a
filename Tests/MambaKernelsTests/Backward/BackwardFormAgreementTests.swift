import Testing
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
import MambaVerification
import _MambaTestSupport

/// The backward forms compute one thing: in Float32 every form's gradients
/// agree with the quadratic form's within twice the derived bound of
/// `BackwardBound` (each is within `boundFactor·u·m_e + 2 ulp` of the exact
/// gradient, so two of them within twice that), on sequences long enough
/// for many chunks and tiles and a carried state gradient.
@Suite("Backward kernels: the forms agree")
struct BackwardFormAgreementTests {
    /// `|a − b| ≤ 2·(boundFactor·u·m + 2 ulp(max))` elementwise; returns the worst ratio.
    static func agreement(_ a: [Double], _ b: [Double], _ m: [Double], factor: Double) -> (ratio: Double, index: Int) {
        var worst = 0.0, at = -1
        for e in a.indices {
            let d = abs(a[e] - b[e])
            let ulp = Double(Float(max(abs(a[e]), abs(b[e]))).ulp)
            let tol = 2 * (factor * 0x1p-24 * m[e] + 2 * ulp)
            let r = d.isNaN ? Double.infinity : (tol == 0 ? (d == 0 ? 0 : .infinity) : d / tol)
            if r > worst { worst = r; at = e }
        }
        return (worst, at)
    }

    static func check(_ x: CoreGradients, against y: CoreGradients, _ m: TotalMagnitudes, factor: Double,
                      label: String) {
        var pairs: [(String, [Double], [Double], [Double])] = [("dq", x.dq, y.dq, m.dq), ("dk", x.dk, y.dk, m.dk),
                                                               ("dv", x.dv, y.dv, m.dv)]
        if let a = x.dL, let b = y.dL { pairs.append(("dL", a, b, m.dL!)) }
        if let a = x.da, let b = y.da { pairs.append(("da", a, b, m.da!)) }
        if let a = x.dInitialState, let b = y.dInitialState { pairs.append(("dS0", a, b, m.dInitialState!)) }
        if let a = x.dInitialStateZ, let b = y.dInitialStateZ { pairs.append(("dz0", a, b, m.dInitialStateZ!)) }
        var line: [String] = []
        for (name, a, b, mag) in pairs {
            #expect(a.count == b.count, "\(label) \(name): counts")
            let r = agreement(a, b, mag, factor: factor)
            line.append("\(name) \(String(format: "%.3g", r.ratio))")
            #expect(r.ratio <= 1, "\(label) \(name): differ by \(r.ratio)× the bound at \(r.index)")
        }
        print("\(label): worst difference / bound: " + line.joined(separator: ", "))
    }

    @Test(arguments: CoreSpec.all)
    func chunkedTiledAndRecurrentMatchQuadratic(spec: CoreSpec) throws {
        let seed: UInt64 = 33_000 + UInt64(CoreSpec.all.firstIndex(of: spec)!)
        let g = BackwardProblems.make(spec, storage: .float32, heads: 1, length: 300, keyDim: 16, valueDim: 8,
                                      initialState: true, seed: seed)
        let m = BackwardBound.magnitudes(g, .float32)
        let factor = BackwardBound.boundFactor(.float32, g.core)
        let options = KernelOptions(chunkSize: 64, tileSize: 32)
        let quadratic = try CoreBackward.run(g, form: .quadratic, mode: .float32, options: options)
        for form in [KernelForm.chunked, .tiled, .recurrent] {
            let other = try CoreBackward.run(g, form: form, mode: .float32, options: options)
            Self.check(other, against: quadratic, m, factor: factor,
                       label: "seed \(seed) \(spec.name) N=300 \(form.rawValue) vs quadratic")
        }
        // Chunk length does not matter either (one chunk = the quadratic form's pairs, plus ragged chunks).
        for c in [1000, 37] {
            let other = try CoreBackward.run(g, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: c))
            Self.check(other, against: quadratic, m, factor: factor,
                       label: "seed \(seed) \(spec.name) N=300 chunked C=\(c) vs quadratic")
        }
    }

    /// The full `dk²` second-order state gives the same gradients as the
    /// packed one (the initial-state gradient converted back to packed).
    @Test func fullSecondOrderStateMatchesPacked() throws {
        for spec in CoreSpec.all where spec.score == .squared {
            let g = BackwardProblems.make(spec, storage: .float32, length: 50, keyDim: 6, valueDim: 4,
                                          initialState: true, seed: 33_100)
            let m = BackwardBound.magnitudes(g, .float32)
            let factor = BackwardBound.boundFactor(.float32, g.core)
            for form in [KernelForm.chunked, .tiled, .quadratic] {
                let packed = try CoreBackward.run(g, form: form, mode: .float32, options: KernelOptions(chunkSize: 16, tileSize: 16))
                let full = try CoreBackward.run(g, form: form, mode: .float32,
                                                options: KernelOptions(chunkSize: 16, tileSize: 16, fullSecondOrderState: true))
                Self.check(full, against: packed, m, factor: factor, label: "seed 33100 \(spec.name) \(form) full vs packed φ₂")
            }
        }
    }

    /// Decays given as prefix sums (`.prefixSum`, a kernel's `A_cumsum`) are
    /// used as given by every form; the gradients agree with the oracle's
    /// (which reports both `dL` and `da`) within the derived bound.
    @Test func prefixSumDecayInput() throws {
        for spec in CoreSpec.all where spec.hasDecay {
            var g = BackwardProblems.make(spec, storage: .float32, length: 29, initialState: true, seed: 33_200)
            guard case .perStep(let a)? = g.core.decay else { Issue.record("expected per-step decays"); return }
            var l = a
            for s in 0..<g.core.sequences {
                var acc: Float = 0
                for t in 0..<g.core.length { acc += Float(a[s * g.core.length + t]); l[s * g.core.length + t] = Double(acc) }
            }
            g.core.decay = .prefixSum(l)
            let oracle = try Reference.gradients(g, precision: 128)
            let mags = BackwardBound.magnitudes(g, .float32)
            let policy = VerdictPolicy(factor: 2, ulpAllowance: 2, boundFactor: BackwardBound.boundFactor(.float32, g.core))
            for form in KernelForm.allCases {
                let out = try CoreBackward.run(g, form: form, mode: .float32, options: KernelOptions(chunkSize: 8, tileSize: 8))
                let checks = try BackwardChecks.compare(out, oracle, mags, g, mode: .float32, policy: policy)
                let label = "seed 33200 \(spec.name) prefix-sum input \(form.rawValue)"
                print("\(label): " + checks.map(\.description).joined(separator: "; "))
                for c in checks { #expect(c.passed, "\(label): \(c)") }
            }
        }
    }

    /// A wider head (dk = 16, F = 136 second-order features): the packed
    /// feature VJP over many pairs, against the oracle.
    @Test(arguments: [KernelForm.chunked, .tiled, .quadratic, .recurrent])
    func widerHeadAgainstOracle(form: KernelForm) throws {
        for spec in [CoreSpec(score: .squared, hasDecay: true, normalization: .sum),
                     CoreSpec(score: .squared, hasDecay: true, normalization: .none)] {
            let g = BackwardProblems.make(spec, storage: .float32, heads: 1, length: 20, keyDim: 16, valueDim: 5,
                                          initialState: true, seed: 33_300)
            let oracle = try Reference.gradients(g, precision: 128)
            let mags = BackwardBound.magnitudes(g, .float32)
            let policy = VerdictPolicy(factor: 2, ulpAllowance: 2, boundFactor: BackwardBound.boundFactor(.float32, g.core))
            let out = try CoreBackward.run(g, form: form, mode: .float32, options: KernelOptions(chunkSize: 6, tileSize: 6))
            let checks = try BackwardChecks.compare(out, oracle, mags, g, mode: .float32, policy: policy)
            let label = "seed 33300 \(spec.name) dk=16 \(form.rawValue)"
            print("\(label): " + checks.map(\.description).joined(separator: "; "))
            for c in checks { #expect(c.passed, "\(label): \(c)") }
        }
    }
}
