/// One problem found in a config file, located by key path (`routes[1].upstream`, indices
/// 0-based) and, where it could be found, by line.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: Sendable {
        case error, warning
    }

    public var severity: Severity
    /// Dotted key path; empty for problems with the file as a whole (unreadable, bad TOML).
    public var keyPath: String
    /// 1-based line, when the parser or `SourceLocator` knows it.
    public var line: Int?
    public var message: String
    /// The config file as the operator named it, for `description`.
    public var sourcePath: String?

    public init(severity: Severity, keyPath: String, line: Int?, message: String, sourcePath: String? = nil) {
        self.severity = severity
        self.keyPath = keyPath
        self.line = line
        self.message = message
        self.sourcePath = sourcePath
    }

    /// Compiler-style, so editors and grep pick it up:
    /// `proxy.conf:12: routes[1].upstream: must be an http(s) URL, got "ftp://x"`.
    public var description: String {
        var location: [String] = []
        switch (sourcePath, line) {
        case (let path?, let line?): location.append("\(path):\(line)")
        case (let path?, nil): location.append(path)
        case (nil, let line?): location.append("line \(line)")
        case (nil, nil): break
        }
        if severity == .warning { location.append("warning") }
        if !keyPath.isEmpty { location.append(keyPath) }
        return (location + [message]).joined(separator: ": ")
    }
}

/// A config that loaded, with anything worth telling the operator about it.
public struct ConfigLoadResult: Sendable {
    public var config: GatewayConfig
    public var warnings: [ConfigIssue]

    public init(config: GatewayConfig, warnings: [ConfigIssue]) {
        self.config = config
        self.warnings = warnings
    }
}

/// A config that did not load: every error found (never only the first), and the warnings.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]

    public init(issues: [ConfigIssue]) {
        self.issues = issues
    }

    public var errors: [ConfigIssue] { issues.filter { $0.severity == .error } }

    /// One issue per line, ready for stderr.
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// Why a single config value (a duration, size, URL, address…) was refused; the loader
/// prefixes the key path and line.
public struct ValueFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension StringProtocol {
    /// The value in double quotes, escaped the TOML way, for messages. Not
    /// `debugDescription`: TOMLKit redefines that on `String` as the bare text.
    var configQuoted: String {
        var out = "\""
        for scalar in unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16).uppercased()
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
