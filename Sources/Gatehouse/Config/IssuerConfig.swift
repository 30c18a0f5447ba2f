/// JWS algorithms Gatehouse can verify. `none` is deliberately not representable.
public enum JWTAlgorithm: String, Sendable, Equatable, CaseIterable {
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"
    case es256 = "ES256"
    case es384 = "ES384"
    case hs256 = "HS256"
    case hs384 = "HS384"
    case hs512 = "HS512"
    case edDSA = "EdDSA"

    /// Whether the algorithm is keyed by a shared secret (HS*) rather than a public key.
    public var isSymmetric: Bool { self == .hs256 || self == .hs384 || self == .hs512 }
}

/// A PEM public key file, optionally pinned to a `kid` (SPEC §3 key selection).
public struct KeyFileReference: Sendable, Equatable {
    /// Absolute path.
    public var path: String
    public var kid: String?

    public init(path: String, kid: String? = nil) {
        self.path = path
        self.kid = kid
    }
}

/// Where each identity field comes from in the token's claims: dotted JSON paths.
public struct ClaimMapping: Sendable, Equatable {
    public var subject = "sub"
    public var email = "email"
    public var org = "org"
    public var role = "role"
    /// A space-separated string or an array of strings.
    public var scopes = "scope"

    public init() {}
}

/// One trusted token issuer (`[[issuers]]`).
public struct IssuerConfig: Sendable, Equatable {
    /// Exact match on `iss`.
    public var issuer: String
    /// A token's `aud` must contain one of these (MCP routes bind their own resource instead).
    public var audiences: [String]
    public var algorithms: [JWTAlgorithm]
    public var keys: [KeyFileReference] = []
    /// Absolute path of a JWKS document on disk.
    public var jwksFile: String?
    /// JWKS fetched with libcurl at start-up and every `jwksRefresh`.
    public var jwksURL: String?
    public var jwksRefresh: Duration = .seconds(600)
    /// Absolute path of a file holding the raw HMAC secret (one trailing newline ignored).
    public var hs256SecretFile: String?
    public var leeway: Duration = .seconds(30)
    public var maxTokenLifetime: Duration?
    public var requireClaims: [String] = ["sub", "exp"]
    public var claims = ClaimMapping()

    public init(issuer: String, audiences: [String], algorithms: [JWTAlgorithm]) {
        self.issuer = issuer
        self.audiences = audiences
        self.algorithms = algorithms
    }
}

/// `[api_keys]`.
public struct APIKeySettings: Sendable, Equatable {
    /// Absolute path of the SQLite store (API keys and revocations).
    public var store: String
    /// Header carrying a key (also accepted as `Authorization: Bearer <key>`).
    public var header = "X-Api-Key"
    /// Key prefix: `<prefix>_<id>_<secret>`.
    public var prefix = "ghk"

    public init(store: String) {
        self.store = store
    }
}

/// A header Gatehouse adds to requests for one route's upstream (e.g. the upstream's own
/// credential). The value is read at config load; it is never logged.
public struct UpstreamHeader: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        case environment(String)
        case file(String)
    }

    public var name: String
    public var source: Source
    /// The resolved value.
    public var value: String

    public init(name: String, source: Source, value: String) {
        self.name = name
        self.source = source
        self.value = value
    }
}
