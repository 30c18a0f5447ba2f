import TOMLKit

/// Walks the parsed TOML and collects every issue instead of stopping at the first, so
/// that one `gatehouse check` run shows the operator everything to fix. The section
/// readers live in the `ConfigReader+…` files.
struct ConfigReader {
    let locator: SourceLocator
    let sourcePath: String?
    /// Absolute folder that relative paths in the file are resolved against.
    let baseDirectory: String
    /// Where `upstream_headers` `env` values come from: nil = the process environment.
    /// Injectable so tests need not mutate the (process-global) environment.
    let environment: [String: String]?
    private(set) var issues: [ConfigIssue] = []

    init(locator: SourceLocator, sourcePath: String?, baseDirectory: String, environment: [String: String]? = nil) {
        self.locator = locator
        self.sourcePath = sourcePath
        self.baseDirectory = baseDirectory
        self.environment = environment
    }

    // MARK: Issues

    /// Records an error at `keyPath`; `line` defaults to where the locator saw the key,
    /// or failing that its closest enclosing key (`line(near:)`).
    mutating func error(_ keyPath: String, _ message: String, line: Int? = nil) {
        issues.append(
            ConfigIssue(
                severity: .error, keyPath: keyPath, line: line ?? self.line(near: keyPath),
                message: message, sourcePath: sourcePath))
    }

    mutating func warning(_ keyPath: String, _ message: String) {
        issues.append(
            ConfigIssue(
                severity: .warning, keyPath: keyPath, line: line(near: keyPath),
                message: message, sourcePath: sourcePath))
    }

    /// The line of `keyPath`, else of the nearest enclosing key the locator saw. The
    /// locator does not record keys inside inline tables (`{ path = "…", kid = "…" }`),
    /// and TOML writes an inline table on one line, so its own line is the key's line.
    func line(near keyPath: String) -> Int? {
        var path = Substring(keyPath)
        while !path.isEmpty {
            if let line = locator.line(of: String(path)) { return line }
            // Drop the last component, `.key` or `[n]`.
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            path = path[..<cut]
        }
        return nil
    }

    /// A required key is absent: point at its table's header, the closest line there is.
    mutating func missing(_ key: String, in table: String, _ message: String) {
        error(KeyPath.join(table, key), message, line: locator.line(of: table))
    }

    // MARK: Keys

    /// Refuses every key of `table` that is neither `known` nor `pending`: unknown ones
    /// with a did-you-mean hint, pending ones (later features) with a not-supported note.
    mutating func checkKeys(
        _ table: TOMLTable, at path: String, known: [String], pending: [String: PendingFeature] = [:]
    ) {
        for key in table.keys.sorted() where !known.contains(key) {
            let keyPath = KeyPath.join(path, key)
            if let feature = pending[key] {
                // Top-level ones are sections: name them the way they are written.
                let isArray = table[key]?.type == .array
                let shown = !path.isEmpty ? "`\(key)`" : isArray ? "[[\(key)]]" : "[\(key)]"
                error(keyPath, "\(shown) \(feature.notSupported)")
            } else {
                let what = path.isEmpty ? "unknown top-level key" : "unknown key"
                error(keyPath, "\(what) `\(key)`" + DidYouMean.hint(for: key, among: known))
            }
        }
    }

    // MARK: Typed values. Each returns nil when the key is absent or refused (and reported).

    /// The value at `key` if present and of `type`; a wrong type is reported naming `expected`.
    mutating func value(
        _ table: TOMLTable, _ key: String, at path: String, _ type: TOMLType, expected: String
    ) -> TOMLValueConvertible? {
        guard let value = table[key] else { return nil }
        guard value.type == type else {
            error(KeyPath.join(path, key), "expected \(expected), got \(Self.describe(value))")
            return nil
        }
        return value
    }

    mutating func table(_ table: TOMLTable, _ key: String, at path: String) -> TOMLTable? {
        value(table, key, at: path, .table, expected: "a table ([\(KeyPath.join(path, key))])")?.table
    }

    mutating func string(_ table: TOMLTable, _ key: String, at path: String) -> String? {
        value(table, key, at: path, .string, expected: "a string")?.string
    }

    mutating func integer(_ table: TOMLTable, _ key: String, at path: String) -> Int? {
        value(table, key, at: path, .int, expected: "an integer")?.int
    }

    /// An integer within `range`.
    mutating func integer(_ table: TOMLTable, _ key: String, at path: String, in range: ClosedRange<Int>) -> Int? {
        guard let number = integer(table, key, at: path) else { return nil }
        guard range.contains(number) else {
            let bounds =
                range.upperBound == .max
                ? "at least \(range.lowerBound)" : "between \(range.lowerBound) and \(range.upperBound)"
            error(KeyPath.join(path, key), "must be \(bounds), got \(number)")
            return nil
        }
        return number
    }

    /// An array of strings, each paired with its key path (`methods[2]`) for messages.
    mutating func strings(_ table: TOMLTable, _ key: String, at path: String) -> [(text: String, path: String)]? {
        guard let array = value(table, key, at: path, .array, expected: "an array of strings")?.array else {
            return nil
        }
        let keyPath = KeyPath.join(path, key)
        var result: [(text: String, path: String)] = []
        var ok = true
        for (index, element) in array.enumerated() {
            let elementPath = "\(keyPath)[\(index)]"
            if let text = element.string {
                result.append((text, elementPath))
            } else {
                error(elementPath, "expected a string, got \(Self.describe(element))")
                ok = false
            }
        }
        return ok ? result : nil
    }

    mutating func bool(_ table: TOMLTable, _ key: String, at path: String) -> Bool? {
        value(table, key, at: path, .bool, expected: "a boolean (true or false)")?.bool
    }

    /// A duration string: greater than zero, or at least `minimum` when given (so
    /// `atLeast: .zero` admits "0s"), and at most `maximum` when given.
    mutating func duration(
        _ table: TOMLTable, _ key: String, at path: String, atLeast minimum: Duration? = nil,
        atMost maximum: Duration? = nil
    ) -> Duration? {
        guard let text = value(table, key, at: path, .string, expected: "a duration string like \"30s\"")?.string
        else { return nil }
        let keyPath = KeyPath.join(path, key)
        let duration: Duration
        do {
            duration = try ConfigDuration.parse(text)
        } catch {
            self.error(keyPath, error.message)
            return nil
        }
        if let minimum {
            guard duration >= minimum else {
                error(keyPath, "must be at least \(ConfigDuration.format(minimum)), got \(text.configQuoted)")
                return nil
            }
        } else if duration <= .zero {
            error(keyPath, "must be greater than 0, got \(text.configQuoted)")
            return nil
        }
        if let maximum, duration > maximum {
            error(keyPath, "must be at most \(ConfigDuration.format(maximum)), got \(text.configQuoted)")
            return nil
        }
        return duration
    }

    /// A size: an integer number of bytes or a string with a binary unit; greater than zero.
    mutating func size(_ table: TOMLTable, _ key: String, at path: String) -> Int64? {
        guard let value = table[key] else { return nil }
        let keyPath = KeyPath.join(path, key)
        let bytes: Int64
        if let number = value.int {
            bytes = Int64(number)
        } else if let text = value.string {
            do {
                bytes = try ConfigSize.parse(text)
            } catch {
                self.error(keyPath, error.message)
                return nil
            }
        } else {
            error(
                keyPath,
                "expected a size (an integer in bytes, or a string like \"64KiB\"), got \(Self.describe(value))")
            return nil
        }
        guard bytes > 0 else {
            error(keyPath, "must be greater than 0, got \(Self.describe(value))")
            return nil
        }
        return bytes
    }

    /// A file path; relative ones are resolved against the config file's folder.
    mutating func filePath(_ text: String, at keyPath: String) -> String? {
        guard !text.isEmpty else {
            error(keyPath, "must not be empty")
            return nil
        }
        return ConfigPaths.resolve(text, against: baseDirectory)
    }

    /// A file that must exist and be readable now (keys, secrets): resolved like
    /// `filePath`, then opened once, so a typo fails `gatehouse check`, not the first request.
    mutating func readableFile(_ text: String, at keyPath: String) -> String? {
        guard let path = filePath(text, at: keyPath) else { return nil }
        if let reason = ConfigPaths.unreadableReason(path) {
            error(keyPath, reason)
            return nil
        }
        return path
    }

    /// An array of strings, each non-empty and listed once. nil when absent or when
    /// anything in it was refused (reported); an empty array is returned as is.
    mutating func distinctStrings(_ table: TOMLTable, _ key: String, at path: String) -> [(text: String, path: String)]?
    {
        guard let entries = strings(table, key, at: path) else { return nil }
        var seen: Set<String> = []
        var ok = true
        for (text, elementPath) in entries {
            if text.isEmpty {
                error(elementPath, "must not be empty")
                ok = false
            } else if !seen.insert(text).inserted {
                error(elementPath, "\(text.configQuoted) is listed twice")
                ok = false
            }
        }
        return ok ? entries : nil
    }

    /// One of `allowed`, with a hint when it is close to one.
    mutating func choice(_ table: TOMLTable, _ key: String, at path: String, allowed: [String]) -> String? {
        guard let text = string(table, key, at: path) else { return nil }
        guard allowed.contains(text) else {
            let list = allowed.map(\.configQuoted).joined(separator: ", ")
            let hint = DidYouMean.suggestion(for: text, among: allowed).map { "; did you mean \($0.configQuoted)?" }
            error(KeyPath.join(path, key), "must be one of \(list), got \(text.configQuoted)" + (hint ?? ""))
            return nil
        }
        return text
    }

    /// `a string`, `an integer`: the type alone, for values that may be secrets.
    static func kind(of value: TOMLValueConvertible) -> String {
        switch value.type {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a floating-point number"
        case .bool: return "a boolean"
        case .array: return "an array"
        case .table: return "a table"
        case .date: return "a date"
        case .time: return "a time"
        case .dateTime: return "a date-time"
        }
    }

    /// `a string ("x")`, `an integer (30)`, `a table`: what the operator actually wrote.
    static func describe(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .string: return "a string (\((value.string ?? "").configQuoted))"
        case .int: return "an integer (\(value.int.map(String.init) ?? "?"))"
        case .double: return "a floating-point number (\(value.double.map { "\($0)" } ?? "?"))"
        case .bool: return "a boolean (\(value.bool.map(String.init) ?? "?"))"
        case .array: return "an array"
        case .table: return "a table"
        case .date: return "a date"
        case .time: return "a time"
        case .dateTime: return "a date-time"
        }
    }
}

/// Parts of the config format that later work implements. They are refused, never
/// ignored: silently dropping e.g. a route's per-tool scopes (`tools`) would leave those
/// tools unprotected.
enum PendingFeature: String {
    case mcp = "MCP"
    case scaleOut = "scale-out"

    var notSupported: String { "is not supported yet in this build (arrives with \(rawValue) support)" }
}
