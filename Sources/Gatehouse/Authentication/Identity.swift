/// A verified caller (SPEC vocabulary: "identity").
public struct Identity: Sendable, Equatable {
    public enum Method: String, Sendable, Equatable {
        case jwt
        case apiKey = "api_key"
    }

    public var method: Method
    public var subject: String
    public var email: String?
    public var org: String?
    public var role: String?
    /// Scopes the credential itself grants (token scope claim / key scopes), before any
    /// role intersection. Empty when the credential states none.
    public var scopes: [String]
    /// Whether the credential carried a scope claim at all (a role-only token gets the
    /// role's scopes; SPEC §4).
    public var hasScopeClaim: Bool
    /// API key id (public part of the key).
    public var keyID: String?
    /// JWT only.
    public var issuer: String?
    public var jti: String?
    /// `iat` (seconds since the epoch) when present: subject-wide revocations compare it.
    public var issuedAt: Int64?
    /// `exp` for tokens, the key's expiry for API keys: caches never outlive it.
    public var expiresAt: Int64?

    public init(
        method: Method,
        subject: String,
        email: String? = nil,
        org: String? = nil,
        role: String? = nil,
        scopes: [String] = [],
        hasScopeClaim: Bool = false,
        keyID: String? = nil,
        issuer: String? = nil,
        jti: String? = nil,
        issuedAt: Int64? = nil,
        expiresAt: Int64? = nil
    ) {
        self.method = method
        self.subject = subject
        self.email = email
        self.org = org
        self.role = role
        self.scopes = scopes
        self.hasScopeClaim = hasScopeClaim
        self.keyID = keyID
        self.issuer = issuer
        self.jti = jti
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }
}
