/// The validated, typed form of `proxy.conf` (SPEC §2). Produced only by `ConfigLoader`,
/// so every value here has already passed validation: paths are absolute, durations
/// positive, route paths normalised, upstreams parsed.
public struct GatewayConfig: Sendable, Equatable {
    /// Absolute path of the file this was loaded from (nil for an in-memory config).
    public var sourcePath: String?
    public var server: ServerSettings
    public var admin: AdminSettings
    public var logs: LogSettings
    public var identityHeaders: IdentityHeaderNames
    public var issuers: [IssuerConfig]
    /// Always present: the key store also holds token revocations.
    public var apiKeys: APIKeySettings
    /// `[roles]`: role name → the scopes it may hold, in config order (SPEC §4). nil when
    /// the table is absent, which differs from an empty table: without one, credentials'
    /// scopes are used as they are; with one, a role it does not list holds no scopes.
    public var roles: [String: [String]]?
    public var routes: [RouteConfig]
    /// `[rate_limits]`; defaults (limits on) when the section is absent.
    public var rateLimits = RateLimitSettings()

    public init(
        sourcePath: String? = nil,
        server: ServerSettings = .init(),
        admin: AdminSettings = .init(),
        logs: LogSettings = .init(),
        identityHeaders: IdentityHeaderNames = .init(),
        issuers: [IssuerConfig] = [],
        apiKeys: APIKeySettings = APIKeySettings(store: "data/keys.db"),
        roles: [String: [String]]? = nil,
        routes: [RouteConfig]
    ) {
        self.sourcePath = sourcePath
        self.server = server
        self.admin = admin
        self.logs = logs
        self.identityHeaders = identityHeaders
        self.issuers = issuers
        self.apiKeys = apiKeys
        self.roles = roles
        self.routes = routes
    }
}

/// `host:port` as written in a `listen` key. IPv6 hosts are written `[::1]:8080`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public struct ServerSettings: Sendable, Equatable {
    public var listen = ListenAddress(host: "0.0.0.0", port: 8080)
    public var publicURL: String?
    /// Both `tls_cert` and `tls_key` set: the public listener speaks HTTPS (TLS 1.2+).
    public var tls: TLSFiles?
    public var trustedProxies: [CIDR] = [CIDR.parse("127.0.0.1/32")].compactMap { $0 }
    public var maxHeaderBytes = 16_384
    public var maxBodyBytes: Int64 = 10 * 1024 * 1024
    public var headerTimeout: Duration = .seconds(10)
    public var upstreamConnectTimeout: Duration = .seconds(5)
    public var upstreamResponseTimeout: Duration = .seconds(30)
    public var streamIdleTimeout: Duration = .seconds(300)
    public var shutdownGrace: Duration = .seconds(30)
    /// NIO event loops; 0 = one per core. Not in SPEC §2: an operator tuning knob.
    public var eventLoops = 0
    /// libcurl multi threads; 0 = automatic (1 on up to 4 cores, else cores / 4).
    public var upstreamThreads = 0

    public init() {}
}

/// PEM files of the HTTPS listener (absolute paths).
public struct TLSFiles: Sendable, Equatable {
    /// The certificate chain, leaf first.
    public var certificate: String
    public var privateKey: String

    public init(certificate: String, privateKey: String) {
        self.certificate = certificate
        self.privateKey = privateKey
    }
}

public struct AdminSettings: Sendable, Equatable {
    /// nil = no admin listener (`listen = "off"`).
    public var listen: ListenAddress? = ListenAddress(host: "127.0.0.1", port: 9090)

    public init() {}
}

public enum LogDestination: Sendable, Equatable {
    case off
    case stdout
    case file(String)
}

public enum LogLevel: String, Sendable, Equatable, CaseIterable {
    case trace, debug, info, notice, warning, error, critical
}

public struct LogSettings: Sendable, Equatable {
    public var access: LogDestination = .stdout
    /// Absolute path of the denial log, or nil when `denials = "off"`.
    public var denials: String?
    public var denialsMaxBytes: Int64 = 100 * 1024 * 1024
    public var denialsKeep = 10
    public var level: LogLevel = .info

    public init() {}
}

/// Header names carrying the verified identity upstream (SPEC §2 `[identity_headers]`).
/// Every one of them is also stripped from client requests, on every route.
public struct IdentityHeaderNames: Sendable, Equatable {
    public var subject = "X-User-Id"
    public var email = "X-User-Email"
    public var org = "X-Org-Id"
    public var role = "X-User-Role"
    public var scopes = "X-User-Scopes"
    public var authMethod = "X-Auth-Method"
    public var keyID = "X-Api-Key-Id"

    public init() {}

    public var all: [String] { [subject, email, org, role, scopes, authMethod, keyID] }
}

public enum AuthMode: String, Sendable, Equatable {
    case required, optional, none
}

/// An upstream base URL, split once at load time so the hot path only concatenates.
public struct UpstreamURL: Sendable, Equatable, CustomStringConvertible {
    public var scheme: String {  // "http" | "https"
        didSet { origin = Self.origin(scheme, host, port) }
    }
    public var host: String {  // IPv6 without brackets
        didSet { origin = Self.origin(scheme, host, port) }
    }
    public var port: Int {
        didSet { origin = Self.origin(scheme, host, port) }
    }
    /// Path without a trailing slash; "" for the root.
    public var basePath: String
    /// `scheme://host:port` (brackets around IPv6 hosts), built once: every forwarded
    /// request starts its URL with it.
    public private(set) var origin: String

    public init(scheme: String, host: String, port: Int, basePath: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.basePath = basePath
        self.origin = Self.origin(scheme, host, port)
    }

    private static func origin(_ scheme: String, _ host: String, _ port: Int) -> String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(h):\(port)"
    }

    public var description: String { origin + (basePath.isEmpty ? "/" : basePath) }
}

public struct RouteConfig: Sendable, Equatable {
    public var name: String
    /// Normalised prefix: starts with "/", no trailing slash unless it is "/".
    public var path: String
    /// Upper-case methods, or nil for any method.
    public var methods: [String]?
    public var upstream: UpstreamURL
    public var auth: AuthMode
    /// Pass the client's `Authorization` / API-key header upstream (default: never).
    public var forwardAuthorization: Bool
    /// Credentials Gatehouse itself sends to this route's upstream.
    public var upstreamHeaders: [UpstreamHeader]
    /// Scopes a caller must ALL hold, on every method (SPEC §4).
    public var scopes: [String]
    /// The caller's role must be one of these; nil = any role, or none.
    public var roles: [String]?
    /// Upper-case method → scopes needed on top of `scopes` for that method.
    public var methodScopes: [String: [String]]
    /// `rate_limit`: a policy of `[rate_limits]` (`default` or one of its `policies`)
    /// counted as a budget of its own on this route; nil = the identity's usual policy.
    public var rateLimit: String? = nil

    public init(
        name: String,
        path: String,
        methods: [String]? = nil,
        upstream: UpstreamURL,
        auth: AuthMode = .required,
        forwardAuthorization: Bool = false,
        upstreamHeaders: [UpstreamHeader] = [],
        scopes: [String] = [],
        roles: [String]? = nil,
        methodScopes: [String: [String]] = [:]
    ) {
        self.name = name
        self.path = path
        self.methods = methods
        self.upstream = upstream
        self.auth = auth
        self.forwardAuthorization = forwardAuthorization
        self.upstreamHeaders = upstreamHeaders
        self.scopes = scopes
        self.roles = roles
        self.methodScopes = methodScopes
    }
}
