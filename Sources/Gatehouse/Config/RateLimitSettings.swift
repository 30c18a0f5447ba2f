/// `[rate_limits]` (SPEC §2, §5).
///
/// Rate limiting is ON by default: without the section every identity gets the SPEC
/// example's `default` policy (600 per minute, burst 100) and every client IP the
/// brute-force lock-out (20 failures per minute, blocked 5 minutes). SPEC §5 has every
/// proxied response carry the RateLimit fields, which only makes sense if a limit always
/// applies, and a gateway that lets one leaked key or one runaway script take the whole
/// upstream unless someone remembered a config section is the surprise an operator does
/// not want. Raise the limits (or set a large `default`) for load tests.
public struct RateLimitSettings: Sendable, Equatable {
    /// What one budget is counted against (`by`).
    public enum KeyBy: String, Sendable, Equatable, CaseIterable {
        /// The subject: a user's API keys and tokens share one budget.
        case subject
        /// Each credential on its own: `key:<id>` for API keys, `jwt:<jti, else sub>` for tokens.
        case credential
    }

    /// The name `default` goes by in headers, `[rate_limits.roles]` and routes' `rate_limit`.
    public static let defaultPolicyName = "default"

    public var by: KeyBy = .subject
    /// `default = { … }`: for identities whose route and role name no other policy.
    public var defaultPolicy = RateLimitPolicy(
        name: RateLimitSettings.defaultPolicyName, requests: 600, per: .seconds(60), burst: 100)
    /// `[rate_limits.policies]`: name → policy (`default` is never in here).
    public var policies: [String: RateLimitPolicy] = [:]
    /// `[rate_limits.roles]`: role → policy name, every one of them `default` or a key of `policies`.
    public var roles: [String: String] = [:]
    public var authFailures = AuthFailureSettings()

    public init() {}

    /// The policy called `name`: `default` or one of `policies`.
    public func policy(named name: String) -> RateLimitPolicy? {
        name == Self.defaultPolicyName ? defaultPolicy : policies[name]
    }
}

/// One token-bucket policy: `requests` per `per`, at most `burst` at once. Immutable, so
/// the precomputed header value and refill rate can never disagree with the numbers.
public struct RateLimitPolicy: Sendable, Equatable {
    public let name: String
    /// `q` of RateLimit-Policy: tokens added per `per`.
    public let requests: Int
    /// Whole seconds (the loader refuses fractions): `w` is an integer number of seconds.
    public let per: Duration
    /// Bucket capacity; defaults to `requests`.
    public let burst: Int
    /// `per` in seconds, as sent in `w`.
    public let windowSeconds: Int
    /// `"<name>";q=<requests>;w=<per seconds>`: identical on every response under this
    /// policy, so it is built once here rather than per request.
    public let policyHeaderValue: String
    /// Tokens added per second of monotonic time.
    public let refillPerSecond: Double

    /// The loader admits only whole seconds and counts of at least 1; for policies built
    /// in code, `per` is rounded up to whole seconds (at least 1) and `requests` and
    /// `burst` below 1 count as 1, so that no policy can divide by zero or never refill.
    public init(name: String, requests: Int, per: Duration, burst: Int? = nil) {
        let (seconds, attoseconds) = per.components
        let window = max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
        self.name = name
        self.requests = max(1, requests)
        self.per = .seconds(window)
        self.burst = max(1, burst ?? requests)
        self.windowSeconds = window
        self.policyHeaderValue = "\"\(name)\";q=\(self.requests);w=\(window)"
        self.refillPerSecond = Double(self.requests) / Double(window)
    }
}

/// `[rate_limits.auth_failures]`: per client IP, `max` failed credentials within `per`
/// block that IP for `block` (SPEC §5).
public struct AuthFailureSettings: Sendable, Equatable {
    public var max = 20
    public var per: Duration = .seconds(60)
    public var block: Duration = .seconds(300)

    public init() {}

    public init(max: Int, per: Duration, block: Duration) {
        self.max = max
        self.per = per
        self.block = block
    }
}
