import MambaKernels
import MambaOracle
import MambaPrecision
import MambaVariants
@testable import MambaVerification
import Testing

/// An undeclared recurrent form is read from the candidate's error pattern
/// (Proofs/T9, "An undeclared recurrent form"): a Float32 recurrence is taken
/// for one and its one-row bugs are then caught, a uniform scale is read past; chunk
/// kernels, even at chunk 8, and a recurrence with a bug raising every row in
/// no fixed direction are not.
@Suite("Recurrent form inference")
struct RecurrentFormInferenceTests {
    /// The generator's strong decays (a ≈ −0.7): prefix sums deep in a chunk reach |ℓ| ≈ 40.
    static let problem = CoreProblem.random(spec: CoreSpec(score: .linear, hasDecay: true, normalization: .none),
                                            length: 384, keyDim: 32, valueDim: 32, seed: 43)
    static let settings = ComparisonSettings(format: .binary32, arithmetic: DeclaredArithmetic.named("float32")!)

    static func run(_ form: KernelForm, chunk: Int = 64, scan: PrefixScan = .sequential) throws -> [Double] {
        var options = KernelOptions(chunkSize: chunk)
        options.prefixScan = scan
        return try CoreKernels.run(problem, form: form, mode: .float32, options: options).o.map { Double(Float($0)) }
    }

    static func normwise(_ o: [Double], _ y: [Double]) -> Double {
        var e = 0.0, n = 0.0
        for (a, b) in zip(o, y) { e += (a - b) * (a - b); n += b * b }
        return (e / n).squareRoot()
    }

    @Test func aRecurrenceIsRecognisedAndItsRowBugCaught() throws {
        let ref = try Reference.quadratic(Self.problem, precision: 128, finalState: false)
        let y = ref.oDouble
        let o = try Self.run(.recurrent)
        let inferred = try #require(RecurrentFormInference.infer(Self.problem, candidate: o, oracle: y,
                                                                 settings: Self.settings))
        #expect(inferred.recurrent, "ρ \(inferred.correlation), level \(inferred.level)")
        var a = Self.settings.effectiveArithmetic
        a.form = .recurrent
        let judged = ComparisonSettings(format: .binary32, arithmetic: a)
        let pass = try KernelComparison.compare(problem: Self.problem, candidate: CandidateTensors(o: o), name: "rec",
                                                settings: judged, oracle: ref)
        #expect(pass.allSatisfy { $0.passed }, "\(pass.map { $0.verdict.reason })")
        // One row moved by 8x the kernel's normwise error: still a recurrence, and caught as one.
        let eps = Self.normwise(o, y)
        var row = o
        var rowNorm = 0.0
        for d in 0..<32 { rowNorm += y[200 * 32 + d] * y[200 * 32 + d] }
        for d in 0..<32 { row[200 * 32 + d] += (d % 2 == 0 ? 1 : -1) * 8 * eps * rowNorm.squareRoot() / 32.0.squareRoot() }
        let again = try #require(RecurrentFormInference.infer(Self.problem, candidate: row, oracle: y,
                                                              settings: Self.settings))
        #expect(again.recurrent)
        let caught = try KernelComparison.compare(problem: Self.problem, candidate: CandidateTensors(o: row),
                                                  name: "rec-row", settings: judged, oracle: ref)
        #expect(!caught.allSatisfy { $0.passed })
    }

    /// A uniform scale error is no form: where it carries most of the error it is removed
    /// before the form is read, and a correct kernel's output is read as given (Proofs/T9,
    /// "An undeclared recurrent form"; on a real kernel:
    /// `RealKernelDumpTests.declaredRecurrentFormTightensTheOutput`).
    @Test func aUniformScaleIsRemovedBeforeTheFormIsRead() throws {
        let y = try Reference.quadratic(Self.problem, precision: 128, finalState: false).oDouble
        let o = try Self.run(.recurrent)
        #expect(RecurrentFormInference.withoutUniformScale(o, oracle: y) == o)
        let eps = Self.normwise(o, y)
        let uniform = o.map { $0 * (1 + 8 * eps) }
        #expect(Self.normwise(uniform, y) > 7 * eps)
        let removed = RecurrentFormInference.withoutUniformScale(uniform, oracle: y)
        #expect(Self.normwise(removed, y) < 1.1 * eps, "\(Self.normwise(removed, y) / eps)")
        // One wrong row carries no uniform scale: read as given.
        var row = o
        for d in 0..<32 { row[200 * 32 + d] += (d % 2 == 0 ? 1 : -1) * 8 * eps * Swift.abs(y[200 * 32 + d]) }
        #expect(RecurrentFormInference.withoutUniformScale(row, oracle: y) == row)
    }

    @Test func chunkKernelsAndANoisyErrorAreNotTakenForARecurrence() throws {
        let y = try Reference.quadratic(Self.problem, precision: 128, finalState: false).oDouble
        for (chunk, scan) in [(64, PrefixScan.sequential), (64, .koggeStone), (16, .sequential), (8, .koggeStone)] {
            let o = try Self.run(.chunked, chunk: chunk, scan: scan)
            let i = RecurrentFormInference.infer(Self.problem, candidate: o, oracle: y, settings: Self.settings)
            #expect(i?.recurrent != true, "chunk \(chunk) \(scan): ρ \(i?.correlation ?? .nan), level \(i?.level ?? .nan)")
        }
        let quadratic = try Self.run(.quadratic)
        #expect(RecurrentFormInference.infer(Self.problem, candidate: quadratic, oracle: y,
                                             settings: Self.settings)?.recurrent != true)
        // A bug raising every row in no fixed direction keeps every form's allowance (never a tighter one).
        let o = try Self.run(.recurrent)
        let eps = Self.normwise(o, y)
        let noisy = o.indices.map { Double(Float(o[$0] + ($0 % 3 == 0 ? -8 : 8) * eps * Swift.abs(y[$0]))) }
        #expect(RecurrentFormInference.infer(Self.problem, candidate: noisy, oracle: y,
                                             settings: Self.settings)?.recurrent != true)
        // Only true Float32 and undeclared forms.
        var declared = Self.settings
        declared.arithmetic?.form = .chunked
        #expect(RecurrentFormInference.infer(Self.problem, candidate: o, oracle: y, settings: declared) == nil)
        let tf32 = ComparisonSettings(format: .binary32, arithmetic: DeclaredArithmetic.named("tf32")!)
        #expect(RecurrentFormInference.infer(Self.problem, candidate: o, oracle: y, settings: tf32) == nil)
    }

    @Test func spearmanOfRanks() {
        #expect(RecurrentFormInference.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1)
        #expect(RecurrentFormInference.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1)
        #expect(RecurrentFormInference.spearman([1, 1, 1], [1, 2, 3]) == nil)
        // Ties share their average rank: x ranks (0.5, 0.5, 2), y ranks (0, 1, 2).
        let r = RecurrentFormInference.spearman([1, 1, 2], [1, 2, 3])!
        #expect(abs(r - 0.8660254037844386) < 1e-12)
    }
}
