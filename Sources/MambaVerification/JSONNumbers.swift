import Foundation

/// Non-finite numbers in the JSON the tool writes.
///
/// JSON has no ±∞ or NaN. `VerificationReport.jsonEncoder()` writes them as
/// the sentinel strings "inf", "-inf", "nan"; every report file then carries
/// `null` in their place, so that each numeric field is a JSON number or
/// `null`, never a string. Reading maps `null` back to the sentinel (NaN for
/// the decoder), which is lossless for the fields that can be non-finite.
enum JSONNumbers {
    /// Encoder output with the sentinel strings replaced by `null`, ending in a newline.
    static func nonFiniteAsNull(_ data: Data) -> Data {
        var text = String(decoding: data, as: UTF8.self)
        for sentinel in ["\"-inf\"", "\"inf\"", "\"nan\""] {
            text = text.replacingOccurrences(of: " : " + sentinel, with: " : null")
                .replacingOccurrences(of: "  " + sentinel + ",", with: "  null,")
                .replacingOccurrences(of: "  " + sentinel + "\n", with: "  null\n")
        }
        return Data((text + "\n").utf8)
    }

    /// The inverse for the decoder: `null` read as "nan" (NaN).
    static func nullAsNaN(_ data: Data) -> Data {
        let text = String(decoding: data, as: UTF8.self)
            .replacingOccurrences(of: " : null", with: " : \"nan\"")
            .replacingOccurrences(of: "  null,", with: "  \"nan\",")
            .replacingOccurrences(of: "  null\n", with: "  \"nan\"\n")
        return Data(text.utf8)
    }
}
