/// Builds the header list sent upstream (SPEC §6), in one pass over the client's fields.
enum RequestHeaderRewriter {
    struct Context {
        var identityHeaderKeys: Set<String>
        var client: ClientAddress
        var requestID: String
        var scheme: String
    }

    static func rewrite(_ headers: [(name: String, value: String)], context: Context) -> [(name: String, value: String)]
    {
        let connectionNamed = HopByHopHeaders.namedInConnection(headers)
        var out: [(name: String, value: String)] = []
        out.reserveCapacity(headers.count + 4)
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
                // Until per-route `forward_authorization` exists, client credentials never
                // travel upstream (SPEC §6 default).
                continue
            default:
                break
            }
            if HopByHopHeaders.isHopByHop(lowercased: lower) || connectionNamed.contains(lower) { continue }
            if context.identityHeaderKeys.contains(HeaderNameKey.make(lower)) { continue }
            out.append(field)
        }
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
}
