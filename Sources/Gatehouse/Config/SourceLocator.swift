/// Finds the line a key path was written on, so semantic errors can point at it like
/// parse errors do.
///
/// Best-effort by design: TOMLKit hands back values without source positions, so this
/// re-scans the text with a small line-oriented reader. It knows table headers
/// (`[server]`, `[[routes]]`, `[routes.tools]`), `key = value` lines (dotted keys too),
/// elements of arrays (`routes = [{ … }, { … }]`, one per line or not) and multi-line
/// strings. Keys inside inline tables are not recorded, so their paths answer nil, and so
/// does any path it did not see: a missing line is better than a wrong one.
struct SourceLocator {
    private var lines: [String: Int] = [:]

    init(text: String) {
        var scanner = ValueScanner()
        var arrayCounts: [String: Int] = [:]
        var table = ""
        var number = 0
        // "\r\n" is one Character in Swift, so it is a separator of its own.
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            if scanner.isInsideValue {
                scanner.scan(raw, line: number, into: &lines)
                continue
            }
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[") {
                let isArray = line.hasPrefix("[[")
                guard let (keys, _) = Self.parseKey(line.dropFirst(isArray ? 2 : 1)) else { continue }
                table = Self.tablePath(keys, isArray: isArray, counts: &arrayCounts)
                if isArray, let bracket = table.lastIndex(of: "[") {
                    record(String(table[..<bracket]), number)  // `issuers` as well as `issuers[0]`
                }
                record(table, number)
            } else if let (keys, rest) = Self.parseKey(line), rest.first == "=" {
                var path = table
                for key in keys {
                    path = KeyPath.join(path, key)
                    record(path, number)
                }
                scanner.begin(path)
                scanner.scan(rest.dropFirst(), line: number, into: &lines)
            }
        }
    }

    /// The 1-based line of `keyPath`, or nil when it was not seen.
    func line(of keyPath: String) -> Int? { lines[keyPath] }

    private mutating func record(_ path: String, _ line: Int) {
        if lines[path] == nil { lines[path] = line }
    }

    /// `[a.b]` inside the latest `[[a]]` element is `a[n].b`; `[[a]]` itself opens `a[n+1]`.
    private static func tablePath(_ keys: [String], isArray: Bool, counts: inout [String: Int]) -> String {
        var path = ""
        for (index, key) in keys.enumerated() {
            path = KeyPath.join(path, key)
            if isArray && index == keys.count - 1 {
                let next = counts[path, default: 0]
                counts[path] = next + 1
                path += "[\(next)]"
            } else if let count = counts[path] {
                path += "[\(count - 1)]"
            }
        }
        return path
    }

    /// Reads a (possibly dotted, possibly quoted) key and returns the text after it with
    /// leading blanks removed, or nil if the line does not start with a key.
    static func parseKey(_ text: Substring) -> ([String], Substring)? {
        var keys: [String] = []
        var rest = text.drop { $0 == " " || $0 == "\t" }
        while true {
            var key = ""
            if let quote = rest.first, quote == "\"" || quote == "'" {
                var index = rest.index(after: rest.startIndex)
                var closed = false
                while index < rest.endIndex {
                    let c = rest[index]
                    if c == quote {
                        closed = true
                        break
                    }
                    if c == "\\" && quote == "\"" {
                        index = rest.index(after: index)
                        guard index < rest.endIndex else { break }
                    }
                    key.append(rest[index])
                    index = rest.index(after: index)
                }
                guard closed else { return nil }
                rest = rest[rest.index(after: index)...]
            } else {
                let bare = rest.prefix { KeyPath.isBareKeyCharacter($0) }
                guard !bare.isEmpty else { return nil }
                key = String(bare)
                rest = rest[bare.endIndex...]
            }
            keys.append(key)
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard rest.first == "." else { return (keys, rest) }
            rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
        }
    }
}

/// Tracks strings and brackets across lines, so that multi-line values are skipped and
/// the line of each element of an array value is recorded as `key[i]`.
private struct ValueScanner {
    private enum Mode { case plain, basic, literal, multiBasic, multiLiteral }
    private var mode = Mode.plain
    private var depth = 0
    private var path = ""
    private var outerIsArray = false
    private var elementIndex = 0
    private var expectingElement = false

    var isInsideValue: Bool { depth > 0 || mode == .multiBasic || mode == .multiLiteral }

    mutating func begin(_ path: String) {
        self = ValueScanner()
        self.path = path
    }

    mutating func scan(_ text: Substring, line: Int, into lines: inout [String: Int]) {
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            var step = 1
            switch mode {
            case .basic, .multiBasic:
                let closer = mode == .basic ? "\"" : "\"\"\""
                if c == "\\" {
                    step = 2
                } else if text[index...].hasPrefix(closer) {
                    step = closer.count
                    mode = .plain
                }
            case .literal, .multiLiteral:
                let closer = mode == .literal ? "'" : "'''"
                if text[index...].hasPrefix(closer) {
                    step = closer.count
                    mode = .plain
                }
            case .plain:
                if c == "#" { return }
                if depth == 1, outerIsArray, expectingElement, !" \t\r,]".contains(c) {
                    let element = "\(path)[\(elementIndex)]"
                    if lines[element] == nil { lines[element] = line }
                    expectingElement = false
                }
                switch c {
                case "\"":
                    if text[index...].hasPrefix("\"\"\"") {
                        mode = .multiBasic
                        step = 3
                    } else {
                        mode = .basic
                    }
                case "'":
                    if text[index...].hasPrefix("'''") {
                        mode = .multiLiteral
                        step = 3
                    } else {
                        mode = .literal
                    }
                case "[", "{":
                    if depth == 0 {
                        outerIsArray = c == "["
                        expectingElement = true
                        elementIndex = 0
                    }
                    depth += 1
                case "]", "}":
                    depth = max(0, depth - 1)
                case ",":
                    if depth == 1 {
                        elementIndex += 1
                        expectingElement = true
                    }
                default:
                    break
                }
            }
            index = text.index(index, offsetBy: step, limitedBy: text.endIndex) ?? text.endIndex
        }
        // Single-line strings cannot continue on the next line.
        if mode == .basic || mode == .literal { mode = .plain }
    }
}

/// Key paths as issues print them: `routes[1].upstream`, keys that are not bare TOML keys
/// quoted (`identity_headers."x y"`).
enum KeyPath {
    static func isBareKeyCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "-")
    }

    static func join(_ base: String, _ key: String) -> String {
        let rendered = !key.isEmpty && key.allSatisfy(isBareKeyCharacter) ? key : key.configQuoted
        return base.isEmpty ? rendered : base + "." + rendered
    }
}
