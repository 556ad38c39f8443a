/// The subset of Python literal syntax used by `.npy` headers, parsed
/// without evaluating anything: `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (3, 4), }`.
///
/// Accepted: dicts with string keys, tuples, lists, strings in single or
/// double quotes (escapes `\\ \' \" \n \r \t \xHH \uHHHH`), integers
/// (optional sign, optional Python 2 `L` suffix, kept as text so overflow is
/// the caller's decision), `True`, `False`, `None`, trailing commas and
/// whitespace. A parenthesised value without a comma is that value, as in
/// Python. Nesting deeper than `maximumDepth` is rejected, so hostile input
/// cannot exhaust the stack.
enum PythonLiteral {
    case string(String)
    case integer(String)
    case boolean(Bool)
    case none
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case dict([(key: String, value: PythonLiteral)])

    static let maximumDepth = 16

    struct ParseError: Error {
        let message: String
    }

    /// Parses `text`, which must hold exactly one literal (plus whitespace).
    static func parse(_ text: String) throws -> PythonLiteral {
        var parser = Parser(scalars: Array(text.unicodeScalars))
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.atEnd else { throw parser.error("unexpected text after the literal") }
        return value
    }

    /// A short description of the kind of value, for error messages.
    var kind: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .boolean: "a boolean"
        case .none: "None"
        case .tuple: "a tuple"
        case .list: "a list"
        case .dict: "a dict"
        }
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var position = 0

        var atEnd: Bool { position >= scalars.count }
        var current: Unicode.Scalar? { atEnd ? nil : scalars[position] }

        func error(_ message: String) -> ParseError {
            ParseError(message: "\(message) at character \(position)")
        }

        mutating func skipWhitespace() {
            while let c = current, c == " " || c == "\t" || c == "\n" || c == "\r" { position += 1 }
        }

        mutating func expect(_ scalar: Unicode.Scalar) throws {
            skipWhitespace()
            guard current == scalar else { throw error("expected '\(scalar)'") }
            position += 1
        }

        mutating func value(depth: Int) throws -> PythonLiteral {
            guard depth < PythonLiteral.maximumDepth else { throw error("nesting deeper than \(PythonLiteral.maximumDepth)") }
            skipWhitespace()
            guard let c = current else { throw error("unexpected end of header") }
            switch c {
            case "'", "\"": return .string(try string())
            case "(": return try sequence(close: ")", depth: depth, isTuple: true)
            case "[": return try sequence(close: "]", depth: depth, isTuple: false)
            case "{": return try dict(depth: depth)
            case "-", "+", "0"..."9": return .integer(try integer())
            default:
                for (word, literal) in [("True", PythonLiteral.boolean(true)), ("False", .boolean(false)), ("None", .none)]
                where matches(word) {
                    position += word.unicodeScalars.count
                    return literal
                }
                throw error("unexpected character '\(c)'")
            }
        }

        func matches(_ word: String) -> Bool {
            let w = Array(word.unicodeScalars)
            guard position + w.count <= scalars.count, Array(scalars[position ..< position + w.count]) == w else {
                return false
            }
            // The word must end here (no `Trueish`).
            if position + w.count < scalars.count {
                let next = scalars[position + w.count]
                if next.properties.isAlphabetic || next == "_" || ("0"..."9").contains(next) { return false }
            }
            return true
        }

        mutating func integer() throws -> String {
            var text = ""
            if let c = current, c == "-" || c == "+" {
                if c == "-" { text.unicodeScalars.append(c) }
                position += 1
            }
            var digits = 0
            while let c = current, ("0"..."9").contains(c) {
                text.unicodeScalars.append(c)
                position += 1
                digits += 1
            }
            guard digits > 0 else { throw error("expected digits") }
            if let c = current, c == "L" || c == "l" { position += 1 }
            if let c = current, c == "." || c == "e" || c == "E" || c == "j" {
                throw error("expected an integer, found a non-integer number")
            }
            return text
        }

        mutating func string() throws -> String {
            guard let quote = current else { throw error("expected a string") }
            position += 1
            var text = ""
            while true {
                guard let c = current else { throw error("unterminated string") }
                position += 1
                if c == quote { return text }
                if c == "\n" { throw error("newline inside a string") }
                guard c == "\\" else { text.unicodeScalars.append(c); continue }
                guard let e = current else { throw error("unterminated escape") }
                position += 1
                switch e {
                case "\\", "'", "\"": text.unicodeScalars.append(e)
                case "n": text += "\n"
                case "r": text += "\r"
                case "t": text += "\t"
                case "x": text.unicodeScalars.append(try hexScalar(digits: 2))
                case "u": text.unicodeScalars.append(try hexScalar(digits: 4))
                default: throw error("unsupported escape '\\\(e)'")
                }
            }
        }

        mutating func hexScalar(digits: Int) throws -> Unicode.Scalar {
            guard position + digits <= scalars.count else { throw error("truncated escape") }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars[position ..< position + digits])
            position += digits
            guard let code = UInt32(text, radix: 16), let scalar = Unicode.Scalar(code) else {
                throw error("bad hexadecimal escape")
            }
            return scalar
        }

        mutating func sequence(close: Unicode.Scalar, depth: Int, isTuple: Bool) throws -> PythonLiteral {
            position += 1
            var items: [PythonLiteral] = []
            var sawComma = false
            while true {
                skipWhitespace()
                if current == close { position += 1; break }
                if !items.isEmpty {
                    try expect(",")
                    sawComma = true
                    skipWhitespace()
                    if current == close { position += 1; break }
                }
                items.append(try value(depth: depth + 1))
            }
            if isTuple && items.count == 1 && !sawComma { return items[0] }
            return isTuple ? .tuple(items) : .list(items)
        }

        mutating func dict(depth: Int) throws -> PythonLiteral {
            position += 1
            var entries: [(key: String, value: PythonLiteral)] = []
            var keys = Set<String>()  // linear duplicate check
            while true {
                skipWhitespace()
                if current == "}" { position += 1; break }
                if !entries.isEmpty {
                    try expect(",")
                    skipWhitespace()
                    if current == "}" { position += 1; break }
                }
                guard case let .string(key) = try value(depth: depth + 1) else { throw error("dict keys must be strings") }
                guard keys.insert(key).inserted else { throw error("duplicate key '\(key)'") }
                try expect(":")
                entries.append((key, try value(depth: depth + 1)))
            }
            return .dict(entries)
        }
    }
}
