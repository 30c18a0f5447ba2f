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

    /// Lower-cased names listed in every `Connection` field: they are hop-by-hop too.
    static func namedInConnection(_ headers: [(name: String, value: String)]) -> Set<String> {
        var named: Set<String> = []
        for (name, value) in headers where name.lowercased() == "connection" {
            for token in value.split(separator: ",") {
                let trimmed = token.trimmingASCIIWhitespace().lowercased()
                if !trimmed.isEmpty { named.insert(trimmed) }
            }
        }
        return named
    }

    /// The response fields a client may see: hop-by-hop ones and those named by
    /// `Connection` removed, order otherwise kept.
    static func filterResponse(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        let named = namedInConnection(headers)
        return headers.filter { field in
            let lower = field.name.lowercased()
            return !isHopByHop(lowercased: lower) && !named.contains(lower)
        }
    }
}

extension StringProtocol {
    /// Trims spaces and horizontal tabs, the only whitespace HTTP allows around values.
    func trimmingASCIIWhitespace() -> Substring {
        var s = self[...]
        while let first = s.first, first == " " || first == "\t" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return Substring(s)
    }
}
