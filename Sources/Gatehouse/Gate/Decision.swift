/// What the gate decided about one request.
public enum Decision: Sendable {
    case forward(ForwardPlan)
    case deny(Denial)
}

/// A request cleared to go upstream, already rewritten.
public struct ForwardPlan: Sendable {
    public var route: RouteConfig
    /// Normalised path the client asked for (before the prefix rewrite), without query.
    public var path: String
    public var upstream: UpstreamRequest
}

/// Facts about a request settled before any rule runs; every outcome carries them.
public struct RequestFacts: Sendable {
    public var requestID: String
    public var client: ClientAddress
}
