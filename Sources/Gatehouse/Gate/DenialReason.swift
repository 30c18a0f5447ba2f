/// Every refusal Gatehouse itself produces (SPEC §7). The raw value is the `reason`
/// written in the error body and the denial log.
public enum DenialReason: String, Sendable, CaseIterable {
    case invalidPath = "invalid_path"
    case ambiguousCredentials = "ambiguous_credentials"
    case malformedRequest = "malformed_request"
    case missingCredentials = "missing_credentials"
    case malformedToken = "malformed_token"
    case unsupportedAlgorithm = "unsupported_algorithm"
    case unknownKey = "unknown_key"
    case invalidSignature = "invalid_signature"
    case tokenExpired = "token_expired"
    case tokenNotYetValid = "token_not_yet_valid"
    case invalidIssuer = "invalid_issuer"
    case invalidAudience = "invalid_audience"
    case missingClaim = "missing_claim"
    case tokenTooOld = "token_too_old"
    case tokenRevoked = "token_revoked"
    case invalidAPIKey = "invalid_api_key"
    case insufficientScope = "insufficient_scope"
    case roleNotAllowed = "role_not_allowed"
    case noRoute = "no_route"
    case methodNotAllowed = "method_not_allowed"
    case bodyTooLarge = "body_too_large"
    case headersTooLarge = "headers_too_large"
    case rateLimited = "rate_limited"
    case clientBlocked = "client_blocked"

    public var status: Int {
        switch self {
        case .invalidPath, .ambiguousCredentials, .malformedRequest: 400
        case .missingCredentials, .malformedToken, .unsupportedAlgorithm, .unknownKey, .invalidSignature,
            .tokenExpired, .tokenNotYetValid, .invalidIssuer, .invalidAudience, .missingClaim, .tokenTooOld,
            .tokenRevoked, .invalidAPIKey:
            401
        case .insufficientScope, .roleNotAllowed: 403
        case .noRoute: 404
        case .methodNotAllowed: 405
        case .bodyTooLarge, .headersTooLarge: 413
        case .rateLimited, .clientBlocked: 429
        }
    }

    /// The `error` member of the body: one per status.
    public var error: String {
        switch status {
        case 400: "invalid_request"
        case 401: "invalid_token"
        case 403: "insufficient_scope"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 413: "request_too_large"
        default: "rate_limited"
        }
    }
}
