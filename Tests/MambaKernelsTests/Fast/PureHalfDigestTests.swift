import Foundation
import Testing
@testable import MambaKernels
import MambaVariants

/// Pure binary16 results pinned bit for bit: a digest of every output of the
/// `float16` kernels (all cores, every form, with and without initial state,
/// chunk sizes that leave a partial chunk, the benchmark's problem whose
/// binary16 decays underflow, and the backward) must equal the digest recorded
/// before the binary16 GEMM learned to skip zero work (issue 12). Any change to
/// the emulation's arithmetic, however small, changes a digest.
///
/// The digests are of the IEEE bit patterns, NaN canonicalised (payloads are
/// not specified, see `HalfGemmExactnessTests`); they hold on every CPU path.
/// To re-record after an intended change: run with `MAMBACHECK_PRINT_DIGESTS=1`
/// and paste the printed table.
@Suite("pure binary16: bit-identical results (digests)")
struct PureHalfDigestTests {
    static func digest(_ arrays: [[Double]?]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for array in arrays {
            guard let array else { h = (h ^ 0xFF) &* 0x100_0000_01b3; continue }
            for x in array {
                let bits = x.isNaN ? Double.nan.bitPattern : x.bitPattern
                for shift in stride(from: 0, to: 64, by: 8) { h = (h ^ ((bits >> UInt64(shift)) & 0xFF)) &* 0x100_0000_01b3 }
            }
            h = (h ^ 0xAB) &* 0x100_0000_01b3
        }
        return h
    }

    /// Every case: a name and its digest.
    static func cases() throws -> [(String, UInt64)] {
        var out: [(String, UInt64)] = []
        for spec in CoreSpec.all {
            for initial in [false, true] where !initial || spec.score != .exponential {
                let p = FastProblems.make(spec, mode: .float16, heads: 1, length: 150, keyDim: 16, valueDim: 8,
                                          initialState: initial, seed: 101)
                for form in KernelForm.allCases {
                    for size in [16, 64] where size == 64 || form == .chunked || form == .tiled {
                        let options = KernelOptions(chunkSize: size, tileSize: size)
                        let o = try CoreKernels.run(p, form: form, mode: .float16, options: options)
                        out.append(("\(spec.name) \(form.rawValue) init=\(initial) size=\(size)",
                                    digest([o.o, o.finalState?.s, o.finalState?.z])))
                    }
                }
            }
        }
        // The benchmark's problem (paper distribution, Float32 storage): most
        // binary16 decay factors and query scales underflow to zero.
        let twoMamba = CoreSpec(score: .squared, hasDecay: true, normalization: .sum)
        for (n, dk) in [(1024, 64), (200, 32)] {
            let p = CoreProblem.random(spec: twoMamba, length: n, keyDim: dk, valueDim: dk, seed: 7)
            for form in KernelForm.allCases where n <= 200 || form == .chunked {
                let o = try CoreKernels.run(p, form: form, mode: .float16)
                out.append(("bench 2mamba N=\(n) dk=\(dk) \(form.rawValue)", digest([o.o, o.finalState?.s, o.finalState?.z])))
            }
        }
        // The backward, every form.
        for spec in CoreSpec.all where spec.score != .exponential {
            let g = BackwardProblems.make(spec, storage: .float16, heads: 1, length: 90, keyDim: 8, valueDim: 4,
                                          initialState: true, decayScale: 1.0 / 16, seed: 5)
            for form in KernelForm.allCases {
                let r = try CoreBackward.run(g, form: form, mode: .float16, options: KernelOptions(chunkSize: 16, tileSize: 16))
                out.append(("backward \(spec.name) \(form.rawValue)", digest([r.dq, r.dk, r.dv, r.dL, r.da, r.dInitialState])))
            }
        }
        return out
    }

    @Test func digestsAreUnchanged() throws {
        let got = try Self.cases()
        if ProcessInfo.processInfo.environment["MAMBACHECK_PRINT_DIGESTS"] == "1" {
            for (name, d) in got { print("        \"\(name)\": 0x\(String(d, radix: 16)),") }
        }
        #expect(got.count == Self.recorded.count, "\(got.count) cases, \(Self.recorded.count) recorded")
        for (name, d) in got {
            #expect(Self.recorded[name] == d, "\(name): 0x\(String(d, radix: 16)) vs recorded \(Self.recorded[name].map { "0x" + String($0, radix: 16) } ?? "none")")
        }
    }

    /// Recorded with the per-operation binary16 GEMM before issue 12's skipping.
    static let recorded: [String: UInt64] = [
        "linear-nodecay-none quadratic init=false size=64": 0xc08817d4a4dae4bf,
        "linear-nodecay-none chunked init=false size=16": 0x218d7232406480b2,
        "linear-nodecay-none chunked init=false size=64": 0xc09a796239bbfcb9,
        "linear-nodecay-none recurrent init=false size=64": 0x79c131fbd63026a,
        "linear-nodecay-none tiled init=false size=16": 0xa0d2f5b90e899d3e,
        "linear-nodecay-none tiled init=false size=64": 0xf3d72d7a0dd5d171,
        "linear-nodecay-none quadratic init=true size=64": 0xea7239ed1d3b8dd,
        "linear-nodecay-none chunked init=true size=16": 0x4f3807b904d9fc3d,
        "linear-nodecay-none chunked init=true size=64": 0x92772b67d1675f23,
        "linear-nodecay-none recurrent init=true size=64": 0x2c1986b5f98fe524,
        "linear-nodecay-none tiled init=true size=16": 0xba97f35e9195ea1e,
        "linear-nodecay-none tiled init=true size=64": 0x79f3be7275534ed3,
        "linear-decay-none quadratic init=false size=64": 0xeaefacbac1ef6ab,
        "linear-decay-none chunked init=false size=16": 0xd0d413aa10b462fb,
        "linear-decay-none chunked init=false size=64": 0xa6c00d40e28015cd,
        "linear-decay-none recurrent init=false size=64": 0xed804516a52036a8,
        "linear-decay-none tiled init=false size=16": 0x1ea3b178bb356106,
        "linear-decay-none tiled init=false size=64": 0x5cb9b292604a99f8,
        "linear-decay-none quadratic init=true size=64": 0x77d56b240320686b,
        "linear-decay-none chunked init=true size=16": 0xccf6ea69d4cde991,
        "linear-decay-none chunked init=true size=64": 0xf2fe2c11ec48eb75,
        "linear-decay-none recurrent init=true size=64": 0xf59baa0b55067425,
        "linear-decay-none tiled init=true size=16": 0xad50a07bbdcef02e,
        "linear-decay-none tiled init=true size=64": 0x5a55b29b139a541a,
        "relu-linear-nodecay-none quadratic init=false size=64": 0x73219dc6f6cf1adb,
        "relu-linear-nodecay-none chunked init=false size=16": 0x547fcb9f13c7008f,
        "relu-linear-nodecay-none chunked init=false size=64": 0x926d4a2195dc89db,
        "relu-linear-nodecay-none recurrent init=false size=64": 0x4f9e428cb4ec179a,
        "relu-linear-nodecay-none tiled init=false size=16": 0xdb68ea0716a529fe,
        "relu-linear-nodecay-none tiled init=false size=64": 0x251dd7aed0a9163e,
        "relu-linear-nodecay-none quadratic init=true size=64": 0xd2d9c245ce29cf98,
        "relu-linear-nodecay-none chunked init=true size=16": 0x305b0e713d18dfb8,
        "relu-linear-nodecay-none chunked init=true size=64": 0xb5e268b8dab8a236,
        "relu-linear-nodecay-none recurrent init=true size=64": 0xeb66a19a83fe914b,
        "relu-linear-nodecay-none tiled init=true size=16": 0xd382d07806a0add5,
        "relu-linear-nodecay-none tiled init=true size=64": 0x358479edefcd51b8,
        "relu-linear-nodecay-sum quadratic init=false size=64": 0x114bbf591cdb4c83,
        "relu-linear-nodecay-sum chunked init=false size=16": 0xd121191eeee851ad,
        "relu-linear-nodecay-sum chunked init=false size=64": 0xea85408addb57001,
        "relu-linear-nodecay-sum recurrent init=false size=64": 0x170a4e51f3e2329d,
        "relu-linear-nodecay-sum tiled init=false size=16": 0x6c2677a7c6e27b60,
        "relu-linear-nodecay-sum tiled init=false size=64": 0x872b3144922eabcf,
        "relu-linear-nodecay-sum quadratic init=true size=64": 0x23767f2deff7a74e,
        "relu-linear-nodecay-sum chunked init=true size=16": 0xf599fdc799c3e0f1,
        "relu-linear-nodecay-sum chunked init=true size=64": 0xc821c4400bd28cae,
        "relu-linear-nodecay-sum recurrent init=true size=64": 0x1f9cf3dc5340b8d5,
        "relu-linear-nodecay-sum tiled init=true size=16": 0x39b080ea2991d67f,
        "relu-linear-nodecay-sum tiled init=true size=64": 0x519dfaba26afddfa,
        "relu-linear-decay-none quadratic init=false size=64": 0x2e1e26f83eb29b97,
        "relu-linear-decay-none chunked init=false size=16": 0x6057692e64769a0a,
        "relu-linear-decay-none chunked init=false size=64": 0x800161cfbf80d62,
        "relu-linear-decay-none recurrent init=false size=64": 0xafa0e175993423ab,
        "relu-linear-decay-none tiled init=false size=16": 0x9ff6f412de428b68,
        "relu-linear-decay-none tiled init=false size=64": 0x667749c34b119ec6,
        "relu-linear-decay-none quadratic init=true size=64": 0x986ce12981a30966,
        "relu-linear-decay-none chunked init=true size=16": 0x60c09e2e7dc942f4,
        "relu-linear-decay-none chunked init=true size=64": 0x6c7f7c8104faa269,
        "relu-linear-decay-none recurrent init=true size=64": 0x79785c1a8508348b,
        "relu-linear-decay-none tiled init=true size=16": 0xf395f46200eed891,
        "relu-linear-decay-none tiled init=true size=64": 0x2e308474528ddf47,
        "relu-linear-decay-sum quadratic init=false size=64": 0x5c73f48d6ec813c2,
        "relu-linear-decay-sum chunked init=false size=16": 0xa7e9587e0ea792a,
        "relu-linear-decay-sum chunked init=false size=64": 0x8cbb4932580217c8,
        "relu-linear-decay-sum recurrent init=false size=64": 0xd8780767338882f9,
        "relu-linear-decay-sum tiled init=false size=16": 0xc320981338de1d24,
        "relu-linear-decay-sum tiled init=false size=64": 0xa0af438668e77904,
        "relu-linear-decay-sum quadratic init=true size=64": 0x5a34275ed3d3f39c,
        "relu-linear-decay-sum chunked init=true size=16": 0x6dbc815946250480,
        "relu-linear-decay-sum chunked init=true size=64": 0xd339447bdafe9356,
        "relu-linear-decay-sum recurrent init=true size=64": 0x7fa84c7eff404334,
        "relu-linear-decay-sum tiled init=true size=16": 0x5670d31d06e8d794,
        "relu-linear-decay-sum tiled init=true size=64": 0x938534e130bc52be,
        "squared-nodecay-none quadratic init=false size=64": 0x6cf215ded5e96a6c,
        "squared-nodecay-none chunked init=false size=16": 0xb2426bf398f4f23b,
        "squared-nodecay-none chunked init=false size=64": 0x6e69187fdcec25ab,
        "squared-nodecay-none recurrent init=false size=64": 0x77ce9c88613d0196,
        "squared-nodecay-none tiled init=false size=16": 0x52ca86f399e37b43,
        "squared-nodecay-none tiled init=false size=64": 0xc93ec7221753d700,
        "squared-nodecay-none quadratic init=true size=64": 0xc3093ed576e8288,
        "squared-nodecay-none chunked init=true size=16": 0x696461091710e8c9,
        "squared-nodecay-none chunked init=true size=64": 0xafc8457894672a41,
        "squared-nodecay-none recurrent init=true size=64": 0xc9638b29445e242d,
        "squared-nodecay-none tiled init=true size=16": 0x69dc8c1d401d76dc,
        "squared-nodecay-none tiled init=true size=64": 0xa3bee6e86a9bacc9,
        "squared-nodecay-sum quadratic init=false size=64": 0x49d56ec3569eed8,
        "squared-nodecay-sum chunked init=false size=16": 0xff2b0ab0195c2b50,
        "squared-nodecay-sum chunked init=false size=64": 0x1b6d0363049f7a39,
        "squared-nodecay-sum recurrent init=false size=64": 0x238732afcc032eb2,
        "squared-nodecay-sum tiled init=false size=16": 0x8a57d0fea47bc102,
        "squared-nodecay-sum tiled init=false size=64": 0x4fca4cd6466ecf51,
        "squared-nodecay-sum quadratic init=true size=64": 0x3be6bd7fa883828c,
        "squared-nodecay-sum chunked init=true size=16": 0x97b8cea36b0093dd,
        "squared-nodecay-sum chunked init=true size=64": 0x825a408cbbada116,
        "squared-nodecay-sum recurrent init=true size=64": 0x198b04cd4325b626,
        "squared-nodecay-sum tiled init=true size=16": 0x7b76b5fe8954e62b,
        "squared-nodecay-sum tiled init=true size=64": 0x54c58db4e308deb9,
        "squared-decay-none quadratic init=false size=64": 0x52bc1f3188876cee,
        "squared-decay-none chunked init=false size=16": 0xe85012ae4635bc42,
        "squared-decay-none chunked init=false size=64": 0x5ce08f6a2df39a24,
        "squared-decay-none recurrent init=false size=64": 0x5a3f31ba1d8aeaae,
        "squared-decay-none tiled init=false size=16": 0x5f59b27dacd8c05f,
        "squared-decay-none tiled init=false size=64": 0x42ad41b0932b9c00,
        "squared-decay-none quadratic init=true size=64": 0x747181401d09bebc,
        "squared-decay-none chunked init=true size=16": 0x7efceaeeedaf351,
        "squared-decay-none chunked init=true size=64": 0xb1452b563672ddba,
        "squared-decay-none recurrent init=true size=64": 0x3d44c9014a0639d1,
        "squared-decay-none tiled init=true size=16": 0xf96799fe94058fb1,
        "squared-decay-none tiled init=true size=64": 0xe218908fa4263174,
        "squared-decay-sum quadratic init=false size=64": 0x630e8a6c149f1454,
        "squared-decay-sum chunked init=false size=16": 0xd5e53465081a61ae,
        "squared-decay-sum chunked init=false size=64": 0x9ed7361da6f1e34f,
        "squared-decay-sum recurrent init=false size=64": 0xf5468092378ad098,
        "squared-decay-sum tiled init=false size=16": 0x883d03cf2e1fa82,
        "squared-decay-sum tiled init=false size=64": 0xaf2453a6e42757b8,
        "squared-decay-sum quadratic init=true size=64": 0x33e0d71523315fbb,
        "squared-decay-sum chunked init=true size=16": 0x67e3926fd6877fb2,
        "squared-decay-sum chunked init=true size=64": 0x909b6938c3f6dab3,
        "squared-decay-sum recurrent init=true size=64": 0x1f9bf5a9515c80f5,
        "squared-decay-sum tiled init=true size=16": 0x874ac292d2b13426,
        "squared-decay-sum tiled init=true size=64": 0xb3c9487e60bf75a4,
        "exponential-nodecay-none quadratic init=false size=64": 0xfaea437e56f5f93e,
        "exponential-nodecay-none chunked init=false size=16": 0xcd0d3a3d777ecc4c,
        "exponential-nodecay-none chunked init=false size=64": 0xf32e242170018b85,
        "exponential-nodecay-none recurrent init=false size=64": 0xb55e7f8fc54f6e3a,
        "exponential-nodecay-none tiled init=false size=16": 0x13d92e0d7a8dae81,
        "exponential-nodecay-none tiled init=false size=64": 0xb55e7f8fc54f6e3a,
        "exponential-nodecay-sum quadratic init=false size=64": 0xcc69c06f855944ff,
        "exponential-nodecay-sum chunked init=false size=16": 0x8d46d3a5cc78a691,
        "exponential-nodecay-sum chunked init=false size=64": 0x5d4585aa0d0ddba3,
        "exponential-nodecay-sum recurrent init=false size=64": 0xe3c0cca38bb3f784,
        "exponential-nodecay-sum tiled init=false size=16": 0xdddb50fbef521f26,
        "exponential-nodecay-sum tiled init=false size=64": 0xe3c0cca38bb3f784,
        "exponential-decay-none quadratic init=false size=64": 0xaaa09af6299a37c,
        "exponential-decay-none chunked init=false size=16": 0x85e466ebd6467581,
        "exponential-decay-none chunked init=false size=64": 0x2ce4124727a96f78,
        "exponential-decay-none recurrent init=false size=64": 0xd263130b90bcee5b,
        "exponential-decay-none tiled init=false size=16": 0x6cca5b2c985f74b3,
        "exponential-decay-none tiled init=false size=64": 0xd9fcd3b28eef06df,
        "exponential-decay-sum quadratic init=false size=64": 0x144940d675de8992,
        "exponential-decay-sum chunked init=false size=16": 0x79eda18dc7c0b298,
        "exponential-decay-sum chunked init=false size=64": 0x53889dd0684338d3,
        "exponential-decay-sum recurrent init=false size=64": 0x13a5c4d412240bfe,
        "exponential-decay-sum tiled init=false size=16": 0x4c7c3e5421928b99,
        "exponential-decay-sum tiled init=false size=64": 0xea3a1ce20475c635,
        "bench 2mamba N=1024 dk=64 chunked": 0xe0a76cbffcb816a,
        "bench 2mamba N=200 dk=32 quadratic": 0xd8b675950128b313,
        "bench 2mamba N=200 dk=32 chunked": 0xaab1b27c3fe1e103,
        "bench 2mamba N=200 dk=32 recurrent": 0xdeb6ee8bbfe889c6,
        "bench 2mamba N=200 dk=32 tiled": 0xf1e3958ac1ca0e24,
        "backward linear-nodecay-none quadratic": 0xbb1d4ff8f70bf66f,
        "backward linear-nodecay-none chunked": 0xcd5f7cacea2981fd,
        "backward linear-nodecay-none recurrent": 0xc5b6f9680b6de453,
        "backward linear-nodecay-none tiled": 0xdcd9905585a900d4,
        "backward linear-decay-none quadratic": 0x4328fe93e8ed7733,
        "backward linear-decay-none chunked": 0x60bcbf9389725e50,
        "backward linear-decay-none recurrent": 0x8ac063d43812d2ca,
        "backward linear-decay-none tiled": 0xb1960aca46217776,
        "backward relu-linear-nodecay-none quadratic": 0xb6026cac698cb3b1,
        "backward relu-linear-nodecay-none chunked": 0xeefeed4095643688,
        "backward relu-linear-nodecay-none recurrent": 0x145f25915831c11f,
        "backward relu-linear-nodecay-none tiled": 0xf29f3b1fd31fea0b,
        "backward relu-linear-nodecay-sum quadratic": 0x1053ab9b9154a0be,
        "backward relu-linear-nodecay-sum chunked": 0xcc91644a9f09275b,
        "backward relu-linear-nodecay-sum recurrent": 0xa3a9bd0c97fc367,
        "backward relu-linear-nodecay-sum tiled": 0x83e699606cad6a3f,
        "backward relu-linear-decay-none quadratic": 0xd480d5405bcefa96,
        "backward relu-linear-decay-none chunked": 0xd77ea0507a3c3dc5,
        "backward relu-linear-decay-none recurrent": 0x76f6d7efefa61d4f,
        "backward relu-linear-decay-none tiled": 0xd3864c8d49f6c569,
        "backward relu-linear-decay-sum quadratic": 0xb40e5c6fd2016dfe,
        "backward relu-linear-decay-sum chunked": 0x7ca491dfa5bee1ac,
        "backward relu-linear-decay-sum recurrent": 0x27ff67864bc6beda,
        "backward relu-linear-decay-sum tiled": 0x227d60a4b7a47f48,
        "backward squared-nodecay-none quadratic": 0xbf08e778172301e3,
        "backward squared-nodecay-none chunked": 0x9f42f5c23c59f80a,
        "backward squared-nodecay-none recurrent": 0xbfe044cb0eba96c4,
        "backward squared-nodecay-none tiled": 0x8cc200b5394ad0f1,
        "backward squared-nodecay-sum quadratic": 0x1c7e6e51c1458598,
        "backward squared-nodecay-sum chunked": 0xdf5f686ba4c2e1f2,
        "backward squared-nodecay-sum recurrent": 0x9951b1c9fe1f4e8a,
        "backward squared-nodecay-sum tiled": 0x4bf31237e1a33c70,
        "backward squared-decay-none quadratic": 0xd53c3dccc7fc4c0e,
        "backward squared-decay-none chunked": 0xa2d88e5443773f5,
        "backward squared-decay-none recurrent": 0xafde788d0fe02227,
        "backward squared-decay-none tiled": 0x422a39f62bd771b1,
        "backward squared-decay-sum quadratic": 0x837096d8550cf8d9,
        "backward squared-decay-sum chunked": 0xd6bbb9aa67a654bc,
        "backward squared-decay-sum recurrent": 0x42fdfcadb13a9dab,
        "backward squared-decay-sum tiled": 0xf686c1acf767ad37,
    ]
}
