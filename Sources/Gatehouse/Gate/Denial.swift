/// A request Gatehouse refuses itself, with what the response and the denial log need.
public struct Denial: Sendable, Equatable {
    public var reason: DenialReason
    /// Extra response fields (`Allow`, `WWW-Authenticate`, `Retry-After`, …).
    public var headers: [(name: String, value: String)]
    /// The matched route's name, when routing got that far.
    public var route: String?
    /// Normalised path, or the raw one when normalisation itself refused it; no query.
    public var path: String
    /// One sentence for the operator reading the denial log; never shown to the client.
    public var detail: String
    /// The credential failure behind a 401, with the finer log reason.
    public var authentication: AuthenticationFailure?
    /// Who was refused, when they authenticated before being refused.
    public var identity: Identity?
    /// `token_sha256` of the denial log when a JWT was presented (never the token).
    public var tokenFingerprint: String?
    /// Authorization refusals: what the route needed and what the caller had.
    public var requiredScopes: [String]?
    public var grantedScopes: [String]?
    /// Rate-limit refusals: the policy that refused.
    public var policy: String?

    public init(
        reason: DenialReason,
        headers: [(name: String, value: String)] = [],
        route: String? = nil,
        path: String,
        detail: String,
        authentication: AuthenticationFailure? = nil,
        identity: Identity? = nil
    ) {
        self.reason = reason
        self.headers = headers
        self.route = route
        self.path = path
        self.detail = detail
        self.authentication = authentication
        self.identity = identity
    }

    /// The reason the denial log records (finer than the client's for API keys).
    public var logReason: String { authentication?.logReason ?? reason.rawValue }

    public static func == (lhs: Denial, rhs: Denial) -> Bool {
        lhs.reason == rhs.reason && lhs.route == rhs.route && lhs.path == rhs.path && lhs.detail == rhs.detail
            && lhs.headers.elementsEqual(rhs.headers, by: { $0.name == $1.name && $0.value == $1.value })
    }
}
