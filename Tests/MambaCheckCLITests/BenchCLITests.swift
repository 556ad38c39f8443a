import Foundation
import Testing

/// `bench`: the BLAS core line and a JSON of numbers.
@Suite("bench")
struct BenchCLITests {
    @Test func jsonHasNumbersAndTheCoreIsPrinted() throws {
        let dir = try CLI.temporaryDirectory("bench")
        let json = dir.appendingPathComponent("bench.json")
        let r = try CLI.run(["bench", "--variant", "2mamba", "--form", "chunked", "--mode", "float16", "--length", "96",
                             "--head-dim", "8", "--chunk-size", "32", "--runs", "1", "--json", json.path])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.hasPrefix("BLAS: OpenBLAS core "), "\(r)")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
        let o = try #require(object)
        for key in ["length", "headDim", "heads", "threads", "seconds", "cpuSeconds", "gflops", "sgemmGflops",
                    "fractionOfSgemm", "tokensPerSecond", "stateElements"] {
            let v = o[key]
            #expect(v is NSNumber && !(v is String), "\(key): \(String(describing: v))")
        }
        #expect((o["length"] as? NSNumber)?.intValue == 96)
        #expect((o["stateElements"] as? NSNumber)?.intValue == 36 * 9) // packed features 8·9/2 × (dv + 1)
        for key in ["variant", "core", "form", "mode", "blasCore", "blasCoreDetected", "blasCoreChoice"] {
            #expect(o[key] is String, "\(key)")
        }
    }
}
