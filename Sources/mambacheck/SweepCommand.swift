import ArgumentParser
import Foundation
import MambaVerification

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Error against the oracle as N grows (every form × mode) and as working precision goes from 8 to 64 bits.",
        discussion: """
            Kernel points: MambaCheck's kernels (every form × precision mode) on \
            one seeded problem per length, against the 128-bit MPFR oracle of \
            the same (rounded) inputs. Precision points: the MPFR oracle itself \
            with every operation at p bits, against 128 bits (it should fall \
            like 2^-p and stay flat in N).

            Metrics: normwise relative error ‖ŷ − y‖₂/‖y‖₂ and the maximum \
            error in binary32 ULPs (dominated by outputs near zero). \
            Prints tables; writes SVG log–log plots and tables.txt to --out \
            (default sweep-<variant>). Shards (--shard k/n) write partial JSON \
            reports; `mambacheck merge` combines them (--plots DIR).

            Examples:
              mambacheck sweep --variant 2mamba
              mambacheck sweep --variant linear-decay-none \\
                  --lengths 64,256,1024,4096 --precisions 8,16,24,53 --json sweep.json
              mambacheck sweep --variant 2mamba --shard 2/3 --json part2.json
              mambacheck merge sweep.json part1.json part2.json part3.json --plots sweep-2mamba
              mambacheck sweep --variant 2mamba --curve 'my kernel=my-errors.csv'

            --curve NAME=FILE draws your own kernel's errors next to ours in the vs-length plots: FILE is a CSV \
            of N,normwise[,max_ulp32] lines (an optional header; # comments), e.g. measured with \
            `mambacheck compare --json` at each length.
            """)

    @Option(help: "Preset or core name (see `mambacheck variants`).") var variant: String
    @Option(help: "Comma-separated sequence lengths.") var lengths: IntList = IntList([64, 256, 1024])
    @Option(help: "Comma-separated MPFR working precisions (bits, 2…4096).")
    var precisions: IntList = IntList([8, 11, 16, 24, 32, 53, 64])
    @Option(help: "Head width dk = dv.") var headDim: Int = 32
    @Option(help: "Chunk (and tile) size of the chunked (tiled) form.") var chunkSize: Int = 64
    @Option(help: "Seed of the inputs.") var seed: UInt64 = 20_260_217
    @Option(help: "Directory for the SVG plots and tables.txt (default sweep-<variant>).") var out: String?
    @Option(help: "Run only shard k of n (k/n, 1-based).") var shard: Shard?
    @Option(help: "Write the sweep as JSON here.") var json: String?
    @Option(help: "Your kernel's curve, NAME=FILE (CSV of N,normwise[,max_ulp32]); repeatable.") var curve: [String] = []

    func validate() throws {
        guard !lengths.values.isEmpty, lengths.values.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
            throw ValidationError("--lengths must be positive integers (≤ 1048576)")
        }
        guard precisions.values.allSatisfy({ (2...4096).contains($0) }) else {
            throw ValidationError("--precisions must lie in 2…4096 bits")
        }
        guard (1...1024).contains(headDim) else { throw ValidationError("--head-dim must be in 1…1024") }
        guard chunkSize >= 1 else { throw ValidationError("--chunk-size must be ≥ 1") }
    }

    func run() throws {
        try OutputPaths.check([("--json", json)])
        let curves: [SweepCurve]
        do { curves = try curve.map(SweepCurve.read(argument:)) } catch let e as SweepCurveError {
            throw InputProblem(description: "--curve \(e)")
        }
        let (core, _) = try resolveCore(variant)
        var settings = SweepSettings(variant: variant, core: core)
        settings.lengths = lengths.values
        settings.precisions = precisions.values
        settings.headDim = headDim
        settings.chunkSize = chunkSize
        settings.seed = seed
        var jobs = Sweep.jobs(settings)
        if let shard { jobs = shard.select(jobs) }
        let progress = ProgressBar(label: "sweep")
        let points = try Sweep.run(jobs, settings: settings) { progress.update($0, of: $1, item: $2) }
        progress.finish()
        var command = "mambacheck sweep --variant \(variant) --lengths \(lengths) --precisions \(precisions) --head-dim \(headDim)"
        if let shard { command += " --shard \(shard)" }
        let report = SweepReport(toolVersion: MambaCheckVersion.string, command: command, settings: settings,
                                 points: points)
        print(report.tables(), terminator: "")
        let directory = out ?? "sweep-\(variant)"
        let written = try report.writePlots(to: directory, curves: curves)
        print("wrote " + written.joined(separator: ", "))
        if let json {
            try AtomicFileWriter.write(report.jsonData(), to: json)
            print("wrote \(json)")
        }
    }
}

/// A comma-separated list of integers, e.g. `64,256,1024`.
struct IntList: ExpressibleByArgument, CustomStringConvertible {
    var values: [Int]
    init(_ values: [Int]) { self.values = values }
    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        var v: [Int] = []
        for p in parts {
            guard let x = Int(p.trimmingCharacters(in: .whitespaces)) else { return nil }
            v.append(x)
        }
        guard !v.isEmpty else { return nil }
        values = v
    }
    var description: String { values.map(String.init).joined(separator: ",") }
    var defaultValueDescription: String { description }
}
