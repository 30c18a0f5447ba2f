import Crypto

/// One JSON line per refusal Gatehouse produces (SPEC §8). Never holds a token, an API-key
/// secret, a key hash or an upstream credential: tokens appear only as `token_sha256`,
/// the first 16 hex characters of their SHA-256.
public struct DenialRecord: JSONLogEntry {
    public var requestID: String
    public var clientIP: String
    public var method: String
    public var path: String
    public var route: String?
    public var status: Int
    public var reason: String
    public var identity: Identity?
    public var authentication: AuthenticationFailure?
    public var tokenFingerprint: String?
    public var requiredScopes: [String]?
    public var grantedScopes: [String]?
    public var policy: String?
    public var detail: String

    public init(
        requestID: String,
        clientIP: String,
        method: String,
        path: String,
        route: String?,
        status: Int,
        reason: String,
        identity: Identity?,
        authentication: AuthenticationFailure?,
        tokenFingerprint: String?,
        requiredScopes: [String]?,
        grantedScopes: [String]?,
        policy: String?,
        detail: String
    ) {
        self.requestID = requestID
        self.clientIP = clientIP
        self.method = method
        self.path = path
        self.route = route
        self.status = status
        self.reason = reason
        self.identity = identity
        self.authentication = authentication
        self.tokenFingerprint = tokenFingerprint
        self.requiredScopes = requiredScopes
        self.grantedScopes = grantedScopes
        self.policy = policy
        self.detail = detail
    }

    public func jsonLine(timestamp: String) -> String {
        var json = JSONObjectWriter()
        json.field("ts", timestamp)
        json.field("request_id", requestID)
        json.field("client_ip", clientIP)
        json.field("method", method)
        json.field("path", path)
        json.field("route", route)
        json.field("status", status)
        json.field("reason", reason)
        let method: String? = identity?.method.rawValue ?? authenticationMethod
        json.field("auth_method", method)
        json.field("subject", identity?.subject ?? authentication?.subject)
        json.field("email", identity?.email)
        json.field("org", identity?.org)
        json.field("role", identity?.role)
        json.field("key_id", identity?.keyID ?? authentication?.keyID)
        json.field("issuer", identity?.issuer ?? authentication?.issuer)
        json.field("jti", identity?.jti ?? authentication?.jti)
        json.field("token_sha256", tokenFingerprint)
        json.field("required_scopes", requiredScopes)
        json.field("granted_scopes", grantedScopes)
        json.field("policy", policy)
        json.field("detail", detail)
        return json.finish()
    }

    /// What kind of credential failed, when no identity was established.
    private var authenticationMethod: String? {
        guard authentication != nil else { return nil }
        if authentication?.keyID != nil || authentication?.logReason.contains("api_key") == true { return "api_key" }
        return tokenFingerprint != nil ? "jwt" : nil
    }

    /// First 16 hex characters of SHA-256(token): enough to correlate, useless to replay.
    public static func fingerprint(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).prefix(8).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

/// The denial log file: buffered off the request path, nothing dropped, rotated by size,
/// reopened on SIGHUP (logrotate), flushed on shutdown.
public typealias DenialLog = JSONLinesLog<DenialRecord>

extension JSONLinesLog where Entry == DenialRecord {
    /// `path` nil = `denials = "off"`.
    public convenience init(path: String?, maxBytes: Int64, keep: Int) throws {
        self.init(writer: try path.map { try LineWriter(.file($0), rotation: .init(maxBytes: maxBytes, keep: keep)) })
    }
}
