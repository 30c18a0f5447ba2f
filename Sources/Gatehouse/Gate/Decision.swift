/// What the gate decided about one request.
public enum Decision: Sendable {
    case forward(ForwardPlan)
    case deny(Denial)
    /// 503 `keys_unavailable`: the token's issuer has never loaded its keys, so the
    /// gateway cannot tell a good token from a bad one (not the client's fault).
    case keysUnavailable(route: String, path: String, detail: String)
}

/// A request cleared to go upstream, already rewritten.
public struct ForwardPlan: Sendable {
    public var route: RouteConfig
    /// Normalised path the client asked for (before the prefix rewrite), without query.
    public var path: String
    public var upstream: UpstreamRequest
    /// The verified caller; nil on `auth = "none"` routes and for anonymous requests on
    /// `auth = "optional"` routes. Its `scopes` are the effective (role-intersected) ones.
    public var identity: Identity?
    /// What the route demanded of this method (for `gatehouse explain` and logs).
    public var requiredScopes: [String] = []
    /// Rate-limit fields for the response (`RateLimit-Policy`, `RateLimit`).
    public var responseHeaders: [(name: String, value: String)] = []
    /// The rate-limit policy that admitted the request, when one applied.
    public var ratePolicy: String?
}

/// Facts about a request settled before any rule runs; every outcome carries them.
public struct RequestFacts: Sendable {
    public var requestID: String
    public var client: ClientAddress
}
