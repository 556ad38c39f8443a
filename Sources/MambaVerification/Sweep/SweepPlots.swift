import Foundation
import MambaKernels
import MambaVariants
import MambaTensors

extension SweepReport {
    /// The sweep's charts as (file name, SVG text):
    /// - `error-vs-length.svg`, `ulp-vs-length.svg`: one polyline per
    ///   form/mode (colour = mode, dash = form);
    /// - `error-vs-precision.svg`, `ulp-vs-precision.svg`: one polyline per
    ///   length, plus the unit roundoff `2^−p` for orientation (drawn over the data).
    /// `curves` (a user's kernels) are added to the vs-length charts, in black
    /// with their own markers, named "yours: NAME".
    /// Charts without data (e.g. in a shard that ran no precision job) are left out.
    public func plots(curves: [SweepCurve] = []) -> [(name: String, svg: String)] {
        var out: [(String, String)] = []
        let kernel = points.filter { $0.kind == .kernel }
        if !kernel.isEmpty || !curves.isEmpty {
            let modes = PrecisionMode.allCases.map(\.rawValue).filter { m in kernel.contains { $0.mode == m } }
            let forms = KernelForm.allCases.map(\.rawValue).filter { f in kernel.contains { $0.form == f } }
            // Colour = mode; dash and marker = form (6 × 5 distinct looks), so no two series look alike.
            func series(_ metric: (SweepPoint) -> Double, _ user: (SweepCurve.Point) -> Double?) -> [SVGLogLogPlot.Series] {
                let ours = modes.enumerated().flatMap { mi, mode in
                    forms.enumerated().compactMap { fi, form -> SVGLogLogPlot.Series? in
                        let pts = kernel.filter { $0.mode == mode && $0.form == form }.map { (x: Double($0.length), y: metric($0)) }
                        if pts.isEmpty { return nil }
                        return .init(name: "\(form) / \(mode)", color: SVGLogLogPlot.palette[mi % SVGLogLogPlot.palette.count],
                                     dash: SVGLogLogPlot.dashes[fi % SVGLogLogPlot.dashes.count],
                                     marker: SVGLogLogPlot.Marker.allCases[fi % SVGLogLogPlot.Marker.allCases.count], points: pts)
                    }
                }
                let yours = curves.enumerated().compactMap { i, c -> SVGLogLogPlot.Series? in
                    let pts = c.points.compactMap { p in user(p).map { (x: Double(p.length), y: $0) } }
                    if pts.isEmpty { return nil }
                    let markers: [SVGLogLogPlot.Marker] = [.diamond, .square, .triangle, .cross, .circle]
                    return .init(name: "yours: \(c.name)", color: "#000000",
                                 dash: SVGLogLogPlot.dashes[(i / markers.count) % SVGLogLogPlot.dashes.count],
                                 marker: markers[i % markers.count], points: pts)
                }
                return ours + yours
            }
            let what = "\(variant) (\(core)), dk = dv = \(headDim), vs \(oraclePrecision)-bit oracle"
            out.append(("error-vs-length.svg", SVGLogLogPlot(
                title: "Normwise relative error — \(what)", xLabel: "sequence length N",
                yLabel: "‖ŷ − y‖₂ / ‖y‖₂", series: series(\.normwiseRelativeError, { $0.normwise })).render()))
            out.append(("ulp-vs-length.svg", SVGLogLogPlot(
                title: "Max error in binary32 ULPs — \(what)", xLabel: "sequence length N",
                yLabel: "max |ŷ − y| / ulp₃₂(y)", series: series(\.maxULP32, { $0.ulp })).render()))
        }
        let precision = points.filter { $0.kind == .precision }
        if !precision.isEmpty {
            let lengths = Set(precision.map(\.length)).sorted()
            let bits = Set(precision.compactMap(\.precision)).sorted()
            func series(_ metric: (SweepPoint) -> Double, unitName: String,
                        unit: (Int) -> Double) -> [SVGLogLogPlot.Series] {
                // The reference line is listed first and drawn last, over the data.
                [SVGLogLogPlot.Series(name: unitName, color: "#888888", dash: "3,3", isReference: true,
                                      points: bits.map { (x: Double($0), y: unit($0)) })]
                    + lengths.enumerated().map { i, n in
                        let style = SVGLogLogPlot.style(i)
                        return SVGLogLogPlot.Series(
                            name: "N = \(n)", color: style.color, dash: style.dash, marker: style.marker,
                            points: precision.filter { $0.length == n }.map { (x: Double($0.precision ?? 0), y: metric($0)) })
                    }
            }
            let what = "oracle at p vs \(oraclePrecision) bits, \(variant), dk = dv = \(headDim)"
            out.append(("error-vs-precision.svg", SVGLogLogPlot(
                title: "Normwise relative error — \(what)", xLabel: "working precision p (bits)",
                yLabel: "‖ŷ − y‖₂ / ‖y‖₂", series: series(\.normwiseRelativeError, unitName: "unit roundoff 2^-p") { pow(2, -Double($0)) }).render()))
            out.append(("ulp-vs-precision.svg", SVGLogLogPlot(
                title: "Max error in binary32 ULPs — \(what)", xLabel: "working precision p (bits)",
                yLabel: "max |ŷ − y| / ulp₃₂(y)", series: series(\.maxULP32, unitName: "2^(24-p): relative error 2^-p in binary32 ULPs (at most)") { pow(2, 24 - Double($0)) }).render()))
        }
        return out
    }

    /// Writes `plots()` and `tables.txt` into `directory` (created if
    /// needed), each file atomically. Returns the paths written.
    @discardableResult
    public func writePlots(to directory: String, curves: [SweepCurve] = []) throws -> [String] {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var written: [String] = []
        for (name, svg) in plots(curves: curves) {
            let path = directory + "/" + name
            try AtomicFile.write(Data(svg.utf8), to: path)
            written.append(path)
        }
        let tablePath = directory + "/tables.txt"
        try AtomicFile.write(Data(tables().utf8), to: tablePath)
        written.append(tablePath)
        return written
    }
}
