/// RFC 9110 §7.6.1: fields that describe one connection, never forwarded across a proxy.
/// Shared by the request rewrite and the response filter so both directions agree.
enum HopByHopHeaders {
    /// Whether a lower-cased field name is hop-by-hop by definition.
    static func isHopByHop(lowercased name: String) -> Bool {
        switch name {
        case "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
            "proxy-connection":
            return true
        default:
            return name.hasPrefix("proxy-")
        }
    }

    /// The same test on a name in any case, without building a lower-cased copy: the
    /// response filter runs it on every field of every response.
    static func isHopByHop(name: String) -> Bool {
        switch name.utf8.count {
        case 2: return name.equalsASCIICaseInsensitive("te")
        case 7: return name.equalsASCIICaseInsensitive("trailer") || name.equalsASCIICaseInsensitive("upgrade")
        case 10: return name.equalsASCIICaseInsensitive("connection") || name.equalsASCIICaseInsensitive("keep-alive")
        case 17:
            return name.equalsASCIICaseInsensitive("transfer-encoding") || name.hasASCIICaseInsensitivePrefix("proxy-")
        default: return name.hasASCIICaseInsensitivePrefix("proxy-")
        }
    }

    /// Lower-cased names listed in every `Connection` field: they are hop-by-hop too.
    static func namedInConnection(_ headers: [(name: String, value: String)]) -> Set<String> {
        var named: Set<String> = []
        for (name, value) in headers where name.equalsASCIICaseInsensitive("connection") {
            forEachListToken(in: value) { token in
                // `keep-alive` names a field that is hop-by-hop anyway: no need to collect it.
                // (`close` is collected: a field literally named Close must go too.)
                if !token.equalsASCIICaseInsensitive("keep-alive") { named.insert(token.lowercased()) }
            }
        }
        return named
    }

    /// Calls `body` with each non-empty, trimmed element of a comma-separated field value.
    /// Walks the UTF-8 bytes in place: nearly every upstream response says
    /// `Connection: keep-alive`, and `split` would allocate an array for it. Commas and
    /// blanks are ASCII, so every cut falls on a scalar boundary.
    static func forEachListToken(in value: String, _ body: (Substring) -> Void) {
        let bytes = value.utf8
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let comma = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
            let token = value[start..<comma].trimmingASCIIWhitespace()
            if !token.isEmpty { body(token) }
            start = comma == bytes.endIndex ? comma : bytes.index(after: comma)
        }
    }

    /// The response fields a client may see: hop-by-hop ones and those named by
    /// `Connection` removed, order otherwise kept.
    static func filterResponse(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        let named = namedInConnection(headers)
        var kept: [(name: String, value: String)] = []
        kept.reserveCapacity(headers.count)
        for field in headers
        where !isHopByHop(name: field.name) && (named.isEmpty || !named.contains(field.name.lowercased())) {
            kept.append(field)
        }
        return kept
    }
}
