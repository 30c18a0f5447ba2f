/// Why a presented credential was refused. `reason` is what the client sees (every
/// API-key failure is `invalid_api_key`); `logReason` is what the denial log keeps
/// (`unknown_api_key`, `api_key_mismatch`, `api_key_revoked`, `api_key_expired`, or the
/// same as `reason`). Nothing here ever holds a token or a secret.
public struct AuthenticationFailure: Error, Sendable, Equatable {
    public var reason: DenialReason
    public var logReason: String
    /// One sentence for the operator; never shown to the client.
    public var detail: String
    /// What was learnt before the refusal, for the denial log (never a secret).
    public var issuer: String?
    public var subject: String?
    public var jti: String?
    public var keyID: String?
    /// 503 `keys_unavailable` instead of 401: the issuer's keys were never loaded.
    public var keysUnavailable: Bool

    public init(
        _ reason: DenialReason,
        logReason: String? = nil,
        detail: String,
        issuer: String? = nil,
        subject: String? = nil,
        jti: String? = nil,
        keyID: String? = nil,
        keysUnavailable: Bool = false
    ) {
        self.reason = reason
        self.logReason = logReason ?? reason.rawValue
        self.detail = detail
        self.issuer = issuer
        self.subject = subject
        self.jti = jti
        self.keyID = keyID
        self.keysUnavailable = keysUnavailable
    }
}
