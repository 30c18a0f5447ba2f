/// Per-identity rate limits (SPEC §5): one token bucket per (identity key, policy name).
///
/// - The policy of a request is the route's `rate_limit` if set, else the identity's
///   role's policy (`[rate_limits.roles]`), else `default`; `policy(forRoute:role:)`
///   answers from tables built once here.
/// - The policy NAME is part of the bucket key, so a route with its own `rate_limit` has a
///   budget separate from the identity's usual one, and two routes naming the same
///   policy share one budget ("per (identity key, policy)").
/// - Requests without an identity (anonymous requests on `auth = "optional"` / `"none"`
///   routes) have no bucket: the caller skips the limiter for them.
/// - Buckets live in a `ShardedTable` (one bucket per key, limits exact under any
///   number of threads; see there) and are dropped once full again, so memory follows
///   the identities active within about `burst / rate` seconds, not all ever seen.
/// - A config reload builds a new limiter with `reconfigured(settings:routes:)`, which
///   keeps the buckets: a SIGHUP must not hand every client a fresh burst.
public final class RateLimiter: Sendable {
    public let settings: RateLimitSettings
    /// Route name → its `rate_limit` policy; routes without one are absent.
    private let routePolicies: [String: RateLimitPolicy]
    /// Role → its policy, from `[rate_limits.roles]`.
    private let rolePolicies: [String: RateLimitPolicy]
    private let buckets: ShardedTable<BucketKey, TokenBucket>

    public static let defaultShardCount = 64

    /// `routes` supply each route's `rate_limit`; a name that is not a policy (only
    /// possible for a config that bypassed the loader) falls back to `default`.
    public convenience init(settings: RateLimitSettings, routes: [RouteConfig], shardCount: Int = defaultShardCount) {
        self.init(settings: settings, routes: routes, buckets: ShardedTable(shardCount: shardCount))
    }

    private init(settings: RateLimitSettings, routes: [RouteConfig], buckets: ShardedTable<BucketKey, TokenBucket>) {
        self.settings = settings
        var routePolicies: [String: RateLimitPolicy] = [:]
        for route in routes {
            guard let name = route.rateLimit else { continue }
            routePolicies[route.name] = settings.policy(named: name) ?? settings.defaultPolicy
        }
        self.routePolicies = routePolicies
        self.rolePolicies = settings.roles.mapValues { settings.policy(named: $0) ?? settings.defaultPolicy }
        self.buckets = buckets
    }

    /// A limiter for a reloaded config that keeps this one's buckets. A bucket whose
    /// policy changed is refilled and capped by the new numbers on its next request.
    public func reconfigured(settings: RateLimitSettings, routes: [RouteConfig]) -> RateLimiter {
        RateLimiter(settings: settings, routes: routes, buckets: buckets)
    }

    // MARK: Selection

    /// The policy for a request on route `route` (its name) by an identity with `role`.
    public func policy(forRoute route: String?, role: String?) -> RateLimitPolicy {
        if let route, let policy = routePolicies[route] { return policy }
        if let role, let policy = rolePolicies[role] { return policy }
        return settings.defaultPolicy
    }

    /// The key an identity's budget is counted under: its subject with `by = "subject"`
    /// (a user's keys and tokens share one budget), else `key:<id>` for an API key and
    /// `jwt:<jti>` (or `jwt:<sub>` for a token without `jti`) for a token.
    public static func identityKey(for identity: Identity, by: RateLimitSettings.KeyBy) -> String {
        switch (by, identity.method) {
        case (.subject, _): return identity.subject
        case (.credential, .apiKey): return "key:" + (identity.keyID ?? identity.subject)
        case (.credential, .jwt): return "jwt:" + (identity.jti ?? identity.subject)
        }
    }

    /// `identityKey(for:by:)` with this limiter's `by`.
    public func identityKey(for identity: Identity) -> String {
        Self.identityKey(for: identity, by: settings.by)
    }

    // MARK: Counting

    /// Takes one token from `key`'s bucket for `policy` at `now` (monotonic seconds, e.g.
    /// `MonotonicClock.seconds()`), creating the bucket full if it does not exist.
    public func consume(key: String, policy: RateLimitPolicy, now: Double) -> RateLimitDecision {
        let bucketKey = BucketKey(identity: key, policy: policy.name)
        let outcome = buckets.withShard(of: bucketKey, isLive: { $0.isLive(at: now) }) { shard in
            // One hash lookup for both the read and the write.
            shard.entries[bucketKey, default: .full(policy, now: now)].take(policy, now: now)
        }
        return RateLimitDecision(policy: policy, outcome: outcome)
    }

    /// The whole step for an authenticated request: key, policy and token.
    public func consume(identity: Identity, route: String?, now: Double) -> RateLimitDecision {
        consume(key: identityKey(for: identity), policy: policy(forRoute: route, role: identity.role), now: now)
    }

    /// Drops every bucket that is full at `now`; returns how many. Shards also do this by
    /// themselves as they are used; this is for a periodic timer, so that memory is given
    /// back after traffic stops.
    @discardableResult
    public func sweep(now: Double) -> Int {
        buckets.sweep { $0.isLive(at: now) }
    }

    /// Buckets held now (full ones not yet swept included).
    public var bucketCount: Int { buckets.count }
}

/// The bucket key: identity key and policy name, kept apart rather than concatenated so
/// that no identity key can be made to collide with another policy's bucket (and no
/// string is built per request).
///
/// The strings are hashed once, here: the shard is chosen from that hash and the shard's
/// dictionary hashes that one integer, instead of running SipHash over the strings twice.
struct BucketKey: ShardedKey {
    let identity: String
    let policy: String
    private let hash: Int

    init(identity: String, policy: String) {
        var hasher = Hasher()
        hasher.combine(identity)
        hasher.combine(policy)
        self.identity = identity
        self.policy = policy
        self.hash = hasher.finalize()
    }

    static func == (a: BucketKey, b: BucketKey) -> Bool {
        a.hash == b.hash && a.identity == b.identity && a.policy == b.policy
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    var shardingHash: Int { hash }
}

/// The verdict of one `consume`, with the values of the IETF draft header fields that
/// every proxied response carries (SPEC §5) and the 429's `Retry-After`.
public struct RateLimitDecision: Sendable, Equatable {
    public static let policyHeaderName = "RateLimit-Policy"
    public static let rateLimitHeaderName = "RateLimit"
    public static let retryAfterHeaderName = "Retry-After"

    public let allowed: Bool
    public let policy: RateLimitPolicy
    /// `r`: whole tokens left after this request.
    public let remaining: Int
    /// `t`: seconds until the bucket is full, rounded up (0 when it is full).
    public let resetSeconds: Int
    /// Refusals only: seconds until one token is available, rounded up, at least 1.
    public let retryAfter: Int?

    public init(allowed: Bool, policy: RateLimitPolicy, remaining: Int, resetSeconds: Int, retryAfter: Int?) {
        self.allowed = allowed
        self.policy = policy
        self.remaining = remaining
        self.resetSeconds = resetSeconds
        self.retryAfter = retryAfter
    }

    init(policy: RateLimitPolicy, outcome: TokenBucket.Outcome) {
        self.init(
            allowed: outcome.allowed, policy: policy, remaining: outcome.remaining, resetSeconds: outcome.reset,
            retryAfter: outcome.retryAfter)
    }

    /// `"default";q=600;w=60`
    public var policyHeaderValue: String { policy.policyHeaderValue }

    /// `"default";r=599;t=1`
    public var rateLimitHeaderValue: String { "\"\(policy.name)\";r=\(remaining);t=\(resetSeconds)" }

    /// `Retry-After` for a refusal, nil when allowed.
    public var retryAfterHeaderValue: String? { retryAfter.map(String.init) }

    /// The fields to add to the response: both RateLimit fields, plus `Retry-After` on a refusal.
    public var headers: [(name: String, value: String)] {
        var fields = [
            (name: Self.policyHeaderName, value: policyHeaderValue),
            (name: Self.rateLimitHeaderName, value: rateLimitHeaderValue),
        ]
        if let retryAfterHeaderValue { fields.append((name: Self.retryAfterHeaderName, value: retryAfterHeaderValue)) }
        return fields
    }
}
