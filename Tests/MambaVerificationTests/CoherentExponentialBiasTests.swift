import Foundation
import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
@testable import MambaVerification
import Testing

/// The Float32 verdict judges errors modulo a coherent exponential bias
/// (Proofs/T9, "A coherent exponential bias, judged modulo").
@Suite("Coherent exponential bias")
struct CoherentExponentialBiasTests {
    /// Weak decays (memory of a few hundred tokens, as FLA's `logsigmoid(N(5, 1))`),
    /// where a per-step bias compounds into an almost uniform scale error.
    static let problem: CoreProblem = {
        var p = CoreProblem.random(spec: CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                                   length: 512, keyDim: 32, valueDim: 32, seed: 23)
        guard case .perStep(let a) = p.decay else { return p }
        p.decay = .perStep(a.indices.map { Double(Float(-0.004 - 0.004 * Double($0 % 7) / 7)) })
        return p
    }()
    static let settings = ComparisonSettings(format: .binary32, arithmetic: DeclaredArithmetic.named("float32"))

    static func biased(_ units: Double) -> CoreProblem {
        var p = problem
        guard case .perStep(let a) = p.decay else { return p }
        p.decay = .perStep(a.map { $0 + log1p(-units * KernelComparison.exponentialBias) })
        return p
    }

    static func relativeError(_ x: [Double], _ y: [Double]) -> Double {
        var e = 0.0, n = 0.0
        for (a, b) in zip(x, y) { e += (a - b) * (a - b); n += b * b }
        return (e / n).squareRoot()
    }

    /// A recurrent kernel whose exponential is biased like an H100's
    /// `ex2.approx` (0.65 x 2⁻²⁵ per step) passes, and the bias it removed is
    /// the one it was given; a chunked kernel with a uniform error of 8x its
    /// own fails, although it is within twice the biased yardstick's raw error
    /// (which let it pass before).
    @Test func recurrentBiasPassesAndUniformErrorFails() throws {
        let p = Self.problem
        let ref = try Reference.quadratic(p, precision: 128, finalState: false)
        let y = ref.oDouble
        let recurrent = try CoreKernels.run(Self.biased(0.65), form: .recurrent, mode: .float32)
        let good = try KernelComparison.compare(problem: p, candidate: CandidateTensors(o: recurrent.o),
                                                name: "recurrent", settings: Self.settings, oracle: ref)
        #expect(good.allSatisfy { $0.passed }, "\(good.map { $0.verdict.reason })")
        let note = try #require(good[0].verdict.note)
        #expect(note.contains("0.6"), "\(note)")  // the fitted γ: 0.6x, as planted

        let chunked = try CoreKernels.run(p, form: .chunked, mode: .float32)
        let eps = Self.relativeError(chunked.o, y)
        let bug = chunked.o.map { Double(Float($0 * (1 + 8 * eps))) }
        let caught = try KernelComparison.compare(problem: p, candidate: CandidateTensors(o: bug), name: "uniform",
                                                  settings: Self.settings, oracle: ref)
        #expect(!caught[0].passed, "\(caught[0].verdict.reason)")
        // The yardstick the bug hid behind: the biased recurrence's raw error.
        let yardstick = try CoreKernels.run(try #require(KernelComparison.exponentialBiasProblem(p)),
                                            form: .recurrent, mode: .float32)
        #expect(Self.relativeError(bug, y) < 2 * Self.relativeError(yardstick.o, y))
    }

    /// Gradients too: a recurrent backward with the same biased exponential
    /// passes in Float32 and each gradient's verdict names the bias it removed;
    /// `dv` off by 8x its own error (relative, uniformly) fails.
    @Test func recurrentBackwardBiasPassesAndScaledGradientFails() throws {
        let p = Self.problem
        let n = p.batch * p.heads * p.length * p.valueDim
        let dO = (0..<n).map { Double(Float(sin(Double($0) * 0.37))) }
        let g = GradientProblem(core: p, dO: dO)
        let ref = try Reference.gradients(g, precision: 128)
        let mine = try CoreBackward.run(GradientProblem(core: Self.biased(0.65), dO: dO), form: .recurrent, mode: .float32)
        let good = try GradientComparison.compare(problem: g, candidate: CandidateGradients(mine), name: "recurrent",
                                                  settings: Self.settings, oracle: ref)
        #expect(good.allSatisfy { $0.passed }, "\(good.map { $0.tensor + ": " + $0.verdict.reason })")
        #expect(good.allSatisfy { $0.verdict.note?.contains("coherent exponential bias") ?? false })
        let dvRef = try #require(ref.dv).map(\.doubleValue)
        let eps = Self.relativeError(mine.dv, dvRef)
        let bad = try GradientComparison.compare(
            problem: g, candidate: CandidateGradients(dv: mine.dv.map { Double(Float($0 * (1 + 8 * eps))) }),
            name: "dv scaled", settings: Self.settings, oracle: ref)
        #expect(!bad[0].passed, "\(bad[0].verdict.reason)")
    }

    /// The coefficient is fitted per group and clamped to ±`maxUnits`.
    @Test func removalIsPerGroupAndClamped() {
        let d: [Double] = [1, 2, 3, 4, 1, 2, 3, 4]
        let oracle = [Double](repeating: 1, count: 8)
        let values = (0..<8).map { oracle[$0] + ($0 < 4 ? 10 : -0.5) * d[$0] }
        let (out, gamma) = CoherentExponentialBias.remove(from: values, oracle: oracle, direction: d, groups: 2)
        #expect(gamma == [CoherentExponentialBias.maxUnits, -0.5])
        for e in 0..<4 { #expect(abs(out[e] - (1 + 8 * d[e])) < 1e-12) }
        for e in 4..<8 { #expect(abs(out[e] - 1) < 1e-12) }
    }

    /// No negative per-step log-decay: no direction, nothing removed.
    @Test func noDecayHasNoDirection() {
        let p = CoreProblem.random(spec: CoreSpec(score: .linear, hasDecay: false, normalization: .none),
                                   length: 64, keyDim: 8, valueDim: 8, seed: 1)
        #expect(CoherentExponentialBias.direction(p, options: KernelOptions()) == nil)
    }
}
