import Foundation

/// Locale-independent number formatting for reports, so that the same
/// numbers always print the same characters ("inf", "-inf", "nan" for the
/// special values; C-locale `printf` conversions otherwise).
enum NumberText {
    /// `%.{digits}g`: three significant digits by default ("0.5", "1.23e-05", "4.1e+03").
    static func significant(_ x: Double, digits: Int = 3) -> String {
        if let special = special(x) { return special }
        return String(format: "%.\(digits)g", x)
    }

    /// `%.{digits}e`: scientific with a fixed number of decimals ("1.23e-04").
    static func scientific(_ x: Double, digits: Int = 2) -> String {
        if let special = special(x) { return special }
        return String(format: "%.\(digits)e", x)
    }

    /// `%.{digits}f`: fixed decimals, used for durations ("0.125").
    static func fixed(_ x: Double, digits: Int = 3) -> String {
        if let special = special(x) { return special }
        return String(format: "%.\(digits)f", x)
    }

    private static func special(_ x: Double) -> String? {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        return nil
    }
}
