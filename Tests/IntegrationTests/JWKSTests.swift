import Crypto
import Foundation
import Gatehouse
import Testing

/// `jwks_url` issuers (SPEC §3 "JWKS"): keys fetched over HTTP with libcurl from an
/// in-process `DocumentServer` on loopback, rotation via an unknown `kid`, the last good
/// set kept through outages, and readiness / 503 while no key set was ever loaded.
@Suite("JWKS") struct JWKSTests {
    static let issuer = "https://jwks.example"
    static let staticIssuer = "https://static.example"
    static let audience = "api://gatehouse"
    static let staticSecret = Array("static-issuer-hmac-secret-0123456789ab".utf8)

    /// A gateway whose issuer `https://jwks.example` (RS256 + ES256) loads its keys from
    /// `jwksURL`, plus a static HS256 issuer, with the auth routes and a fresh key store.
    static func withGateway<T: Sendable>(
        jwksURL: String,
        refresh: Duration = .seconds(600),
        _ body: @Sendable (GatewayFixture) async throws -> T
    ) async throws -> T {
        let folder = try TempFolder("jwks")
        defer { folder.remove() }
        let secret = try folder.write("static.secret", staticSecret)
        var jwks = IssuerConfig(issuer: issuer, audiences: [audience], algorithms: [.rs256, .es256])
        jwks.jwksURL = jwksURL
        jwks.jwksRefresh = refresh
        var fixed = IssuerConfig(issuer: staticIssuer, audiences: [audience], algorithms: [.hs256])
        fixed.hs256SecretFile = secret
        let issuers = [jwks, fixed]
        return try await GatewayFixture.with(configure: { config in
            config.issuers = issuers
            config.apiKeys = APIKeySettings(store: folder.file("keys.db"))
            AuthRoutes.install(into: &config)
        }) { gw in
            try await body(gw)
        }
    }

    static func claims(_ iss: String = issuer, sub: String = "jwks-user") -> [String: Any] {
        let now = unixNow()
        return [
            "iss": iss, "sub": sub, "aud": audience, "iat": now, "exp": now + 600, "jti": UUID().uuidString,
        ]
    }

    static func es256(_ key: P256.Signing.PrivateKey, kid: String?) -> String {
        var header: [String: Any] = ["alg": "ES256", "typ": "JWT"]
        if let kid { header["kid"] = kid }
        return TokenMinter.mint(header: header, claims: claims(), key: .p256(key))
    }

    static func staticToken() -> String {
        TokenMinter.mint(header: ["alg": "HS256"], claims: claims(staticIssuer), key: .hmac(staticSecret))
    }

    static func get(_ gw: GatewayFixture, token: String) async throws -> CurlResponse {
        try await CurlClient.request(
            url: gw.url("/secure/echo"), headers: [("Authorization", "Bearer \(token)")], timeout: .seconds(10))
    }

    static func readyStatus(_ gw: GatewayFixture) async -> Int {
        (try? await CurlClient.request(url: "http://127.0.0.1:\(gw.adminPort)/readyz", timeout: .seconds(5)))?.status
            ?? 0
    }

    /// Waits (bounded) for the first key set to load: `/readyz` turns 200.
    static func waitUntilReady(_ gw: GatewayFixture) async -> Bool {
        await eventually(timeout: .seconds(10), poll: .milliseconds(50)) { await readyStatus(gw) == 200 }
    }

    @Test("tokens signed with a key of the fetched JWKS verify; others are refused")
    func fetchedKeysVerify() async throws {
        let ec = P256.Signing.PrivateKey()
        let document = TestKeys.jwks([
            TestKeys.jwk(rsa: TestKeys.rsa.publicKey, kid: "r1"), TestKeys.jwk(p256: ec.publicKey, kid: "e1"),
        ])
        try await DocumentServer.with(document: document) { server in
            try await Self.withGateway(jwksURL: server.url) { gw in
                #expect(await Self.waitUntilReady(gw), "the JWKS never loaded")
                #expect(server.requestCount() >= 1)

                let es = try await Self.get(gw, token: Self.es256(ec, kid: "e1"))
                #expect(es.status == 200, "ES256 kid e1: \(es.bodyString)")
                let rs = try await Self.get(
                    gw,
                    token: TokenMinter.mint(
                        header: ["alg": "RS256", "kid": "r1"], claims: Self.claims(), key: .rsa(TestKeys.rsa)))
                #expect(rs.status == 200, "RS256 kid r1: \(rs.bodyString)")
                let noKid = try await Self.get(gw, token: Self.es256(ec, kid: nil))
                #expect(noKid.status == 200, "ES256 without kid: \(noKid.bodyString)")
                let seen = gw.upstream.received()
                #expect(seen.count == 3)
                #expect(seen.allSatisfy { $0.identityValues(IdentityHeader.subject) == ["jwks-user"] })
                #expect(seen.allSatisfy { $0.identityValues(IdentityHeader.authMethod) == ["jwt"] })

                gw.upstream.clearReceived()
                let forged = try await Self.get(gw, token: Self.es256(P256.Signing.PrivateKey(), kid: "e1"))
                AuthExpect.unauthorized(forged, reasons: ["invalid_signature"], "another EC key claiming kid e1")
                let unknown = try await Self.get(gw, token: Self.es256(ec, kid: "e9"))
                AuthExpect.unauthorized(unknown, reasons: ["unknown_key"], "kid e9 not in the JWKS")
                let crossType = try await Self.get(
                    gw,
                    token: TokenMinter.mint(
                        header: ["alg": "RS256", "kid": "e1"], claims: Self.claims(), key: .rsa(TestKeys.rsa)))
                AuthExpect.unauthorized(crossType, reasons: ["unknown_key"], "RS256 naming the EC key's kid")
                #expect(gw.upstream.received().isEmpty)
            }
        }
    }

    @Test(
        "rotation: a token with a new kid works after the refetch its unknown kid triggers; refetches are rate-limited")
    func rotation() async throws {
        let old = P256.Signing.PrivateKey()
        let new = P256.Signing.PrivateKey()
        let oldKey = TestKeys.jwk(p256: old.publicKey, kid: "2025-01")
        let newKey = TestKeys.jwk(p256: new.publicKey, kid: "2025-02")
        let rotatedDocument = TestKeys.jwks([newKey, oldKey])
        try await DocumentServer.with(document: TestKeys.jwks([oldKey])) { server in
            try await Self.withGateway(jwksURL: server.url) { gw in
                #expect(await Self.waitUntilReady(gw), "the JWKS never loaded")
                #expect(try await Self.get(gw, token: Self.es256(old, kid: "2025-01")).status == 200)
                let fetchesBefore = server.requestCount()

                // The issuer rotates: the new key is published (jwks_refresh is 10 min, so
                // only the unknown kid can make the gateway look again).
                server.setDocument(rotatedDocument)
                let rotated = await eventually(timeout: .seconds(5), poll: .milliseconds(100)) {
                    (try? await Self.get(gw, token: Self.es256(new, kid: "2025-02")))?.status == 200
                }
                #expect(rotated, "a token with the new kid never verified after the JWKS changed")
                #expect(server.requestCount() > fetchesBefore, "no refetch happened")
                #expect(try await Self.get(gw, token: Self.es256(old, kid: "2025-01")).status == 200)
                #expect(gw.upstream.received().last?.identityValues(IdentityHeader.subject) == ["jwks-user"])

                // A burst of unknown kids right after a refetch triggers at most one more
                // fetch (SPEC: at most once per 30 s per issuer), and each is unknown_key.
                let fetchesAfterRotation = server.requestCount()
                gw.upstream.clearReceived()
                for index in 0..<10 {
                    let response = try await Self.get(gw, token: Self.es256(new, kid: "bogus-\(index)"))
                    AuthExpect.unauthorized(response, reasons: ["unknown_key"], "unknown kid bogus-\(index)")
                }
                try await Task.sleep(for: .milliseconds(500))
                #expect(
                    server.requestCount() - fetchesAfterRotation <= 1,
                    "\(server.requestCount() - fetchesAfterRotation) fetches for a burst of unknown kids")
                #expect(gw.upstream.received().isEmpty)
            }
        }
    }

    @Test("a key dropped from the JWKS stops verifying at once, even for a token already cached")
    func droppedKeyEmptiesTheCache() async throws {
        let dropped = P256.Signing.PrivateKey()
        let kept = P256.Signing.PrivateKey()
        let droppedKey = TestKeys.jwk(p256: dropped.publicKey, kid: "2025-01")
        let keptKey = TestKeys.jwk(p256: kept.publicKey, kid: "2025-02")
        let withdrawnDocument = TestKeys.jwks([keptKey])
        try await DocumentServer.with(document: TestKeys.jwks([droppedKey, keptKey])) { server in
            try await Self.withGateway(jwksURL: server.url) { gw in
                #expect(await Self.waitUntilReady(gw), "the JWKS never loaded")
                // The same token twice: the second answer comes from the verified-token cache.
                let token = Self.es256(dropped, kid: "2025-01")
                #expect(try await Self.get(gw, token: token).status == 200)
                #expect(try await Self.get(gw, token: token).status == 200)
                let keptToken = Self.es256(kept, kid: "2025-02")
                #expect(try await Self.get(gw, token: keptToken).status == 200)

                // The issuer withdraws 2025-01. A token with an unknown kid makes the
                // gateway refetch at once (jwks_refresh is 10 min).
                server.setDocument(withdrawnDocument)
                gw.upstream.clearReceived()
                let fetchesBefore = server.requestCount()
                let probe = try await Self.get(gw, token: Self.es256(kept, kid: "2025-03"))
                AuthExpect.unauthorized(probe, reasons: ["unknown_key"], "unknown kid")
                #expect(await eventually(timeout: .seconds(5)) { server.requestCount() > fetchesBefore })
                let refused = await eventually(timeout: .seconds(5), poll: .milliseconds(100)) {
                    (try? await Self.get(gw, token: token))?.status == 401
                }
                #expect(refused, "a cached token signed by the withdrawn key was still accepted")
                AuthExpect.unauthorized(try await Self.get(gw, token: token), reasons: ["unknown_key"], "withdrawn key")
                #expect(gw.upstream.received().isEmpty, "a request with the withdrawn key reached the upstream")
                #expect(try await Self.get(gw, token: keptToken).status == 200, "the kept key still verifies")
            }
        }
    }

    @Test(
        "JWKS endpoint down after a good load: the last good key set stays in use",
        arguments: [DocumentServer.Mode.fail500, .close]
    )
    func outageKeepsLastGoodSet(mode: DocumentServer.Mode) async throws {
        let key = P256.Signing.PrivateKey()
        let document = TestKeys.jwks([TestKeys.jwk(p256: key.publicKey, kid: "k1")])
        try await DocumentServer.with(document: document) { server in
            try await Self.withGateway(jwksURL: server.url, refresh: .seconds(1)) { gw in
                #expect(await Self.waitUntilReady(gw), "the JWKS never loaded")
                #expect(try await Self.get(gw, token: Self.es256(key, kid: "k1")).status == 200)

                server.setMode(mode)
                let failing = server.requestCount()
                // Several refresh periods go by, each fetch failing.
                let refetched = await eventually(timeout: .seconds(8), poll: .milliseconds(100)) {
                    server.requestCount() >= failing + 2
                }
                #expect(refetched, "the gateway did not refetch every jwks_refresh (1 s)")

                // Fresh tokens (new jti, never cached) still verify against the kept set.
                for _ in 0..<3 {
                    let response = try await Self.get(gw, token: Self.es256(key, kid: "k1"))
                    #expect(response.status == 200, "\(mode): \(response.status) \(response.bodyString)")
                }
                #expect(await Self.readyStatus(gw) == 200, "a failed refresh made the gateway unready")
                // Keys were loaded once: an unknown kid is a plain 401, not keys_unavailable.
                gw.upstream.clearReceived()
                let unknown = try await Self.get(gw, token: Self.es256(key, kid: "k2"))
                AuthExpect.unauthorized(unknown, reasons: ["unknown_key"], "unknown kid during the outage")
                #expect(gw.upstream.received().isEmpty)
            }
        }
    }

    @Test(
        "a JWKS that never loaded: /readyz is 503 and its tokens get 503 keys_unavailable, not 401",
        arguments: [DocumentServer.Mode.fail500, .close]
    )
    func neverLoaded(mode: DocumentServer.Mode) async throws {
        let key = P256.Signing.PrivateKey()
        let document = TestKeys.jwks([TestKeys.jwk(p256: key.publicKey, kid: "k1")])
        try await DocumentServer.with(document: document, mode: mode) { server in
            try await Self.withGateway(jwksURL: server.url, refresh: .seconds(1)) { gw in
                let attempted = await eventually(timeout: .seconds(5)) { server.requestCount() >= 1 }
                #expect(attempted, "the gateway never fetched the JWKS")
                #expect(await Self.readyStatus(gw) == 503, "/readyz should be 503 while no key set was loaded")

                for (label, token) in [("kid k1", Self.es256(key, kid: "k1")), ("no kid", Self.es256(key, kid: nil))] {
                    let response = try await Self.get(gw, token: token)
                    #expect(response.status == 503, "\(mode), \(label): \(response.status) \(response.bodyString)")
                    #expect(response.errorCode == "keys_unavailable", "\(label): \(response.bodyString)")
                    #expect(response.header("Cache-Control") == "no-store")
                }
                #expect(gw.upstream.received().isEmpty)

                // Other issuers are unaffected.
                let other = try await Self.get(gw, token: Self.staticToken())
                #expect(other.status == 200, "static issuer: \(other.bodyString)")

                // Once the endpoint answers, the keys load and the gateway becomes ready.
                server.setMode(.serve)
                let ready = await eventually(timeout: .seconds(10), poll: .milliseconds(100)) {
                    await Self.readyStatus(gw) == 200
                }
                #expect(ready, "the gateway did not become ready once the JWKS endpoint recovered")
                let recovered = try await Self.get(gw, token: Self.es256(key, kid: "k1"))
                #expect(recovered.status == 200, "after recovery: \(recovered.bodyString)")
            }
        }
    }
}
