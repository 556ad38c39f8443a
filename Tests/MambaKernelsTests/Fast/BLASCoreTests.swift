import CBLASCore
import Foundation
import MambaKernels
import Testing

/// The OpenBLAS kernel family choice (`BLASCore`, `CBLASCore`).
@Suite("OpenBLAS core chosen from CPUID")
struct BLASCoreTests {
    /// The rule: upgrade only from a family below what the features allow;
    /// never from a family it does not know; AMD gets Zen for AVX2.
    @Test func ruleTable() {
        let avx2 = (avx2: true, avx512: false, bf16: false)
        let avx512 = (avx2: true, avx512: true, bf16: false)
        let bf16 = (avx2: true, avx512: true, bf16: true)
        func better(_ name: String, _ f: (avx2: Bool, avx512: Bool, bf16: Bool), amd: Bool = false) -> String? {
            BLASCore.better(than: name, avx2: f.avx2, avx512: f.avx512, avx512BF16: f.bf16, amd: amd)
        }
        #expect(better("Prescott", avx2) == "Haswell")
        #expect(better("Prescott", avx2, amd: true) == "Zen")
        #expect(better("Sandybridge", avx2) == "Haswell")
        #expect(better("Prescott", avx512) == "SkylakeX")
        #expect(better("Prescott", bf16) == "Cooperlake")
        #expect(better("Haswell", avx512) == "SkylakeX")
        #expect(better("Zen", bf16, amd: true) == "Cooperlake") // Zen 4/5 on an OpenBLAS that calls it Zen
        #expect(better("Haswell", avx2) == nil)
        #expect(better("Zen", avx2, amd: true) == nil)
        #expect(better("SkylakeX", avx512) == nil)
        #expect(better("Cooperlake", bf16) == nil)
        #expect(better("SapphireRapids", bf16) == nil)
        #expect(better("Prescott", (false, false, false)) == nil)  // an SSE3-only CPU: Prescott is right
        #expect(better("NewCore2030", bf16) == nil)                // unknown to the table: left alone
    }

    /// In this process (the test runner links MambaKernels) the constructor
    /// has run: unless the user chose a core, none better is available for
    /// this CPU; and an exact small-integer product is right with the kernels in use.
    @Test func choiceInEffectInThisProcess() {
        let env = ProcessInfo.processInfo.environment
        let cpu = BLASCore.cpu
        if env["OPENBLAS_CORETYPE"].map({ !$0.isEmpty }) == true {
            #expect(BLASCore.action == .user)
        } else if let keep = env["MAMBACHECK_KEEP_OPENBLAS_CORE"], !keep.isEmpty, keep != "0" {
            #expect(BLASCore.action == .kept)
        } else if BLASCore.action != .unavailable {
            let better = BLASCore.better(than: BLASCore.inUse, avx2: cpu.avx2, avx512: cpu.avx512,
                                         avx512BF16: cpu.avx512BF16, amd: cpu.amd)
            #expect(better == nil, "in use \(BLASCore.inUse), detected \(BLASCore.detected), action \(BLASCore.action)")
        }
        #expect(!BLASCore.inUse.isEmpty)
        #expect(BLASCore.summary().hasPrefix("BLAS: OpenBLAS core \(BLASCore.inUse) ("))
    }
}
