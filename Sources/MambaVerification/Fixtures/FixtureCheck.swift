import Foundation
import MambaKernels
import MambaPrecision
import MambaTensors
import MambaVariants

/// The outcome of `FixtureSet.check`: every problem found, per file and per case.
public struct FixtureCheckReport: Sendable {
    public struct CaseResult: Sendable {
        public var name: String
        /// Reference elements compared (Float64 and decimal).
        public var elementCount: Int
        /// Empty when the case reproduces exactly.
        public var problems: [String]
        public var passed: Bool { problems.isEmpty }
    }

    /// Files missing or whose size or SHA-256 differs from the manifest.
    public var fileProblems: [String]
    public var cases: [CaseResult]
    public var passed: Bool { fileProblems.isEmpty && cases.allSatisfy(\.passed) }
    /// Every problem, one line each.
    public var problems: [String] { fileProblems + cases.flatMap { c in c.problems.map { "\(c.name): \($0)" } } }
}

extension FixtureSet {
    /// Verifies a set: every file's size and SHA-256 against the manifest,
    /// and every case's reference outputs recomputed from its stored inputs
    /// with the oracle at the manifest's precision — the Float64 arrays must
    /// match bit for bit, the decimal listing line for line.
    ///
    /// Problems with the data (a changed byte, a missing file, an unreadable
    /// archive, a value that does not reproduce) are collected in the report,
    /// not thrown.
    ///
    /// - Throws: `FixtureError.unreadableManifest` when `manifest.json` is
    ///   missing or not a manifest.
    public static func check(directory: String,
                             progress: ((Int, Int, String) -> Void)? = nil) throws -> FixtureCheckReport {
        let manifestPath = directory + "/" + FixtureManifest.fileName
        let manifest: FixtureManifest
        do {
            manifest = try FixtureManifest(jsonData: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
        } catch {
            throw FixtureError.unreadableManifest(path: manifestPath, reason: "\(error)")
        }
        guard manifest.schema == FixtureManifest.currentSchema else {
            throw FixtureError.unreadableManifest(path: manifestPath,
                                                  reason: "schema \(manifest.schema), this tool reads \(FixtureManifest.currentSchema)")
        }
        var fileProblems: [String] = []
        for file in manifest.files {
            guard let data = FileManager.default.contents(atPath: directory + "/" + file.name) else {
                fileProblems.append("\(file.name): missing")
                continue
            }
            if data.count != file.bytes {
                fileProblems.append("\(file.name): \(data.count) bytes, manifest says \(file.bytes)")
            }
            let digest = SHA256.hexDigest(data)
            if digest != file.sha256 {
                fileProblems.append("\(file.name): SHA-256 \(digest) does not match the manifest's \(file.sha256)")
            }
        }
        let listed = Set(manifest.files.map(\.name))
        for c in manifest.cases {
            for name in [c.inputs.file, c.reference.file, c.decimal] where !listed.contains(name) {
                fileProblems.append("\(name): used by case \(c.name) but has no SHA-256 in the manifest")
            }
        }
        var results: [FixtureCheckReport.CaseResult] = []
        for (i, c) in manifest.cases.enumerated() {
            results.append(checkCase(c, manifest: manifest, directory: directory))
            progress?(i + 1, manifest.cases.count, c.name)
        }
        return FixtureCheckReport(fileProblems: fileProblems, cases: results)
    }

    static func checkCase(_ c: FixtureCase, manifest: FixtureManifest, directory: String) -> FixtureCheckReport.CaseResult {
        var problems: [String] = []
        var count = 0
        do {
            let inputPath = directory + "/" + c.inputs.file
            let arrays = try TensorFile.read(inputPath)
            problems += declared(c.inputs, arrays)
            let entries: [DecimalListing.Entry]
            switch c.kind {
            case .core:
                guard let spec = CoreSpec(name: c.core) else { throw FixtureError.unknownVariant(c.core) }
                let problem = try KernelDump.coreProblem(arrays, file: inputPath, spec: spec, layout: .bhnd, scale: c.scale)
                if let m = problem.validationError() { throw FixtureError.invalidCase(m) }
                entries = try coreReference(problem, precision: manifest.precision)
            case .block:
                entries = try blockReference(blockProblem(c, arrays, file: inputPath), precision: manifest.precision)
            }
            count = entries.reduce(0) { $0 + $1.values.count }
            // Float64 arrays, bit for bit.
            let stored = try TensorFile.read(directory + "/" + c.reference.file)
            problems += declared(c.reference, stored)
            for e in entries {
                guard let t = stored[e.name] else { problems.append("\(c.reference.file): no array '\(e.name)'"); continue }
                guard t.shape == e.shape, t.dtype == .float64 else {
                    problems.append("\(c.reference.file): '\(e.name)' is \(t.dtype) \(t.shape), expected float64 \(e.shape)")
                    continue
                }
                let values = try t.asFloat64().storage
                let bad = e.values.indices.filter { values[$0].bitPattern != e.values[$0].doubleValue.bitPattern }
                if let first = bad.first {
                    let index = TensorShape.index(ofOffset: first, in: e.shape)
                    problems.append("\(c.reference.file): \(bad.count) of \(values.count) values of '\(e.name)' differ "
                                    + "from the recomputed oracle, first at \(index): stored \(values[first]), "
                                    + "recomputed \(e.values[first].doubleValue)")
                }
            }
            // Decimal listing, line for line.
            let text = try String(contentsOfFile: directory + "/" + c.decimal, encoding: .utf8)
            let expected = DecimalListing.valueLines(DecimalListing.render(comments: [], entries: entries,
                                                                           digits: manifest.decimalDigits))
            let found = DecimalListing.valueLines(text)
            if found.count != expected.count {
                problems.append("\(c.decimal): \(found.count) value lines, expected \(expected.count)")
            }
            let differing = zip(found, expected).enumerated().filter { $0.element.0 != $0.element.1 }
            if let (line, (f, e)) = differing.first {
                problems.append("\(c.decimal): \(differing.count) value line(s) differ from the recomputed oracle, "
                                + "first: '\(f)' instead of '\(e)'" + relativeDifference(f, e, precision: manifest.precision))
                _ = line
            }
        } catch {
            problems.append("\(error)")
        }
        return .init(name: c.name, elementCount: count, problems: problems)
    }

    /// Arrays missing from a file, or with another dtype or shape than declared.
    static func declared(_ a: FixtureArrays, _ arrays: [String: TensorData]) -> [String] {
        a.arrays.keys.sorted().compactMap { name in
            let d = a.arrays[name]!
            guard let t = arrays[name] else { return "\(a.file): declared array '\(name)' is missing" }
            if t.dtype.rawValue != d.dtype || t.shape != d.shape {
                return "\(a.file): '\(name)' is \(t.dtype) \(t.shape), the manifest says \(d.dtype) \(d.shape)"
            }
            return nil
        }
    }

    /// " (relative difference …)" between two listing lines' values, or "".
    static func relativeDifference(_ a: Substring, _ b: Substring, precision: Int) -> String {
        func value(_ s: Substring) -> BigFloat? {
            guard let r = s.range(of: " = ") else { return nil }
            return BigFloat(String(s[r.upperBound...]), precision: precision)
        }
        guard let x = value(a), let y = value(b), x.isFinite, y.isFinite, !y.isZero else { return "" }
        let d = ((x - y) / y).doubleValue.magnitude
        return " (relative difference \(String(format: "%.3g", d)))"
    }

    /// The block problem of a case: parameters the preset uses come from the
    /// file; the others are NaN, so a reference that read one would show it.
    static func blockProblem(_ c: FixtureCase, _ arrays: [String: TensorData], file: String) throws -> BlockProblem {
        guard let preset = VariantSpec(named: c.variant) else { throw FixtureError.unknownVariant(c.variant) }
        func dim(_ k: String) throws -> Int {
            guard let v = c.dimensions[k], v > 0 else { throw FixtureError.invalidCase("dimension \(k) missing") }
            return v
        }
        let (b, n, d, h, dh) = (try dim("B"), try dim("N"), try dim("d"), try dim("H"), try dim("dh"))
        func load(_ name: String, _ shape: [Int]) throws -> [Double] {
            guard let t = arrays[name] else {
                throw DumpError.missingArray(file: file, names: [name], purpose: "block input \(shape)")
            }
            guard t.shape == shape else {
                throw DumpError.wrongShape(file: file, array: name, expected: "\(shape)", found: t.shape)
            }
            return try t.asFloat64().storage
        }
        var params = BlockParameters.initialised(variant: preset, modelDim: d, heads: h, headDim: dh, seed: c.seed)
        for p in blockParameters {
            if p.used(preset) {
                params[keyPath: p.keyPath] = try load(p.name, p.shape(d, h, dh, preset.convWindow))
            } else {
                params[keyPath: p.keyPath] = params[keyPath: p.keyPath].map { _ in .nan }
            }
        }
        return BlockProblem(variant: preset, batch: b, length: n, x: try load("x", [b, n, d]), parameters: params)
    }
}

/// Why a fixture set could not be checked at all.
public enum FixtureError: Error, CustomStringConvertible, Equatable {
    case unreadableManifest(path: String, reason: String)
    case unknownVariant(String)
    case invalidCase(String)

    public var description: String {
        switch self {
        case let .unreadableManifest(path, reason): return "\(path): cannot read the fixture manifest: \(reason)"
        case .unknownVariant(let v): return "unknown variant '\(v)' in the manifest"
        case .invalidCase(let m): return "invalid case: \(m)"
        }
    }
}
