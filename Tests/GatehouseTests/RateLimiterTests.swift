import Foundation
import Testing

@testable import Gatehouse

// Token buckets, policy selection and the auth-failure lock-out (SPEC §5). Every test
// passes its own `now`: nothing sleeps, and every header value is exact.

private func settings(
    default policy: RateLimitPolicy = RateLimitPolicy(name: "default", requests: 60, per: .seconds(60), burst: 5),
    policies: [RateLimitPolicy] = [], roles: [String: String] = [:], by: RateLimitSettings.KeyBy = .subject
) -> RateLimitSettings {
    var settings = RateLimitSettings()
    settings.defaultPolicy = policy
    settings.policies = Dictionary(uniqueKeysWithValues: policies.map { ($0.name, $0) })
    settings.roles = roles
    settings.by = by
    return settings
}

private func route(_ name: String, rateLimit: String?) -> RouteConfig {
    var route = RouteConfig(
        name: name, path: "/" + name, upstream: UpstreamURL(scheme: "http", host: "127.0.0.1", port: 1, basePath: ""))
    route.rateLimit = rateLimit
    return route
}

/// `n` consumes of one key at one instant; the decisions in order.
private func drain(
    _ limiter: RateLimiter, key: String, policy: RateLimitPolicy, times n: Int, at now: Double
) -> [RateLimitDecision] {
    (0..<n).map { _ in limiter.consume(key: key, policy: policy, now: now) }
}

@Suite struct TokenBucketTests {
    /// 60 per minute = 1 token per second, burst 5.
    let limiter = RateLimiter(settings: settings(), routes: [])
    var policy: RateLimitPolicy { limiter.settings.defaultPolicy }

    @Test func exhaustionAndRefillWithExactHeaders() {
        let first = limiter.consume(key: "alice", policy: policy, now: 100)
        #expect(first.allowed && first.retryAfter == nil)
        #expect(first.policyHeaderValue == "\"default\";q=60;w=60")
        #expect(first.rateLimitHeaderValue == "\"default\";r=4;t=1")
        #expect(first.headers.map(\.name) == ["RateLimit-Policy", "RateLimit"])

        let rest = drain(limiter, key: "alice", policy: policy, times: 4, at: 100)
        #expect(rest.map(\.allowed) == [true, true, true, true])
        #expect(rest.map(\.rateLimitHeaderValue) == (0...3).reversed().map { "\"default\";r=\($0);t=\(5 - $0)" })

        let refused = limiter.consume(key: "alice", policy: policy, now: 100)
        #expect(!refused.allowed)
        #expect(refused.rateLimitHeaderValue == "\"default\";r=0;t=5")
        #expect(refused.retryAfter == 1)
        #expect(refused.headers.map(\.name) == ["RateLimit-Policy", "RateLimit", "Retry-After"])
        #expect(refused.headers.last?.value == "1")

        // 2.5 s later: 2.5 tokens; one taken leaves 1.5, so r=1 and full in 3.5 s → t=4.
        let later = limiter.consume(key: "alice", policy: policy, now: 102.5)
        #expect(later.allowed && later.rateLimitHeaderValue == "\"default\";r=1;t=4")
        // Refill never exceeds the burst.
        let muchLater = limiter.consume(key: "alice", policy: policy, now: 10_000)
        #expect(muchLater.allowed && muchLater.rateLimitHeaderValue == "\"default\";r=4;t=1")
    }

    @Test func refusalsDoNotSpendTokens() {
        _ = drain(limiter, key: "k", policy: policy, times: 10, at: 0)
        // Five refusals at t=0 cost nothing: one token has refilled by t=1.
        #expect(limiter.consume(key: "k", policy: policy, now: 1).allowed)
        #expect(!limiter.consume(key: "k", policy: policy, now: 1).allowed)
    }

    @Test func burstIsTheCapacityAndRequestsTheRate() {
        let policy = RateLimitPolicy(name: "default", requests: 600, per: .seconds(60), burst: 100)
        let limiter = RateLimiter(settings: settings(default: policy), routes: [])
        let decisions = drain(limiter, key: "k", policy: policy, times: 150, at: 7)
        #expect(decisions.filter(\.allowed).count == 100)
        #expect(decisions[0].policyHeaderValue == "\"default\";q=600;w=60")
        #expect(decisions[0].rateLimitHeaderValue == "\"default\";r=99;t=1")  // 1 token at 10/s: 0.1 s
        #expect(decisions[99].rateLimitHeaderValue == "\"default\";r=0;t=10")
        // 600 per minute is 10 per second: 0.5 s later, 5 more.
        #expect(drain(limiter, key: "k", policy: policy, times: 10, at: 7.5).filter(\.allowed).count == 5)
    }

    @Test func burstDefaultsToRequests() {
        let policy = RateLimitPolicy(name: "p", requests: 3, per: .seconds(10))
        #expect(policy.burst == 3)
        let limiter = RateLimiter(settings: settings(policies: [policy]), routes: [])
        #expect(
            drain(limiter, key: "k", policy: policy, times: 5, at: 0).map(\.allowed) == [
                true, true, true, false, false,
            ])
    }

    @Test func identitiesAreIndependent() {
        _ = drain(limiter, key: "alice", policy: policy, times: 5, at: 0)
        #expect(!limiter.consume(key: "alice", policy: policy, now: 0).allowed)
        let bob = limiter.consume(key: "bob", policy: policy, now: 0)
        #expect(bob.allowed && bob.remaining == 4)
    }

    @Test func retryAfterIsRoundedUpAndAtLeastOne() {
        // 1 per 7 s, burst 1.
        let slow = RateLimitPolicy(name: "slow", requests: 1, per: .seconds(7))
        let limiter = RateLimiter(settings: settings(policies: [slow]), routes: [])
        #expect(limiter.consume(key: "k", policy: slow, now: 0).allowed)
        let atOnce = limiter.consume(key: "k", policy: slow, now: 0)
        #expect(atOnce.retryAfter == 7 && atOnce.rateLimitHeaderValue == "\"slow\";r=0;t=7")
        #expect(limiter.consume(key: "k", policy: slow, now: 0.5).retryAfter == 7)  // 6.5 s
        #expect(limiter.consume(key: "k", policy: slow, now: 2).retryAfter == 5)  // exactly 5 s
        #expect(limiter.consume(key: "k", policy: slow, now: 6.2).retryAfter == 1)  // 0.8 s
        #expect(limiter.consume(key: "k", policy: slow, now: 7).allowed)

        // 10 per second: a token is 0.1 s away, still `Retry-After: 1`.
        let fast = RateLimitPolicy(name: "fast", requests: 10, per: .seconds(1), burst: 1)
        #expect(limiter.consume(key: "k", policy: fast, now: 0).allowed)
        #expect(limiter.consume(key: "k", policy: fast, now: 0).retryAfter == 1)
        #expect(limiter.consume(key: "k", policy: fast, now: 0.05).retryAfter == 1)  // 0.05 s
    }

    @Test func timeGoingBackwardsRefillsNothing() {
        _ = drain(limiter, key: "k", policy: policy, times: 5, at: 50)
        #expect(!limiter.consume(key: "k", policy: policy, now: 49).allowed)
        #expect(limiter.consume(key: "k", policy: policy, now: 51).allowed)
    }

    @Test func fractionalWindowsAreRoundedUpToWholeSeconds() {
        let policy = RateLimitPolicy(name: "p", requests: 5, per: .milliseconds(1500))
        #expect(policy.windowSeconds == 2 && policy.per == .seconds(2))
        #expect(policy.policyHeaderValue == "\"p\";q=5;w=2")
    }
}

@Suite struct RateLimitEvictionTests {
    let policy = RateLimitPolicy(name: "default", requests: 60, per: .seconds(60), burst: 5)

    @Test func onlyFullBucketsAreEvictedAndComeBackTheSame() {
        let swept = RateLimiter(settings: settings(default: policy), routes: [])
        let kept = RateLimiter(settings: settings(default: policy), routes: [])
        for limiter in [swept, kept] { _ = drain(limiter, key: "k", policy: policy, times: 3, at: 0) }
        // 3 tokens taken at t=0 are back at t=3.
        #expect(swept.sweep(now: 2.9) == 0)
        #expect(swept.bucketCount == 1)
        #expect(swept.sweep(now: 3) == 1)
        #expect(swept.bucketCount == 0)
        for now in [3.0, 3.0, 3.2, 3.2, 3.2, 3.2, 3.2, 4.5] {
            #expect(
                swept.consume(key: "k", policy: policy, now: now) == kept.consume(key: "k", policy: policy, now: now))
        }
    }

    @Test func refusedAndEmptyBucketsAreNeverEvicted() {
        let limiter = RateLimiter(settings: settings(default: policy), routes: [])
        _ = drain(limiter, key: "k", policy: policy, times: 6, at: 0)
        #expect(limiter.sweep(now: 4.99) == 0)
        #expect(!limiter.consume(key: "k", policy: policy, now: 0.5).allowed)
    }

    @Test func shardsSweepThemselvesAsTheyAreUsed() {
        let limiter = RateLimiter(settings: settings(default: policy), routes: [], shardCount: 1)
        for index in 0..<3000 { _ = limiter.consume(key: "user-\(index)", policy: policy, now: 0) }
        #expect(limiter.bucketCount == 3000)
        // Much later every one of them is full; traffic from one client sweeps them away.
        var operations = 0
        while limiter.bucketCount > 1 && operations < 10_000 {
            _ = limiter.consume(key: "busy", policy: policy, now: 1000 + Double(operations) / 1000)
            operations += 1
        }
        #expect(limiter.bucketCount == 1)
        #expect(operations <= 3000)
    }

    @Test func reconfiguredLimiterKeepsBuckets() {
        let limiter = RateLimiter(settings: settings(default: policy), routes: [])
        _ = drain(limiter, key: "k", policy: policy, times: 5, at: 0)
        let reloaded = limiter.reconfigured(settings: settings(default: policy), routes: [])
        #expect(!reloaded.consume(key: "k", policy: reloaded.settings.defaultPolicy, now: 0).allowed)
    }
}

@Suite struct RateLimitPolicySelectionTests {
    let viewer = RateLimitPolicy(name: "viewer", requests: 2, per: .seconds(60))
    let expensive = RateLimitPolicy(name: "expensive", requests: 1, per: .seconds(60))

    var limiter: RateLimiter {
        RateLimiter(
            settings: settings(policies: [viewer, expensive], roles: ["viewer": "viewer", "admin": "default"]),
            routes: [
                route("plain", rateLimit: nil), route("search", rateLimit: "expensive"),
                route("export", rateLimit: "expensive"), route("open", rateLimit: "default"),
            ])
    }

    @Test func routeThenRoleThenDefault() {
        let limiter = self.limiter
        #expect(limiter.policy(forRoute: "plain", role: nil).name == "default")
        #expect(limiter.policy(forRoute: "plain", role: "viewer").name == "viewer")
        #expect(limiter.policy(forRoute: "plain", role: "admin").name == "default")
        #expect(limiter.policy(forRoute: "plain", role: "unknown").name == "default")
        #expect(limiter.policy(forRoute: nil, role: "viewer").name == "viewer")
        #expect(limiter.policy(forRoute: "search", role: "viewer").name == "expensive")
        #expect(limiter.policy(forRoute: "open", role: "viewer").name == "default")
        #expect(limiter.policy(forRoute: "no-such-route", role: nil).name == "default")
    }

    @Test func routePolicyIsASeparateBudget() {
        let limiter = self.limiter
        let alice = Identity(method: .jwt, subject: "alice")
        _ = (0..<5).map { _ in limiter.consume(identity: alice, route: "plain", now: 0) }
        #expect(!limiter.consume(identity: alice, route: "plain", now: 0).allowed)
        let search = limiter.consume(identity: alice, route: "search", now: 0)
        #expect(search.allowed && search.rateLimitHeaderValue == "\"expensive\";r=0;t=60")
        #expect(search.policyHeaderValue == "\"expensive\";q=1;w=60")
        // A second route naming the same policy shares its budget: per (identity, policy).
        let export = limiter.consume(identity: alice, route: "export", now: 0)
        #expect(!export.allowed && export.retryAfter == 60)
    }

    @Test func rolePolicyApplies() {
        let limiter = self.limiter
        let viewerIdentity = Identity(method: .apiKey, subject: "vic", role: "viewer", keyID: "abc")
        let decisions = (0..<3).map { _ in limiter.consume(identity: viewerIdentity, route: "plain", now: 0) }
        #expect(decisions.map(\.allowed) == [true, true, false])
        #expect(decisions[2].rateLimitHeaderValue == "\"viewer\";r=0;t=60")
        #expect(decisions[2].retryAfter == 30)
    }

    @Test func identityKeys() {
        let key = Identity(method: .apiKey, subject: "alice", keyID: "k1")
        let token = Identity(method: .jwt, subject: "alice", jti: "t1")
        let tokenWithoutJTI = Identity(method: .jwt, subject: "alice")
        #expect(RateLimiter.identityKey(for: key, by: .subject) == "alice")
        #expect(RateLimiter.identityKey(for: token, by: .subject) == "alice")
        #expect(RateLimiter.identityKey(for: key, by: .credential) == "key:k1")
        #expect(RateLimiter.identityKey(for: token, by: .credential) == "jwt:t1")
        #expect(RateLimiter.identityKey(for: tokenWithoutJTI, by: .credential) == "jwt:alice")
    }

    @Test(arguments: [(RateLimitSettings.KeyBy.subject, 2), (.credential, 4)])
    func bySubjectSharesOneBudgetAcrossCredentials(by: RateLimitSettings.KeyBy, allowed: Int) {
        let policy = RateLimitPolicy(name: "default", requests: 2, per: .seconds(60))
        let limiter = RateLimiter(settings: settings(default: policy, by: by), routes: [])
        let key = Identity(method: .apiKey, subject: "alice", keyID: "k1")
        let token = Identity(method: .jwt, subject: "alice", jti: "t1")
        let decisions = [key, token, key, token].map { limiter.consume(identity: $0, route: nil, now: 0) }
        #expect(decisions.filter(\.allowed).count == allowed)
    }

    @Test func limiterFromALoadedConfig() throws {
        let text = """
            [rate_limits]
            by = "credential"
            default = { requests = 100, per = "1m", burst = 10 }
            [rate_limits.policies]
            viewer = { requests = 60, per = "1m" }
            [rate_limits.roles]
            viewer = "viewer"

            [[routes]]
            name = "api"
            path = "/api"
            upstream = "http://127.0.0.1:3001/"
            rate_limit = "viewer"

            [[routes]]
            name = "other"
            path = "/other"
            upstream = "http://127.0.0.1:3001/"
            """
        let config = try ConfigLoader.load(text: text, sourcePath: nil, baseDirectory: "/tmp").config
        let limiter = RateLimiter(settings: config.rateLimits, routes: config.routes)
        #expect(limiter.policy(forRoute: "api", role: nil).policyHeaderValue == "\"viewer\";q=60;w=60")
        #expect(limiter.policy(forRoute: "other", role: nil).policyHeaderValue == "\"default\";q=100;w=60")
        #expect(limiter.policy(forRoute: "other", role: "viewer").burst == 60)
        #expect(limiter.identityKey(for: Identity(method: .apiKey, subject: "s", keyID: "abc")) == "key:abc")
    }
}

/// Allowed-request counts from many threads. Sound as `@unchecked Sendable`: `value` is
/// only touched while `lock` is held.
private final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func add(_ count: Int) {
        lock.lock()
        value += count
        lock.unlock()
    }

    var total: Int {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}

@Suite struct RateLimitConcurrencyTests {
    @Test func manyThreadsOnOneBucketGetExactlyTheBurst() {
        let policy = RateLimitPolicy(name: "default", requests: 1000, per: .seconds(60), burst: 250)
        let limiter = RateLimiter(settings: settings(default: policy), routes: [])
        let allowed = Tally()
        let refused = Tally()
        let threads = 16
        let perThread = 2000
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            let thread = Thread {
                var yes = 0
                var no = 0
                for _ in 0..<perThread {
                    // A frozen clock: nothing refills, so only the burst can ever pass.
                    if limiter.consume(key: "hot", policy: policy, now: 42).allowed { yes += 1 } else { no += 1 }
                }
                allowed.add(yes)
                refused.add(no)
                group.leave()
            }
            thread.start()
        }
        group.wait()
        #expect(allowed.total == 250)
        #expect(refused.total == threads * perThread - 250)
        #expect(limiter.bucketCount == 1)
    }

    @Test func manyThreadsOnManyKeysKeepEveryLimit() {
        let policy = RateLimitPolicy(name: "default", requests: 60, per: .seconds(60), burst: 7)
        let limiter = RateLimiter(settings: settings(default: policy), routes: [])
        let allowed = Tally()
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            let thread = Thread {
                var yes = 0
                for round in 0..<20 {
                    let now = Double(round) / 1e6
                    for key in 0..<50 where limiter.consume(key: "k\(key)", policy: policy, now: now).allowed {
                        yes += 1
                    }
                }
                allowed.add(yes)
                group.leave()
            }
            thread.start()
        }
        group.wait()
        // 20 µs at 1 token per second refill nothing whole: 7 per key.
        #expect(allowed.total == 50 * 7)
    }
}

@Suite struct AuthFailureGuardTests {
    let settings = AuthFailureSettings(max: 3, per: .seconds(60), block: .seconds(300))

    @Test func theMaxthFailureBlocksAfterItself() {
        let guardian = AuthFailureGuard(settings: settings)
        #expect(guardian.isBlocked(ip: "203.0.113.7", now: 0) == (false, 0))
        #expect(!guardian.recordFailure(ip: "203.0.113.7", now: 0))
        #expect(!guardian.recordFailure(ip: "203.0.113.7", now: 10))
        #expect(guardian.isBlocked(ip: "203.0.113.7", now: 10) == (false, 0))
        // The third is the one that reaches max: the caller still answers it 401.
        #expect(guardian.recordFailure(ip: "203.0.113.7", now: 20))
        #expect(guardian.isBlocked(ip: "203.0.113.7", now: 20) == (true, 300))
        #expect(guardian.isBlocked(ip: "203.0.113.7", now: 120) == (true, 200))
        #expect(guardian.isBlocked(ip: "203.0.113.7", now: 319.5) == (true, 1))
        #expect(guardian.isBlocked(ip: "203.0.113.7", now: 320) == (false, 0))
        // Other addresses are not affected.
        #expect(guardian.isBlocked(ip: "203.0.113.8", now: 20) == (false, 0))
    }

    @Test func countingStartsOverAfterABlock() {
        let guardian = AuthFailureGuard(settings: settings)
        for now in [0.0, 1, 2] { guardian.recordFailure(ip: "a", now: now) }
        #expect(guardian.isBlocked(ip: "a", now: 302).blocked == false)
        #expect(!guardian.recordFailure(ip: "a", now: 302))
        #expect(!guardian.recordFailure(ip: "a", now: 303))
        #expect(guardian.recordFailure(ip: "a", now: 304))
    }

    @Test func failuresOutsideTheWindowDoNotAddUp() {
        let guardian = AuthFailureGuard(settings: settings)
        guardian.recordFailure(ip: "a", now: 0)
        guardian.recordFailure(ip: "a", now: 59)
        // The window opened at 0 closed at 60: this one opens a new window.
        #expect(!guardian.recordFailure(ip: "a", now: 60))
        #expect(!guardian.recordFailure(ip: "a", now: 61))
        #expect(guardian.recordFailure(ip: "a", now: 119))
    }

    @Test func failuresWhileBlockedDoNotExtendTheBlock() {
        let guardian = AuthFailureGuard(settings: AuthFailureSettings(max: 1, per: .seconds(60), block: .seconds(10)))
        #expect(guardian.recordFailure(ip: "a", now: 0))
        #expect(!guardian.recordFailure(ip: "a", now: 5))
        #expect(guardian.isBlocked(ip: "a", now: 5) == (true, 5))
        #expect(guardian.isBlocked(ip: "a", now: 10) == (false, 0))
    }

    @Test func expiredEntriesAreSwept() {
        let guardian = AuthFailureGuard(settings: settings)
        guardian.recordFailure(ip: "a", now: 0)
        for _ in 0..<3 { guardian.recordFailure(ip: "b", now: 0) }
        #expect(guardian.count == 2)
        #expect(guardian.sweep(now: 60) == 1)  // a's window ended; b is blocked until 300
        #expect(guardian.sweep(now: 300) == 1)
        #expect(guardian.count == 0)
    }

    @Test func capacityIsBoundedAndBlocksAreEvictedLast() {
        let guardian = AuthFailureGuard(
            settings: AuthFailureSettings(max: 2, per: .seconds(60), block: .seconds(600)), capacity: 10,
            shardCount: 1)
        guardian.recordFailure(ip: "attacker", now: 0)
        #expect(guardian.recordFailure(ip: "attacker", now: 0))
        for index in 0..<100 { guardian.recordFailure(ip: "10.0.0.\(index)", now: 1) }
        #expect(guardian.count == 10)
        // Addresses that were merely counting made room; the block held.
        #expect(guardian.isBlocked(ip: "attacker", now: 2).blocked)
    }

    @Test func reconfiguredGuardKeepsBlocks() {
        let guardian = AuthFailureGuard(settings: AuthFailureSettings(max: 1, per: .seconds(60), block: .seconds(60)))
        guardian.recordFailure(ip: "a", now: 0)
        let reloaded = guardian.reconfigured(settings: settings)
        #expect(reloaded.isBlocked(ip: "a", now: 30) == (true, 30))
        #expect(reloaded.settings.max == 3)
    }

    @Test func monotonicClockAdvances() {
        let first = MonotonicClock.seconds()
        let second = MonotonicClock.seconds()
        #expect(first > 0 && second >= first)
    }
}
