import Foundation

/// A minimal log–log line chart rendered as standalone SVG 1.1: both axes
/// logarithmic, x ticks at the data's x values (e.g. the lengths swept),
/// y ticks at powers of ten, light grid lines, one polyline with markers per
/// series, optional dashed reference lines, and a legend to the right.
///
/// Reference lines (`Series.isReference`, e.g. the unit roundoff) are drawn
/// after the data, so data never hides them, in grey without markers. Data
/// series differ in colour, dash pattern and marker shape: `style(_:)` gives
/// 8 × 6 × 5 = 240 distinct combinations, so 20 series never share a look.
///
/// Points with a non-positive or non-finite coordinate cannot be placed on a
/// log axis; they are dropped (and the series' legend entry says how many).
public struct SVGLogLogPlot: Sendable {
    /// The marker drawn at each point of a data series.
    public enum Marker: String, CaseIterable, Sendable {
        case circle, square, triangle, diamond, cross
    }

    public struct Series: Sendable {
        public var name: String
        public var color: String
        /// SVG `stroke-dasharray`, nil for a solid line.
        public var dash: String?
        public var marker: Marker
        /// A reference line (not data): drawn over the data, without markers.
        public var isReference: Bool
        public var points: [(x: Double, y: Double)]
        public init(name: String, color: String, dash: String? = nil, marker: Marker = .circle,
                    isReference: Bool = false, points: [(x: Double, y: Double)]) {
            self.name = name; self.color = color; self.dash = dash; self.marker = marker
            self.isReference = isReference; self.points = points
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    /// Eight colours that stay apart in print and for common colour blindness (Okabe–Ito).
    public static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
    /// Dash patterns to tell series of one colour apart.
    public static let dashes: [String?] = [nil, "6,3", "2,3", "8,3,2,3", "12,4", "4,2,1,2,1,2"]

    /// The `i`-th of `palette.count · dashes.count · Marker.allCases.count`
    /// distinct (colour, dash, marker) styles: colour varies fastest, then the
    /// marker, then the dash (so the first 8 are solid, in 8 colours).
    public static func style(_ i: Int) -> (color: String, dash: String?, marker: Marker) {
        let c = palette.count, m = Marker.allCases.count
        return (palette[i % c], dashes[(i / (c * m)) % dashes.count], Marker.allCases[(i / c) % m])
    }

    public func render() -> String {
        let width = 980.0, height = 560.0
        let left = 90.0, right = 640.0, top = 50.0, bottom = 480.0
        let usable = series.map { s in s.points.filter { $0.x > 0 && $0.y > 0 && $0.x.isFinite && $0.y.isFinite } }
        let xs = usable.flatMap { $0.map(\.x) }, ys = usable.flatMap { $0.map(\.y) }
        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(width / 2))" y="24" text-anchor="middle" font-size="16">\(escape(title))</text>

            """
        guard let xmin = xs.min(), let xmax = xs.max(), let ymin = ys.min(), let ymax = ys.max() else {
            svg += "<text x=\"\(f(width / 2))\" y=\"\(f(height / 2))\" text-anchor=\"middle\">no finite positive data</text>\n</svg>\n"
            return svg
        }
        // x: exact data range (padded 5% in log space); y: whole decades.
        let lx0 = log10(xmin), lx1 = log10(xmax)
        let padX = Swift.max((lx1 - lx0) * 0.05, 0.05)
        let (x0, x1) = (lx0 - padX, lx1 + padX)
        var y0 = floor(log10(ymin)), y1 = ceil(log10(ymax))
        if y1 <= y0 { y1 = y0 + 1 }
        if y1 - y0 < 2 { y0 -= 1 }
        func px(_ x: Double) -> Double { left + (log10(x) - x0) / (x1 - x0) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (log10(y) - y0) / (y1 - y0) * (bottom - top) }
        // grid and ticks
        let decadeStep = Swift.max(1, Int((y1 - y0) / 12) + 1)
        var e = Int(y0)
        while Double(e) <= y1 {
            let y = py(pow(10, Double(e)))
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#ddd\"/>\n"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">1e\(e)</text>\n"
            e += decadeStep
        }
        for x in Set(xs).sorted() {
            let p = px(x)
            svg += "<line x1=\"\(f(p))\" y1=\"\(f(top))\" x2=\"\(f(p))\" y2=\"\(f(bottom))\" stroke=\"#ddd\"/>\n"
            svg += "<text x=\"\(f(p))\" y=\"\(f(bottom + 18))\" text-anchor=\"middle\">\(tickLabel(x))</text>\n"
        }
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"black\"/>\n"
        svg += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 42))\" text-anchor=\"middle\">\(escape(xLabel)) (log scale)</text>\n"
        svg += "<text transform=\"translate(22,\(f((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel)) (log scale)</text>\n"
        // series: data first, reference lines over it
        let drawn = zip(series, usable).filter { !$0.0.isReference } + zip(series, usable).filter { $0.0.isReference }
        for (s, pts) in drawn where !pts.isEmpty {
            let sorted = pts.sorted { $0.x < $1.x }.map { (x: px($0.x), y: py($0.y)) }
            let coords = sorted.map { "\(f($0.x)),\(f($0.y))" }
            let dash = s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
            let width = s.isReference ? "2.2" : "1.6"
            svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"\(width)\"\(dash) points=\"\(coords.joined(separator: " "))\"><title>\(escape(s.name))</title></polyline>\n"
            if !s.isReference { for p in sorted { svg += marker(s.marker, at: p, color: s.color) } }
        }
        // legend
        var ly = top + 4
        let lineHeight = Swift.min(18.0, (bottom + 40 - top) / Double(Swift.max(series.count, 1)))
        for (s, pts) in zip(series, usable) {
            let dash = s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
            let dropped = s.points.count - pts.count
            let note = dropped > 0 ? " (\(dropped) point\(dropped == 1 ? "" : "s") not plotted: zero or non-finite)" : ""
            svg += "<line x1=\"\(f(right + 20))\" y1=\"\(f(ly))\" x2=\"\(f(right + 50))\" y2=\"\(f(ly))\" stroke=\"\(s.color)\" stroke-width=\"2\"\(dash)/>\n"
            if !s.isReference { svg += marker(s.marker, at: (x: right + 35, y: ly), color: s.color) }
            svg += "<text x=\"\(f(right + 56))\" y=\"\(f(ly + 4))\" font-size=\"11\">\(escape(s.name + note))</text>\n"
            ly += lineHeight
        }
        svg += "</svg>\n"
        return svg
    }

    private func f(_ x: Double) -> String { String(format: "%.1f", x) }

    /// One marker centred at `p` (about 5 px across).
    private func marker(_ m: Marker, at p: (x: Double, y: Double), color: String) -> String {
        let (x, y) = (p.x, p.y)
        switch m {
        case .circle:
            return "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"2.5\" fill=\"\(color)\"/>\n"
        case .square:
            return "<rect x=\"\(f(x - 2.5))\" y=\"\(f(y - 2.5))\" width=\"5.0\" height=\"5.0\" fill=\"\(color)\"/>\n"
        case .triangle:
            return "<polygon points=\"\(f(x)),\(f(y - 3.2)) \(f(x - 3)),\(f(y + 2.4)) \(f(x + 3)),\(f(y + 2.4))\" fill=\"\(color)\"/>\n"
        case .diamond:
            return "<polygon points=\"\(f(x)),\(f(y - 3.4)) \(f(x + 3)),\(f(y)) \(f(x)),\(f(y + 3.4)) \(f(x - 3)),\(f(y))\" fill=\"\(color)\"/>\n"
        case .cross:
            return "<path d=\"M\(f(x - 3)),\(f(y - 3))L\(f(x + 3)),\(f(y + 3))M\(f(x - 3)),\(f(y + 3))L\(f(x + 3)),\(f(y - 3))\" stroke=\"\(color)\" stroke-width=\"1.5\"/>\n"
        }
    }

    private func tickLabel(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e7 ? String(Int(x)) : String(format: "%.3g", x)
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
