/// Builds the header list sent upstream (SPEC §6), in one pass over the client's fields.
enum RequestHeaderRewriter {
    struct Context {
        var identityHeaderKeys: Set<String>
        var identityHeaderNames: IdentityHeaderNames
        var apiKeyHeaderKey: String
        var client: ClientAddress
        var requestID: String
        var scheme: String
        var identity: Identity?
        var forwardAuthorization: Bool
        var upstreamHeaders: [UpstreamHeader]
    }

    static func rewrite(_ headers: [(name: String, value: String)], context: Context) -> [(name: String, value: String)]
    {
        let connectionNamed = HopByHopHeaders.namedInConnection(headers)
        let replacedByGateway = Set(context.upstreamHeaders.map { $0.name.lowercased() })
        var out: [(name: String, value: String)] = []
        out.reserveCapacity(headers.count + 12)
        var host: String?
        var forwardedHost: String?
        var forwardedProto: String?
        for field in headers {
            let lower = field.name.lowercased()
            switch lower {
            case "host":
                if host == nil { host = field.value }
                continue
            // libcurl frames the body itself; a stale Expect would stall the upload.
            case "content-length", "expect":
                continue
            case "x-forwarded-for", "x-request-id":
                continue
            case "x-forwarded-host":
                if forwardedHost == nil { forwardedHost = field.value }
                continue
            case "x-forwarded-proto":
                if forwardedProto == nil { forwardedProto = field.value }
                continue
            case "authorization":
                // Client credentials never travel upstream unless the route asks (SPEC §6).
                if !context.forwardAuthorization { continue }
            default:
                break
            }
            if HopByHopHeaders.isHopByHop(lowercased: lower) || connectionNamed.contains(lower) { continue }
            let key = HeaderNameKey.make(lower)
            if context.identityHeaderKeys.contains(key) { continue }
            if key == context.apiKeyHeaderKey && !context.forwardAuthorization { continue }
            if replacedByGateway.contains(lower) { continue }
            out.append(field)
        }
        if let identity = context.identity { appendIdentity(identity, names: context.identityHeaderNames, to: &out) }
        for header in context.upstreamHeaders { out.append((header.name, header.value)) }
        out.append(("X-Forwarded-For", context.client.forwardedFor))
        let proto = context.client.peerIsTrusted ? (forwardedProto ?? context.scheme) : context.scheme
        out.append(("X-Forwarded-Proto", proto))
        if let fromProxy = forwardedHost, context.client.peerIsTrusted {
            out.append(("X-Forwarded-Host", fromProxy))
        } else if let host {
            out.append(("X-Forwarded-Host", host))
        }
        out.append(("X-Request-Id", context.requestID))
        return out
    }

    /// The verified identity, one configured header per known field.
    static func appendIdentity(
        _ identity: Identity,
        names: IdentityHeaderNames,
        to out: inout [(name: String, value: String)]
    ) {
        out.append((names.subject, identity.subject))
        if let email = identity.email { out.append((names.email, email)) }
        if let org = identity.org { out.append((names.org, org)) }
        if let role = identity.role { out.append((names.role, role)) }
        out.append((names.scopes, identity.scopes.joined(separator: " ")))
        out.append((names.authMethod, identity.method.rawValue))
        if let keyID = identity.keyID { out.append((names.keyID, keyID)) }
    }

    /// Whether a value may go into a header as is: no control bytes (CR/LF would split
    /// the request upstream). Claims are attacker-influenced text.
    static func isSafeHeaderValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7F }
    }

    static func identityIsSafe(_ identity: Identity) -> Bool {
        let fields = [identity.subject, identity.email, identity.org, identity.role, identity.keyID].compactMap { $0 }
        return fields.allSatisfy(isSafeHeaderValue) && identity.scopes.allSatisfy(isSafeHeaderValue)
    }
}
