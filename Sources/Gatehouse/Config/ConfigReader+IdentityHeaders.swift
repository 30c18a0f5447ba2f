import TOMLKit

// `[identity_headers]`: names Gatehouse strips from every client request and then sets
// from the verified identity. A bad name here is a security problem, not a cosmetic one.
extension ConfigReader {
    /// Config key → model field, in SPEC order. Computed: key paths are not Sendable.
    static var identityFields: [(key: String, field: WritableKeyPath<IdentityHeaderNames, String>)] {
        [
            ("subject", \.subject), ("email", \.email), ("org", \.org), ("role", \.role), ("scopes", \.scopes),
            ("auth_method", \.authMethod), ("key_id", \.keyID),
        ]
    }

    /// Names an identity header may not take, lower-cased with `_` read as `-` (clients'
    /// `_` variants are stripped too, SPEC §6). Taking one would strip or overwrite a field
    /// the proxy itself relies on: framing, routing, credentials, forwarding or tracing.
    static let reservedHeaderNames: Set<String> = [
        "host", "authorization", "cookie", "set-cookie", "content-length", "content-type", "content-encoding",
        "expect", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip",
        "x-request-id", "traceparent", "tracestate", "x-api-key", "www-authenticate", "mcp-session-id",
        "mcp-method", "mcp-name", "ratelimit", "ratelimit-policy", "retry-after",
    ]

    mutating func readIdentityHeaders(_ root: TOMLTable) -> IdentityHeaderNames {
        var names = IdentityHeaderNames()
        let path = "identity_headers"
        guard let table = table(root, path, at: "") else { return names }
        let fields = Self.identityFields
        checkKeys(table, at: path, known: fields.map(\.key))

        var written: Set<String> = []
        for (key, field) in fields {
            guard let name = string(table, key, at: path) else { continue }
            let keyPath = KeyPath.join(path, key)
            let folded = name.lowercased().replacingUnderscores()
            if !HTTPToken.isValid(name) {
                error(keyPath, "\(name.configQuoted) is not a valid HTTP header name")
            } else if Self.reservedHeaderNames.contains(folded) || HopByHopHeaders.isHopByHop(lowercased: folded) {
                error(keyPath, "\(name.configQuoted) is reserved: the proxy sets or relies on it itself")
            } else {
                names[keyPath: field] = name
                written.insert(key)
            }
        }

        // Two fields on one header would let one claim overwrite another.
        for (index, (key, field)) in fields.enumerated() {
            let name = names[keyPath: field].lowercased().replacingUnderscores()
            guard
                let earlier = fields[..<index].first(where: {
                    names[keyPath: $0.field].lowercased().replacingUnderscores() == name
                })
            else { continue }
            let (reported, other) = written.contains(key) ? (key, earlier.key) : (earlier.key, key)
            error(
                KeyPath.join(path, reported),
                "\(names[keyPath: field].configQuoted) is also used by identity_headers.\(other)")
        }
        return names
    }
}

extension ConfigReader {
    /// A header name the way Gatehouse compares it when stripping client headers:
    /// lower-cased, `_` read as `-` (`X_User_Id` is `x-user-id`).
    static func foldedHeaderName(_ name: String) -> String {
        name.lowercased().replacingUnderscores()
    }
}

extension String {
    /// Header names compared the way Gatehouse strips them: `X_User_Id` is `X-User-Id`.
    fileprivate func replacingUnderscores() -> String {
        String(map { $0 == "_" ? "-" : $0 })
    }
}
