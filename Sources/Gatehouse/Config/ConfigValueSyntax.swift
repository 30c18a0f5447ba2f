// Syntax of the structured strings in a config: listen addresses, upstream URLs, route
// paths and HTTP tokens. Each parser says exactly what is wrong, for `gatehouse check`.

extension ListenAddress {
    /// `host:port` or `[v6]:port`; port 0–65535 (0 = an ephemeral port, used by tests).
    public static func parse(_ text: String) throws(ValueFormatError) -> ListenAddress {
        guard !text.isEmpty else {
            throw ValueFormatError("must not be empty; write host:port, e.g. \"127.0.0.1:8080\"")
        }
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw ValueFormatError("\(text.configQuoted): missing \"]\"")
            }
            hostPart = text[...close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else {
                throw ValueFormatError("\(text.configQuoted) has no port; write e.g. \"\(hostPart):8080\"")
            }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw ValueFormatError("\(text.configQuoted) has no port; write host:port, e.g. \"\(text):8080\"")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") {
                throw ValueFormatError("\(text.configQuoted): IPv6 addresses need brackets, e.g. \"[::1]:8080\"")
            }
            if hostPart.isEmpty {
                throw ValueFormatError(
                    "\(text.configQuoted) has no host; write \"0.0.0.0:\(portPart)\" to listen on every interface")
            }
        }
        let host = try HostSyntax.parse(hostPart, in: text)
        guard let port = HostSyntax.port(portPart) else {
            throw ValueFormatError("\(text.configQuoted): port must be a number from 0 to 65535")
        }
        return ListenAddress(host: host, port: port)
    }

    /// True for `0.0.0.0` and `::`, which collide with every address on the same port.
    var isWildcard: Bool { host == "0.0.0.0" || host == "::" }

    var isLoopback: Bool { HostSyntax.isLoopback(host) }
}

/// `jwks_url` (SPEC §3): where an issuer's signing keys are fetched. Whoever can change
/// the response can sign any token, so plain `http://` is refused except to a loopback
/// host (a local identity provider in development), which never leaves the machine.
enum JWKSURL {
    /// The URL as written, once it is an `https://` URL (or `http://` to loopback) with a
    /// valid host and port, no credentials and no fragment. A query string is allowed:
    /// some providers (Azure AD B2C) select the key set with one.
    static func validate(_ text: String) throws(ValueFormatError) -> String {
        let notURL = ValueFormatError("must be an https:// URL, got \(text.configQuoted)")
        guard let separator = text.firstRange(of: "://") else { throw notURL }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { throw notURL }
        if text.unicodeScalars.contains(where: { !$0.isASCII || $0.value <= 0x20 || $0.value == 0x7F }) {
            throw ValueFormatError("\(text.configQuoted) contains a space, control or non-ASCII character")
        }
        if text.contains("#") { throw ValueFormatError("\(text.configQuoted) must not have a fragment (#…)") }
        if text.contains("\\") { throw ValueFormatError("\(text.configQuoted) must not contain a backslash") }
        let afterScheme = text[separator.upperBound...]
        let authority = afterScheme.prefix { $0 != "/" && $0 != "?" }
        if authority.contains("@") {
            throw ValueFormatError(
                "\(text.configQuoted) must not contain credentials (user@host): they would end up in logs")
        }
        let hostEnd =
            authority.hasPrefix("[") ? (authority.firstIndex(of: "]") ?? authority.endIndex) : authority.startIndex
        var hostPart = authority
        if let colon = authority[hostEnd...].firstIndex(of: ":") {
            hostPart = authority[..<colon]
            guard let port = HostSyntax.port(authority[authority.index(after: colon)...]), port > 0 else {
                throw ValueFormatError("\(text.configQuoted): port must be a number from 1 to 65535")
            }
        }
        guard !hostPart.isEmpty else { throw ValueFormatError("\(text.configQuoted) has no host") }
        let host = try HostSyntax.parse(hostPart, in: text)
        if let problem = PercentEncoding.problem(in: afterScheme[authority.endIndex...]) {
            throw ValueFormatError("\(text.configQuoted): \(problem)")
        }
        if scheme == "http" && !HostSyntax.isLoopback(host) {
            throw ValueFormatError(
                "\(text.configQuoted) uses plain http: keys fetched without TLS can be swapped in transit, "
                    + "and then anyone can forge tokens; use https:// (http:// is accepted only for "
                    + "loopback hosts: 127.0.0.0/8, ::1, localhost)")
        }
        return text
    }
}

/// `[issuers.claims]` values: where an identity field sits in the token's JSON claims,
/// as a dotted path (`app_metadata.org_id`).
enum ClaimPath {
    private static let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-")

    /// Why `text` is not a dotted claim path, or nil.
    static func problem(in text: String) -> String? {
        let segments = text.split(separator: ".", omittingEmptySubsequences: false)
        let valid = !text.isEmpty && segments.allSatisfy { !$0.isEmpty && $0.allSatisfy { allowed.contains($0) } }
        guard !valid else { return nil }
        return "\(text.configQuoted) is not a dotted claim path: names of letters, digits, \"_\", \":\" or \"-\" "
            + "joined by \".\" (e.g. \"app_metadata.org_id\")"
    }
}

/// POSIX-portable environment variable names (`upstream_headers` `env`).
enum EnvironmentName {
    static func isValid(_ name: String) -> Bool {
        guard let first = name.first, !first.isNumber else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}

extension UpstreamURL {
    /// `http(s)://host[:port][/path]`; the path is kept without a trailing slash. Refuses
    /// userinfo (it would end up in logs), query strings and fragments (the client's
    /// query is forwarded as-is; anything else would be ambiguous) and other schemes.
    public static func parse(_ text: String) throws(ValueFormatError) -> UpstreamURL {
        let notURL = ValueFormatError("must be an http(s) URL, got \(text.configQuoted)")
        guard let separator = text.firstRange(of: "://") else { throw notURL }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { throw notURL }
        if let bad = text.unicodeScalars.first(where: { !$0.isASCII || $0.value <= 0x20 || $0.value == 0x7F }) {
            throw ValueFormatError("\(text.configQuoted) contains \(Self.name(of: bad)); percent-encode it")
        }
        if text.contains("#") { throw ValueFormatError("\(text.configQuoted) must not have a fragment (#…)") }
        if text.contains("?") {
            throw ValueFormatError(
                "\(text.configQuoted) must not have a query string; the client's query is forwarded as-is")
        }
        if text.contains("\\") { throw ValueFormatError("\(text.configQuoted) must not contain a backslash") }
        let afterScheme = text[separator.upperBound...]
        let authority = afterScheme.prefix { $0 != "/" }
        let path = afterScheme[authority.endIndex...]
        if authority.contains("@") {
            throw ValueFormatError(
                "\(text.configQuoted) must not contain credentials (user@host): they would end up in logs")
        }
        guard !authority.isEmpty else { throw ValueFormatError("\(text.configQuoted) has no host") }

        var hostPart = authority
        var port = scheme == "https" ? 443 : 80
        // In `[v6]:port` the port's colon is the first one after the bracket.
        let hostEnd =
            authority.hasPrefix("[") ? (authority.firstIndex(of: "]") ?? authority.endIndex) : authority.startIndex
        if let colon = authority[hostEnd...].firstIndex(of: ":") {
            hostPart = authority[..<colon]
            guard let number = HostSyntax.port(authority[authority.index(after: colon)...]), number > 0 else {
                throw ValueFormatError("\(text.configQuoted): port must be a number from 1 to 65535")
            }
            port = number
        }
        guard !hostPart.isEmpty else { throw ValueFormatError("\(text.configQuoted) has no host") }
        let host = try HostSyntax.parse(hostPart, in: text)

        if path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
            throw ValueFormatError("\(text.configQuoted): the path must not contain \".\" or \"..\" segments")
        }
        if let problem = PercentEncoding.problem(in: path) {
            throw ValueFormatError("\(text.configQuoted): \(problem)")
        }
        var basePath = Substring(path)
        while basePath.hasSuffix("/") { basePath = basePath.dropLast() }
        return UpstreamURL(scheme: scheme, host: host, port: port, basePath: String(basePath))
    }

    private static func name(of scalar: Unicode.Scalar) -> String {
        scalar == " " ? "a space" : scalar.isASCII ? "a control character" : "a non-ASCII character"
    }
}

/// Route paths (SPEC §6): requests are matched on their *normalised* path, so a route
/// must be written the way normalisation produces it, or it could never match (or would
/// match something other than it seems to).
enum RoutePath {
    /// Characters that survive normalisation unencoded: RFC 3986 `pchar` minus `%`.
    private static let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/")

    /// The path without its trailing slash ("/" stays "/").
    static func normalize(_ text: String) throws(ValueFormatError) -> String {
        guard text.hasPrefix("/") else {
            throw ValueFormatError("must start with \"/\", got \(text.configQuoted)")
        }
        for c in text where !allowed.contains(c) {
            let reason: String
            switch c {
            case "?": reason = "must not contain \"?\": the query string plays no part in matching"
            case "#": reason = "must not contain \"#\""
            case "%": reason = "must not contain \"%\": write the decoded character (requests are matched decoded)"
            case "\\": reason = "must not contain a backslash"
            default:
                let isControl = c.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
                reason =
                    isControl
                    ? "must not contain control characters"
                    : "must not contain \(String(c).configQuoted): requests carry it percent-encoded, so it could never match"
            }
            throw ValueFormatError("\(reason), got \(text.configQuoted)")
        }
        if text.contains("//") {
            throw ValueFormatError("must not contain repeated slashes, got \(text.configQuoted)")
        }
        // `..;x` is refused too: SPEC §6 rejects such segments in requests.
        let dotSegment = text.split(separator: "/").contains { segment in
            let name = segment.prefix { $0 != ";" }
            return name == "." || name == ".."
        }
        if dotSegment {
            throw ValueFormatError("must not contain \".\" or \"..\" segments, got \(text.configQuoted)")
        }
        return text.count > 1 && text.hasSuffix("/") ? String(text.dropLast()) : text
    }
}

/// RFC 9110 §5.6.2 tokens: header field names and methods.
enum HTTPToken {
    private static let punctuation = Set("!#$%&'*+-.^_`|~")

    static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || punctuation.contains($0)) }
    }
}

enum HostSyntax {
    /// A host as written in a listen address or URL: `[v6]`, an IPv4 address or a DNS
    /// name. Returned canonical: IPv6 without brackets, names lower-cased.
    static func parse(_ host: Substring, in text: String) throws(ValueFormatError) -> String {
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), let address = IPAddress.parse(String(host.dropFirst().dropLast())),
                !address.isIPv4
            else { throw ValueFormatError("\(text.configQuoted): \(host) is not a valid IPv6 address") }
            return address.description
        }
        if host.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
            guard let address = IPAddress.parse(String(host)) else {
                throw ValueFormatError("\(text.configQuoted): \(host) is not a valid IPv4 address")
            }
            return address.description
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        let valid =
            host.count <= 253
            && labels.allSatisfy { label in
                !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
            }
        guard valid else {
            throw ValueFormatError("\(text.configQuoted): \(host.configQuoted) is not a valid host name")
        }
        return host.lowercased()
    }

    /// Hosts whose traffic never leaves the machine: `localhost`, 127.0.0.0/8 and ::1
    /// (also written IPv4-mapped). `host` is in `parse`'s canonical form.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        guard let address = IPAddress.parse(host)?.unmapped else { return false }
        return address.isIPv4 ? address.description.hasPrefix("127.") : address.description == "::1"
    }

    /// 0–65535 written in plain digits.
    static func port(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text),
            value <= 65535
        else { return nil }
        return value
    }
}

enum PercentEncoding {
    /// Why `path` is not a valid URL path (a `%` not followed by two hex digits), or nil.
    static func problem(in path: Substring) -> String? {
        var rest = path[...]
        while let percent = rest.firstIndex(of: "%") {
            let digits = rest[rest.index(after: percent)...].prefix(2)
            guard digits.count == 2, digits.allSatisfy(\.isHexDigit) else {
                return "invalid percent-escape in the path (\"%\" must be followed by two hex digits)"
            }
            rest = rest[digits.endIndex...]
        }
        return nil
    }
}
