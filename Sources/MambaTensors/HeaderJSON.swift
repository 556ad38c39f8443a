/// A small, strict JSON (RFC 8259) parser for safetensors headers.
///
/// Objects keep their keys in file order *including duplicates*, so callers
/// can reject a repeated tensor name instead of silently keeping one (as
/// general-purpose JSON decoders do). Numbers are kept as their text, so
/// integers of any size are judged exactly by the caller. Nesting deeper than
/// `maximumDepth` is rejected. Whitespace may follow the value (safetensors
/// pads its header with spaces).
enum HeaderJSON {
    case object([Member])
    case array([HeaderJSON])
    case string(String)
    case number(String)
    case boolean(Bool)
    case null

    /// One `"key": value` pair of an object.
    struct Member {
        let key: String
        let value: HeaderJSON
    }

    static let maximumDepth = 64

    struct ParseError: Error {
        let message: String
    }

    /// Parses the UTF-8 `bytes`, which must hold exactly one JSON value.
    static func parse<Bytes: Collection>(_ bytes: Bytes) throws -> HeaderJSON where Bytes.Element == UInt8 {
        var parser = Parser(bytes: Array(bytes))
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == parser.bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    /// A short description of the kind of value, for error messages.
    var kind: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .boolean: "a boolean"
        case .null: "null"
        }
    }

    /// The value as a non-negative integer that fits `Int`, or why it is not one.
    var nonNegativeInteger: Result<Int, JSONIntegerProblem> {
        guard case let .number(text) = self, !text.isEmpty,
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return .failure(.notANonNegativeInteger)
        }
        guard let value = Int(text) else { return .failure(.tooLarge) }
        return .success(value)
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        func error(_ message: String) -> ParseError {
            ParseError(message: "\(message) at byte \(position)")
        }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { position += 1 }
        }

        mutating func expect(_ c: UInt8) throws {
            skipWhitespace()
            guard current == c else { throw error("expected '\(Character(Unicode.Scalar(c)))'") }
            position += 1
        }

        mutating func value(depth: Int) throws -> HeaderJSON {
            guard depth < HeaderJSON.maximumDepth else { throw error("nesting deeper than \(HeaderJSON.maximumDepth)") }
            skipWhitespace()
            guard let c = current else { throw error("unexpected end of JSON") }
            switch c {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "-"), UInt8(ascii: "0") ... UInt8(ascii: "9"): return .number(try number())
            default:
                for (word, literal) in [("true", HeaderJSON.boolean(true)), ("false", .boolean(false)), ("null", .null)]
                where bytes[position...].starts(with: word.utf8) {
                    position += word.utf8.count
                    return literal
                }
                throw error("unexpected character")
            }
        }

        mutating func object(depth: Int) throws -> HeaderJSON {
            position += 1
            var entries: [Member] = []
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return .object(entries) }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try string()
                try expect(UInt8(ascii: ":"))
                entries.append(Member(key: key, value: try value(depth: depth + 1)))
                skipWhitespace()
                if current == UInt8(ascii: "}") { position += 1; return .object(entries) }
                try expect(UInt8(ascii: ","))
            }
        }

        mutating func array(depth: Int) throws -> HeaderJSON {
            position += 1
            var items: [HeaderJSON] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return .array(items) }
            while true {
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                if current == UInt8(ascii: "]") { position += 1; return .array(items) }
                try expect(UInt8(ascii: ","))
            }
        }

        mutating func number() throws -> String {
            let start = position
            func digits() -> Int {
                var n = 0
                while let c = current, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { position += 1; n += 1 }
                return n
            }
            if current == UInt8(ascii: "-") { position += 1 }
            if current == UInt8(ascii: "0") {
                position += 1
            } else if digits() == 0 {
                throw error("expected digits")
            }
            if current == UInt8(ascii: ".") {
                position += 1
                guard digits() > 0 else { throw error("expected digits after '.'") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw error("expected exponent digits") }
            }
            return String(decoding: bytes[start ..< position], as: UTF8.self)
        }

        mutating func string() throws -> String {
            position += 1
            var utf8: [UInt8] = []
            while true {
                guard let c = current else { throw error("unterminated string") }
                position += 1
                switch c {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: utf8, as: UTF8.self) else { throw error("string is not valid UTF-8") }
                    return text
                case 0 ..< 0x20:
                    throw error("control character in string")
                case UInt8(ascii: "\\"):
                    guard let e = current else { throw error("unterminated escape") }
                    position += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(e)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0C)
                    case UInt8(ascii: "n"): utf8.append(0x0A)
                    case UInt8(ascii: "r"): utf8.append(0x0D)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        var code = try hex4()
                        if (0xD800 ..< 0xDC00).contains(code) {
                            guard current == UInt8(ascii: "\\"), position + 1 < bytes.count,
                                  bytes[position + 1] == UInt8(ascii: "u") else { throw error("unpaired surrogate") }
                            position += 2
                            let low = try hex4()
                            guard (0xDC00 ..< 0xE000).contains(low) else { throw error("unpaired surrogate") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw error("invalid \\u escape") }
                        utf8.append(contentsOf: String(Character(scalar)).utf8)
                    default:
                        throw error("invalid escape")
                    }
                default:
                    utf8.append(c)
                }
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard position + 4 <= bytes.count,
                  bytes[position ..< position + 4].allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
                  let code = UInt32(String(decoding: bytes[position ..< position + 4], as: UTF8.self), radix: 16) else {
                throw error("invalid \\u escape")
            }
            position += 4
            return code
        }
    }
}

/// Why a JSON value is not a usable non-negative integer.
enum JSONIntegerProblem: Error {
    case notANonNegativeInteger
    case tooLarge
}

extension HeaderJSON {
    /// `text` as a JSON string literal (quotes, backslashes and control
    /// characters escaped; everything else verbatim UTF-8).
    static func quoted(_ text: String) -> String {
        "\"" + text.escapingScalars { scalar in
            switch scalar {
            case "\"": "\\\""
            case "\\": "\\\\"
            case "\n": "\\n"
            case "\r": "\\r"
            case "\t": "\\t"
            case "\u{0}" ..< "\u{20}": "\\u" + String(scalar.value, radix: 16).leftPadded(to: 4)
            default: nil
            }
        } + "\""
    }
}

extension String {
    /// The text with every Unicode scalar for which `replacement` returns a
    /// string replaced by that string, every other scalar kept verbatim: the
    /// one escaping loop of the JSON writers (`HeaderJSON.quoted`) and of the
    /// XML reports (MambaVerification's `XML`).
    package func escapingScalars(_ replacement: (Unicode.Scalar) -> String?) -> String {
        var out = ""
        for scalar in unicodeScalars {
            if let r = replacement(scalar) { out += r } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }
}
