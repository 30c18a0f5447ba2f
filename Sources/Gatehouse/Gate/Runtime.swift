/// A config compiled for serving: everything the hot path needs, computed once. A reload
/// builds a new `Runtime` and swaps it in whole; requests in flight keep the one they
/// started with.
public final class Runtime: Sendable {
    public let config: GatewayConfig
    public let router: Router
    /// nil only for runtimes built without credential setup (unit tests of unauthenticated
    /// routes); a route that needs authentication then answers 503.
    public let authenticator: Authenticator?
    /// One per route, indexed like `RouteMatch.index`.
    let authorizers: [Authorizer]
    /// Buckets and lock-outs: shared with the previous runtime across a reload.
    public let rateLimiter: RateLimiter
    public let authFailures: AuthFailureGuard
    /// Identity header names in `HeaderNameKey` form: stripped from every client request.
    let identityHeaderKeys: Set<String>
    let apiKeyHeaderKey: String
    let trustedProxies: [CIDR]
    let connectTimeoutMilliseconds: Int

    /// - Parameter previous: the runtime being replaced; its rate-limit buckets and
    ///   auth-failure lock-outs carry over, so a reload never resets anyone's budget.
    public init(config: GatewayConfig, authenticator: Authenticator? = nil, previous: Runtime? = nil) {
        self.config = config
        self.router = Router(routes: config.routes)
        self.authenticator = authenticator
        self.authorizers = Authorizer.forRoutes(of: config)
        if let previous {
            self.rateLimiter = previous.rateLimiter.reconfigured(settings: config.rateLimits, routes: config.routes)
            self.authFailures = previous.authFailures.reconfigured(settings: config.rateLimits.authFailures)
        } else {
            self.rateLimiter = RateLimiter(settings: config.rateLimits, routes: config.routes)
            self.authFailures = AuthFailureGuard(settings: config.rateLimits.authFailures)
        }
        self.identityHeaderKeys = Set(config.identityHeaders.all.map(HeaderNameKey.make))
        self.apiKeyHeaderKey = HeaderNameKey.make(config.apiKeys.header)
        self.trustedProxies = config.server.trustedProxies
        self.connectTimeoutMilliseconds = Int(config.server.upstreamConnectTimeout.milliseconds)
    }
}

/// Header names compared the way a spoofing client cannot dodge: case-folded, with `_`
/// treated as `-` (some upstream frameworks map both spellings to the same variable).
enum HeaderNameKey {
    static func make(_ name: String) -> String {
        var key = name.lowercased()
        if key.utf8.contains(UInt8(ascii: "_")) { key = key.replacingUnderscores() }
        return key
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        String(decoding: utf8.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }, as: UTF8.self)
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
