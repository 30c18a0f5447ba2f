import Foundation
import Gatehouse
import Testing

/// SPEC §5 through a real socket: budgets, the IETF fields, shared budgets, the lock-out.
@Suite("Rate limits") struct RateLimitIntegrationTests {
    static let secret = Array("rate-limit-integration-secret-0123456789".utf8)

    static func withGateway(
        configure: @escaping @Sendable (inout GatewayConfig) -> Void,
        _ body: @Sendable (GatewayFixture, TempFolder) async throws -> Void
    ) async throws {
        let folder = try TempFolder("ratelimit")
        let secretPath = try folder.write("hs.secret", secret)
        try await GatewayFixture.with(configure: { config in
            var issuer = IssuerConfig(issuer: "https://issuer.test", audiences: ["gw"], algorithms: [.hs256])
            issuer.hs256SecretFile = secretPath
            config.issuers = [issuer]
            config.apiKeys = APIKeySettings(store: folder.file("keys.db"))
            AuthRoutes.install(into: &config)
            configure(&config)
        }) { gw in try await body(gw, folder) }
    }

    static func token(subject: String, jti: String? = nil) -> String {
        let now = unixNow()
        var claims: [String: Any] = [
            "iss": "https://issuer.test", "aud": "gw", "sub": subject, "iat": now, "exp": now + 600,
        ]
        if let jti { claims["jti"] = jti }
        return TokenMinter.mint(header: ["alg": "HS256"], claims: claims, key: .hmac(secret))
    }

    static func bearer(_ token: String) -> [(String, String)] { [("Authorization", "Bearer \(token)")] }

    @Test("exhaustion, exact header values, Retry-After, and refill")
    func exhaustionAndRefill() async throws {
        try await Self.withGateway(configure: { config in
            config.rateLimits.defaultPolicy = RateLimitPolicy(name: "default", requests: 2, per: .seconds(2), burst: 3)
        }) { gw, _ in
            let token = Self.token(subject: "alice")
            var remaining: [String] = []
            for _ in 0..<3 {
                let response = try await CurlClient.request(url: gw.url("/secure/x"), headers: Self.bearer(token))
                #expect(response.status == 200)
                #expect(response.header("RateLimit-Policy") == #""default";q=2;w=2"#)
                remaining.append(response.header("RateLimit") ?? "")
            }
            #expect(remaining.map { $0.components(separatedBy: ";")[1] } == ["r=2", "r=1", "r=0"])
            let refused = try await CurlClient.request(url: gw.url("/secure/x"), headers: Self.bearer(token))
            #expect(refused.status == 429)
            #expect(refused.bodyString.contains(#""reason":"rate_limited""#))
            #expect(refused.header("Retry-After") == "1")
            #expect(refused.header("RateLimit-Policy") == #""default";q=2;w=2"#)
            #expect(refused.header("RateLimit")?.hasPrefix(#""default";r=0;t="#) == true)
            #expect(gw.upstream.received().count == 3)
            // One token per second comes back.
            try await Task.sleep(for: .milliseconds(1100))
            let refilled = try await CurlClient.request(url: gw.url("/secure/x"), headers: Self.bearer(token))
            #expect(refilled.status == 200)
        }
    }

    @Test("identities have independent budgets; a user's JWT and API key share one (by = subject)")
    func sharedAndIndependentBudgets() async throws {
        try await Self.withGateway(configure: { config in
            config.rateLimits.defaultPolicy = RateLimitPolicy(name: "default", requests: 2, per: .seconds(3600))
        }) { gw, folder in
            let store = try APIKeyStore(path: folder.file("keys.db"), prefix: "ghk")
            let key = try store.create(name: "k", subject: "bob").fullKey
            #expect(
                await eventually {
                    (try? await CurlClient.request(url: gw.url("/secure/x"), headers: [("X-Api-Key", key)]))?.status
                        == 200
                })
            let viaToken = try await CurlClient.request(
                url: gw.url("/secure/x"), headers: Self.bearer(Self.token(subject: "bob")))
            #expect(viaToken.status == 200)
            let third = try await CurlClient.request(url: gw.url("/secure/x"), headers: [("X-Api-Key", key)])
            #expect(third.status == 429, "the JWT and the key of bob must share one budget")
            let carol = try await CurlClient.request(
                url: gw.url("/secure/x"), headers: Self.bearer(Self.token(subject: "carol")))
            #expect(carol.status == 200)
        }
    }

    @Test("a route with its own policy has a separate budget")
    func routePolicy() async throws {
        try await Self.withGateway(configure: { config in
            config.rateLimits.defaultPolicy = RateLimitPolicy(name: "default", requests: 1, per: .seconds(3600))
            config.rateLimits.policies["strict"] = RateLimitPolicy(name: "strict", requests: 1, per: .seconds(3600))
            if let index = config.routes.firstIndex(where: { $0.name == "passthru" }) {
                config.routes[index].rateLimit = "strict"
            }
        }) { gw, _ in
            let token = Self.token(subject: "dave")
            #expect(try await CurlClient.request(url: gw.url("/secure/x"), headers: Self.bearer(token)).status == 200)
            let other = try await CurlClient.request(url: gw.url("/passthru/x"), headers: Self.bearer(token))
            #expect(other.status == 200)
            #expect(other.header("RateLimit-Policy") == #""strict";q=1;w=3600"#)
            #expect(try await CurlClient.request(url: gw.url("/passthru/x"), headers: Self.bearer(token)).status == 429)
        }
    }

    @Test("many concurrent clients on one identity get exactly the burst")
    func concurrentHammering() async throws {
        try await Self.withGateway(configure: { config in
            // Refill of 10 per hour: nothing comes back while the test runs.
            config.rateLimits.defaultPolicy = RateLimitPolicy(
                name: "default", requests: 10, per: .seconds(3600), burst: 25)
        }) { gw, _ in
            let token = Self.token(subject: "eve")
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var seen: [Int] = []
                        for _ in 0..<10 {
                            seen.append(
                                try await CurlClient.request(url: gw.url("/secure/x"), headers: Self.bearer(token))
                                    .status)
                        }
                        return seen
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(statuses.count == 80)
            #expect(statuses.filter { $0 == 200 }.count == 25)
            #expect(statuses.filter { $0 == 429 }.count == 55)
            #expect(gw.upstream.received().count == 25)
        }
    }

    @Test("repeated bad credentials block the client IP (no token work), and the block expires")
    func lockOut() async throws {
        try await Self.withGateway(configure: { config in
            config.rateLimits.authFailures = AuthFailureSettings(max: 3, per: .seconds(60), block: .seconds(2))
        }) { gw, _ in
            let bad = Self.bearer(Self.token(subject: "mallory") + "x")
            var statuses: [Int] = []
            for _ in 0..<3 {
                statuses.append(try await CurlClient.request(url: gw.url("/secure/x"), headers: bad).status)
            }
            #expect(statuses == [401, 401, 401])
            let good = Self.bearer(Self.token(subject: "mallory"))
            let blocked = try await CurlClient.request(url: gw.url("/secure/x"), headers: good)
            #expect(blocked.status == 429)
            #expect(blocked.bodyString.contains(#""reason":"client_blocked""#))
            #expect(Int(blocked.header("Retry-After") ?? "") ?? 0 >= 1)
            #expect(blocked.header("RateLimit") == nil)
            // Requests without credentials never counted; routes without auth are untouched.
            #expect(try await CurlClient.request(url: gw.url("/api/x")).status == 200)
            try await Task.sleep(for: .milliseconds(2200))
            #expect(try await CurlClient.request(url: gw.url("/secure/x"), headers: good).status == 200)
        }
    }

    @Test("X-Forwarded-For from an untrusted peer cannot dodge the lock-out")
    func forwardedForIgnoredFromUntrustedPeers() async throws {
        try await Self.withGateway(configure: { config in
            config.server.trustedProxies = []
            config.rateLimits.authFailures = AuthFailureSettings(max: 2, per: .seconds(60), block: .seconds(30))
        }) { gw, _ in
            let bad = Self.bearer(Self.token(subject: "m") + "x")
            for index in 0..<2 {
                let response = try await CurlClient.request(
                    url: gw.url("/secure/x"),
                    headers: bad + [("X-Forwarded-For", "198.51.100.\(index)")]
                )
                #expect(response.status == 401)
            }
            let spoofed = try await CurlClient.request(
                url: gw.url("/secure/x"),
                headers: Self.bearer(Self.token(subject: "m")) + [("X-Forwarded-For", "203.0.113.99")]
            )
            #expect(spoofed.status == 429, "a fresh X-Forwarded-For from an untrusted peer escaped the block")
        }
    }

    @Test("from a trusted proxy, the real client IP is the one locked out")
    func trustedProxyClientIP() async throws {
        try await Self.withGateway(configure: { config in
            config.rateLimits.authFailures = AuthFailureSettings(max: 2, per: .seconds(60), block: .seconds(30))
        }) { gw, _ in
            let bad = Self.bearer(Self.token(subject: "m") + "x")
            for _ in 0..<2 {
                let response = try await CurlClient.request(
                    url: gw.url("/secure/x"), headers: bad + [("X-Forwarded-For", "198.51.100.7")])
                #expect(response.status == 401)
            }
            let sameClient = try await CurlClient.request(
                url: gw.url("/secure/x"),
                headers: Self.bearer(Self.token(subject: "m")) + [("X-Forwarded-For", "198.51.100.7")]
            )
            #expect(sameClient.status == 429)
            let otherClient = try await CurlClient.request(
                url: gw.url("/secure/x"),
                headers: Self.bearer(Self.token(subject: "m")) + [("X-Forwarded-For", "198.51.100.8")]
            )
            #expect(otherClient.status == 200)
        }
    }
}
