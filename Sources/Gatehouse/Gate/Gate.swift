/// The request pipeline of SPEC §3–6 as a pure function: normalise → route → method →
/// plan the upstream request. No sockets, no threads, no curl: the server, the tests and
/// `gatehouse explain` all run exactly this code.
public struct Gate: Sendable {
    public let runtime: Runtime

    public init(runtime: Runtime) {
        self.runtime = runtime
    }

    /// Facts every outcome needs (request id, real client address), settled first so
    /// that even a refused request is logged and answered with them.
    public func facts(for request: IncomingRequest) -> RequestFacts {
        var forwardedFor: [String] = []
        var requestIDCandidate: String?
        for field in request.headers {
            switch field.name.count {
            case 15 where field.name.lowercased() == "x-forwarded-for": forwardedFor.append(field.value)
            case 12 where requestIDCandidate == nil && field.name.lowercased() == "x-request-id":
                requestIDCandidate = field.value
            default: break
            }
        }
        let client = ClientAddress.resolve(
            peer: request.peer,
            forwardedFor: forwardedFor,
            trustedProxies: runtime.trustedProxies
        )
        return RequestFacts(requestID: RequestID.accepting(requestIDCandidate), client: client)
    }

    public func decide(_ request: IncomingRequest, facts: RequestFacts) -> Decision {
        let target: NormalizedTarget
        switch PathNormalizer.normalize(target: request.target) {
        case .success(let normalized):
            target = normalized
        case .failure(.invalidPath):
            return .deny(
                Denial(
                    reason: .invalidPath, path: Self.rawPath(request.target), detail: "path refused by normalisation")
            )
        case .failure(.malformedRequest):
            return .deny(
                Denial(
                    reason: .malformedRequest,
                    path: Self.rawPath(request.target),
                    detail: "request target is not origin-form (/path?query)"
                )
            )
        }

        guard let match = runtime.router.match(path: target.path) else {
            return .deny(Denial(reason: .noRoute, path: target.path, detail: "no route matches \(target.path)"))
        }
        let route = match.route
        guard route.allows(method: request.method) else {
            return .deny(
                Denial(
                    reason: .methodNotAllowed,
                    headers: [("Allow", route.allowHeaderValue)],
                    route: route.name,
                    path: target.path,
                    detail: "route \(route.name) does not allow \(request.method)"
                )
            )
        }

        let headers = RequestHeaderRewriter.rewrite(
            request.headers,
            context: .init(
                identityHeaderKeys: runtime.identityHeaderKeys,
                client: facts.client,
                requestID: facts.requestID,
                scheme: request.scheme
            )
        )
        var url = route.upstream.origin + match.upstreamPath
        if let query = target.query {
            url += "?"
            url += query
        }
        let upstream = UpstreamRequest(
            method: request.method,
            url: url,
            headers: headers,
            body: request.body,
            connectTimeoutMilliseconds: runtime.connectTimeoutMilliseconds
        )
        return .forward(ForwardPlan(route: route, path: target.path, upstream: upstream))
    }

    /// The path part of a raw target, for logging a target that could not be normalised.
    static func rawPath(_ target: String) -> String {
        guard let question = target.firstIndex(of: "?") else { return target }
        return String(target[..<question])
    }
}
