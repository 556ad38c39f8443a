import Testing
import MambaKernels
import MambaOracle
import MambaVariants

/// The orders in which the chunked form sums a chunk's per-step decays
/// (`KernelOptions.prefixScan`): every order computes the same prefix sums,
/// up to its own roundings (Proofs/T9, "Orders of the prefix sums").
@Suite("Fast kernels: prefix-sum orders")
struct PrefixScanTests {
    static func problem(decays: (Int) -> Double, seed: UInt64) -> CoreProblem {
        let spec = CoreSpec.all.first { $0.name == "linear-decay-none" }!
        var p = CoreProblem.random(spec: spec, heads: 1, length: 200, keyDim: 16, valueDim: 8,
                                   withInitialState: true, seed: seed)
        p.decay = .perStep((0..<200).map(decays))
        return p
    }

    /// Decays that are multiples of 2⁻⁸ above −1 sum exactly in Float32 over a
    /// chunk, so every addition order gives the same bits; the base-2 rescale
    /// rounds, so it is only close.
    @Test func ordersAgreeBitForBitWhenSumsAreExact() throws {
        let p = Self.problem(decays: { -Double(($0 * 37) % 97 + 1) / 256 }, seed: 5)
        func run(_ s: PrefixScan) throws -> [Double] {
            try CoreKernels.run(p, form: .chunked, mode: .float32, options: KernelOptions(chunkSize: 64, prefixScan: s)).o
        }
        let sequential = try run(.sequential)
        #expect(try run(.koggeStone) == sequential)
        let base2 = try run(.brentKungBase2)
        #expect(base2 != sequential, "the base-2 rescale must round somewhere")
        let worst = zip(base2, sequential).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
        #expect(worst < 1e-4)
    }

    /// Strong decays (|ℓ| up to ~50 in a chunk of 64, as in Mamba-2) and a reset
    /// step: every order stays within the same error as the sequential one
    /// (the exponent error of each is `O(u(|ℓ_i| + |ℓ_j|))`), and the orders
    /// really differ (the option is in effect).
    @Test(arguments: [PrefixScan.koggeStone, .brentKungBase2])
    func ordersStayAccurate(_ scan: PrefixScan) throws {
        var p = Self.problem(decays: { -0.2 - 1.3 * Double(($0 * 61) % 89) / 89 }, seed: 9)
        guard case .perStep(var a) = p.decay else { return }
        a[100] = -1e9  // a reset inside the second chunk (skipFirst path)
        p.decay = .perStep(a)
        let y = try Reference.quadratic(p, precision: 128).oDouble
        func error(_ o: [Double]) -> Double { zip(o, y).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity }
        let options = KernelOptions(chunkSize: 64)
        var scanned = options
        scanned.prefixScan = scan
        let sequential = try CoreKernels.run(p, form: .chunked, mode: .float32, options: options).o
        let other = try CoreKernels.run(p, form: .chunked, mode: .float32, options: scanned).o
        #expect(other != sequential)
        // Measured ratio 0.6–1.6; 4x leaves room for other seeds, far below the
        // ~1e6 of a reset summed into ℓ (ResetDecayTests).
        #expect(error(other) < 1e-4 && error(other) <= 4 * max(error(sequential), 1e-7),
                "\(scan): \(error(other)) vs sequential \(error(sequential))")
    }
}
