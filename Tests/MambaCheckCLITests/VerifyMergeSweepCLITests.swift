import Foundation
import MambaVerification
import Testing

/// `verify --shard`, `merge` and `sweep` end to end.
@Suite("verify shards, merge, sweep")
struct VerifyMergeSweepCLITests {
    /// Same inputs and seed → byte-identical reports (durations are zeroed
    /// unless `--timings` is given).
    @Test func reportsAreReproducibleByteForByte() throws {
        let dir = try CLI.temporaryDirectory("determinism")
        defer { try? FileManager.default.removeItem(at: dir) }
        var outputs: [Data] = []
        for i in 0..<2 {
            let json = dir.appendingPathComponent("r\(i).json"), junit = dir.appendingPathComponent("r\(i).xml")
            let r = try CLI.run(["verify", "--quick", "--shard", "5/40", "--json", json.path, "--junit", junit.path])
            #expect(r.status == 0, "\(r)")
            outputs.append(try Data(contentsOf: json) + Data(contentsOf: junit))
        }
        #expect(outputs[0] == outputs[1], "two identical verify runs wrote different reports")
    }

    @Test func shardedVerifyAndMerge() throws {
        let dir = try CLI.temporaryDirectory("verify")
        defer { try? FileManager.default.removeItem(at: dir) }
        let s1 = dir.appendingPathComponent("s1.json"), s2 = dir.appendingPathComponent("s2.json")
        // The built-in kernels are correct, so every built-in case must pass
        // (exit 0, a passing report); both shards write reports, and merge combines them.
        let r1 = try CLI.run(["verify", "--quick", "--shard", "1/40", "--json", s1.path])
        let r2 = try CLI.run(["verify", "--quick", "--shard", "2/40", "--json", s2.path])
        let a = try VerificationReport(jsonData: Data(contentsOf: s1))
        let b = try VerificationReport(jsonData: Data(contentsOf: s2))
        #expect(r1.status == 0 && a.passed, "\(r1); failing: \(a.failedCases.map(\.name))")
        #expect(r2.status == 0 && b.passed, "\(r2); failing: \(b.failedCases.map(\.name))")
        #expect(!a.cases.isEmpty && !b.cases.isEmpty)
        #expect(a.command.contains("--shard 1/40") && b.command.contains("--shard 2/40"))
        #expect(Set(a.cases.map(\.name)).isDisjoint(with: Set(b.cases.map(\.name))))

        let all = dir.appendingPathComponent("all.json"), xml = dir.appendingPathComponent("all.xml")
        let md = dir.appendingPathComponent("all.md")
        let m = try CLI.run(["merge", all.path, s1.path, s2.path, "--junit", xml.path, "--markdown", md.path])
        let merged = try VerificationReport(jsonData: Data(contentsOf: all))
        #expect(m.status == 0 && merged.passed, "\(m)")
        #expect(merged.cases.count == a.cases.count + b.cases.count)
        // Compared as bytes: NaN fields (null in JSON) are not == to themselves.
        #expect(try merged.jsonData() == (try VerificationReport.merge([b, a])).jsonData())
        #expect(try String(contentsOf: xml, encoding: .utf8).contains("<testsuite"))
        #expect(FileManager.default.fileExists(atPath: md.path))

        // Two passing shards merge with exit 0 (verdicts forced to pass: this checks merge, not the kernels).
        var passA = a, passB = b
        for i in passA.cases.indices { passA.cases[i].verdict.passed = true }
        for i in passB.cases.indices { passB.cases[i].verdict.passed = true }
        let pa = dir.appendingPathComponent("pass-a.json"), pb = dir.appendingPathComponent("pass-b.json")
        try passA.jsonData().write(to: pa)
        try passB.jsonData().write(to: pb)
        let ok = try CLI.run(["merge", dir.appendingPathComponent("pass.json").path, pa.path, pb.path])
        #expect(ok.status == 0, "\(ok)")
        #expect(ok.stdout.contains("\(a.cases.count + b.cases.count) of \(a.cases.count + b.cases.count) cases passed"), "\(ok)")

        // The same shard twice: a duplicate case is a usage error.
        let dup = try CLI.run(["merge", dir.appendingPathComponent("dup.json").path, s1.path, s1.path])
        #expect(dup.status == 2, "\(dup)")
        #expect(dup.stderr.contains("more than once"), "\(dup)")

        // A shard with a failing case: the merge is written and exits 1.
        var failing = passB
        failing.cases[0].verdict.passed = false
        failing.cases[0].verdict.reason = "planted failure"
        let bad = dir.appendingPathComponent("bad.json")
        try failing.jsonData().write(to: bad)
        let out = dir.appendingPathComponent("merged-bad.json")
        let f = try CLI.run(["merge", out.path, pa.path, bad.path])
        #expect(f.status == 1, "\(f)")
        #expect(f.stderr.contains("planted failure"), "\(f)")
        #expect(try VerificationReport(jsonData: Data(contentsOf: out)).passed == false)

        // Not a report at all.
        let junk = dir.appendingPathComponent("junk.json")
        try Data("{\"hello\": 1}".utf8).write(to: junk)
        let j = try CLI.run(["merge", dir.appendingPathComponent("x.json").path, junk.path])
        #expect(j.status == 2, "\(j)")
        #expect(j.stderr.contains("junk.json"), "\(j)")
    }

    @Test func sweepWritesTablesPlotsAndJSONAndMergesShards() throws {
        let dir = try CLI.temporaryDirectory("sweep")
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = ["sweep", "--variant", "2mamba", "--lengths", "24,48", "--precisions", "8,24,53", "--head-dim", "8",
                    "--chunk-size", "16"]
        let out = dir.appendingPathComponent("plots"), json = dir.appendingPathComponent("sweep.json")
        let r = try CLI.run(args + ["--out", out.path, "--json", json.path])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("chunked/float16-acc32"), "\(r)")
        #expect(r.stdout.contains("N=48"), "\(r)")
        let report = try SweepReport(jsonData: Data(contentsOf: json))
        // 4 forms (sum-normalised core) × 5 modes × 2 lengths, 3 precisions × 2 lengths.
        #expect(report.points.filter { $0.kind == .kernel }.count == 40)
        #expect(report.points.filter { $0.kind == .precision }.count == 6)
        for p in report.points { #expect(p.normwiseRelativeError.isFinite && p.nonFiniteCount == 0, "\(p)") }
        // The oracle's error at p bits is about 2^-p: far below Float32 at 53 bits, far above it at 8.
        let p8 = report.points.first { $0.precision == 8 && $0.length == 48 }!
        let p53 = report.points.first { $0.precision == 53 && $0.length == 48 }!
        #expect(p8.normwiseRelativeError > 1e-4 && p8.normwiseRelativeError < 0.1, "\(p8)")
        #expect(p53.normwiseRelativeError < 1e-14, "\(p53)")
        let f32 = report.points.first { $0.form == "chunked" && $0.mode == "float32" && $0.length == 48 }!
        // (Max ULP is dominated by outputs near zero, whose own ulp is tiny: only the normwise error is bounded here.)
        #expect(f32.normwiseRelativeError < 1e-5 && f32.maxULP32 > 0, "\(f32)")
        for name in ["error-vs-length.svg", "ulp-vs-length.svg", "error-vs-precision.svg", "ulp-vs-precision.svg"] {
            let svg = try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8)
            #expect(svg.hasPrefix("<?xml") && svg.hasSuffix("</svg>\n"), "\(name)")
            #expect(svg.contains("<polyline"), "\(name)")
            #expect(svg.contains(">1e"), "\(name): decade tick labels")
            #expect(svg.contains("(log scale)"), "\(name)")
        }
        let lengthPlot = try String(contentsOf: out.appendingPathComponent("error-vs-length.svg"), encoding: .utf8)
        #expect(lengthPlot.contains("tiled / float16"), "legend entry per form/mode")
        // 20 series (4 forms × 5 modes), 20 distinct looks: each legend entry's line (colour, dash) and marker.
        let legend = lengthPlot.components(separatedBy: "\n").enumerated().filter { $0.element.hasPrefix("<line x1=\"660.0\"") }
        let lines = lengthPlot.components(separatedBy: "\n")
        let looks = legend.map { i, line in
            line.replacingOccurrences(of: #"y[12]="[0-9.]+""#, with: "", options: .regularExpression)
                + lines[i + 1].replacingOccurrences(of: #"[xy]="[0-9.]+"|c[xy]="[0-9.]+"|points="[^"]*"|d="[^"]*""#,
                                                    with: "", options: .regularExpression)
        }
        #expect(legend.count == 20 && Set(looks).count == 20, "\(looks)")
        // The unit-roundoff reference line is drawn after (over) every data line.
        let precisionPlot = try String(contentsOf: out.appendingPathComponent("error-vs-precision.svg"), encoding: .utf8)
        let polylines = precisionPlot.components(separatedBy: "\n").filter { $0.hasPrefix("<polyline") }
        #expect(polylines.last?.contains("<title>unit roundoff") == true && polylines.count == 3, "\(polylines)")
        #expect(lengthPlot.contains(">48</text>"), "x tick at a swept length")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("tables.txt").path))

        // Two shards merge into the unsharded sweep.
        var parts: [URL] = []
        for k in 1...2 {
            let part = dir.appendingPathComponent("part\(k).json")
            let s = try CLI.run(args + ["--shard", "\(k)/2", "--out", dir.appendingPathComponent("p\(k)").path,
                                        "--json", part.path])
            #expect(s.status == 0, "\(s)")
            parts.append(part)
        }
        let merged = dir.appendingPathComponent("merged.json")
        let m = try CLI.run(["merge", merged.path] + parts.map(\.path) + ["--plots", dir.appendingPathComponent("mp").path])
        #expect(m.status == 0, "\(m)")
        let combined = try SweepReport(jsonData: Data(contentsOf: merged))
        #expect(combined.points.count == report.points.count)
        #expect(zip(combined.points, report.points).allSatisfy {
            $0.series == $1.series && $0.length == $1.length && $0.normwiseRelativeError == $1.normwiseRelativeError
        })
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("mp/error-vs-precision.svg").path))
    }

    /// `--curve NAME=FILE`: a user's kernel drawn next to ours; a malformed file
    /// is an input error naming the file, the line and what was expected.
    @Test func sweepPlotsAUsersCurve() throws {
        let dir = try CLI.temporaryDirectory("sweep-curve")
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = dir.appendingPathComponent("mine.csv")
        try "N,normwise,max_ulp32\n# measured with compare --json\n24,3e-7,12\n48,4.5e-7,20\n".write(to: csv, atomically: true, encoding: .utf8)
        let args = ["sweep", "--variant", "2mamba", "--lengths", "24,48", "--precisions", "24", "--head-dim", "8",
                    "--chunk-size", "16"]
        let out = dir.appendingPathComponent("plots")
        let r = try CLI.run(args + ["--out", out.path, "--curve", "my kernel=\(csv.path)"])
        #expect(r.status == 0, "\(r)")
        for name in ["error-vs-length.svg", "ulp-vs-length.svg"] {
            let svg = try String(contentsOf: out.appendingPathComponent(name), encoding: .utf8)
            #expect(svg.contains("<title>yours: my kernel</title>") && svg.contains(">yours: my kernel</text>"), "\(name)")
        }
        let bad = dir.appendingPathComponent("bad.csv")
        try "24,3e-7\n48,nan\n".write(to: bad, atomically: true, encoding: .utf8)
        let b = try CLI.run(args + ["--out", out.path, "--curve", "x=\(bad.path)"])
        #expect(b.status == 2 && b.stderr.contains("\(bad.path):2: normwise must be a finite number ≥ 0, found 'nan'"), "\(b)")
        let missing = try CLI.run(args + ["--out", out.path, "--curve", "no-equals-sign"])
        #expect(missing.status == 2 && missing.stderr.contains("expected NAME=FILE"), "\(missing)")
    }

    @Test func sweepRejectsBadLists() throws {
        let r = try CLI.run(["sweep", "--variant", "2mamba", "--lengths", "64,abc"])
        #expect(r.status == 2, "\(r)")
        let p = try CLI.run(["sweep", "--variant", "2mamba", "--precisions", "1"])
        #expect(p.status == 2, "\(p)")
        let v = try CLI.run(["sweep", "--variant", "no-such-variant", "--lengths", "8"])
        #expect(v.status == 2, "\(v)")
        #expect(v.stderr.contains("no-such-variant"), "\(v)")
    }
}
