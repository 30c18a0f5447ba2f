import Foundation
import Testing

@testable import Gatehouse

/// The denial log (SPEC §8): one well-formed line per refusal, request ids matching the
/// responses, real API-key reasons kept, and never a token or a key secret in it.
@Suite("Denial log") struct DenialLogTests {
    @Test("each refusal writes exactly one line with the response's request id; no secret in it")
    func oneLinePerRefusal() async throws {
        let folder = try TempFolder("denials")
        let secret = Array("denial-log-test-secret-0123456789abcdef".utf8)
        let secretPath = try folder.write("hs.secret", secret)
        let logPath = folder.file("logs/denials.jsonl")
        let store = folder.file("keys.db")
        let apiKey = try APIKeyStore(path: store, prefix: "ghk").create(name: "t", subject: "key-user").fullKey
        let parsed = try #require(APIKeyFormat.parse(apiKey, prefix: "ghk"))
        let wrongSecretKey = "ghk_\(parsed.id)_" + String(repeating: "A", count: APIKeyFormat.secretLength)

        let now = unixNow()
        let goodClaims: [String: Any] = [
            "iss": "https://issuer.test", "aud": "gw", "sub": "u1", "iat": now, "exp": now + 600,
        ]
        let forged = TokenMinter.mint(
            header: ["alg": "HS256", "typ": "JWT"], claims: goodClaims, key: .hmac(Array("nope".utf8)))
        let expired = TokenMinter.mint(
            header: ["alg": "HS256"],
            claims: goodClaims.merging(["exp": now - 3600, "iat": now - 7200, "jti": "old-1"]) { $1 },
            key: .hmac(secret)
        )

        try await GatewayFixture.with(configure: { config in
            var issuer = IssuerConfig(issuer: "https://issuer.test", audiences: ["gw"], algorithms: [.hs256])
            issuer.hs256SecretFile = secretPath
            issuer.leeway = .seconds(0)
            config.issuers = [issuer]
            config.apiKeys = APIKeySettings(store: store)
            config.logs.denials = logPath
            AuthRoutes.install(into: &config)
        }) { gw in
            let cases: [(target: String, headers: [(String, String)], method: String, status: Int, reason: String)] = [
                ("/nothing", [], "GET", 404, "no_route"),
                ("/limited/x", [], "DELETE", 405, "method_not_allowed"),
                ("/secure/x", [], "GET", 401, "missing_credentials"),
                ("/secure/x", [("Authorization", "Bearer \(forged)")], "GET", 401, "invalid_signature"),
                ("/secure/x", [("Authorization", "Bearer \(expired)")], "GET", 401, "token_expired"),
                ("/secure/x", [("X-Api-Key", wrongSecretKey)], "GET", 401, "api_key_mismatch"),
                (
                    "/secure/x", [("X-Api-Key", "ghk_aaaaaaaaaaaa_" + String(repeating: "B", count: 43))], "GET", 401,
                    "unknown_api_key"
                ),
                (
                    "/secure/x", [("X-Api-Key", apiKey), ("Authorization", "Bearer \(forged)")], "GET", 400,
                    "ambiguous_credentials"
                ),
            ]
            var ids: [String: String] = [:]
            for (index, item) in cases.enumerated() {
                let id = "case-\(index)"
                let response = try await CurlClient.request(
                    method: item.method,
                    url: gw.url(item.target + "?q=\(index)"),
                    headers: item.headers + [("X-Request-Id", id)]
                )
                #expect(response.status == item.status, "\(item.reason)")
                ids[id] = item.reason
            }
            let raw = try await RawHTTPClient.exchange(
                port: gw.port,
                bytes: "GET /api/..;/x HTTP/1.1\r\nHost: g\r\nX-Request-Id: case-raw\r\nConnection: close\r\n\r\n",
                readTimeout: .seconds(5)
            )
            #expect(raw.first?.status == 400)
            ids["case-raw"] = "invalid_path"
            #expect(gw.upstream.received().isEmpty)

            let complete = await eventually(timeout: .seconds(3)) {
                ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").count
                    >= ids.count
            }
            #expect(complete, "denial lines missing")
        }
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 9)
        var seen: [String: [String: Any]] = [:]
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = try #require(object["request_id"] as? String)
            #expect(seen[id] == nil, "two lines for \(id)")
            seen[id] = object
            for key in [
                "ts", "client_ip", "method", "path", "route", "status", "reason", "auth_method", "subject", "email",
                "org",
                "role", "key_id", "issuer", "jti", "token_sha256", "required_scopes", "granted_scopes", "policy",
                "detail",
            ] {
                #expect(object.keys.contains(key), "\(key) missing in \(line)")
            }
            #expect((object["path"] as? String)?.contains("?") == false)
        }
        for (id, reason) in [
            "case-0": "no_route", "case-1": "method_not_allowed", "case-2": "missing_credentials",
            "case-3": "invalid_signature", "case-4": "token_expired", "case-5": "api_key_mismatch",
            "case-6": "unknown_api_key", "case-7": "ambiguous_credentials", "case-raw": "invalid_path",
        ] {
            #expect(seen[id]?["reason"] as? String == reason, "\(id)")
        }
        #expect(seen["case-3"]?["token_sha256"] as? String == DenialRecord.fingerprint(forged))
        #expect(seen["case-4"]?["issuer"] as? String == "https://issuer.test")
        #expect(seen["case-5"]?["key_id"] as? String == parsed.id)
        #expect(seen["case-raw"]?["path"] as? String == "/api/..;/x")
        // Never a token, a key secret or the HMAC secret.
        for secretText in [forged, expired, apiKey, parsed.secret, String(decoding: secret, as: UTF8.self)] {
            #expect(!text.contains(secretText))
        }
    }

    @Test("the log rotates by size and keeps denials_keep files")
    func rotation() async throws {
        let folder = try TempFolder("rotate")
        let path = folder.file("d.jsonl")
        let log = try DenialLog(path: path, maxBytes: 2_000, keep: 2)
        for index in 0..<100 {
            log.record(
                DenialRecord(
                    requestID: "r\(index)", clientIP: "127.0.0.1", method: "GET", path: "/x", route: nil, status: 404,
                    reason: "no_route", identity: nil, authentication: nil, tokenFingerprint: nil, requiredScopes: nil,
                    grantedScopes: nil, policy: nil, detail: "d"
                )
            )
            if index % 10 == 9 { try await Task.sleep(for: .milliseconds(250)) }
        }
        log.close()
        let files = [path, path + ".1", path + ".2"]
        for file in files { #expect(FileManager.default.fileExists(atPath: file), "\(file) missing") }
        #expect(!FileManager.default.fileExists(atPath: path + ".3"))
        for file in files {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(text.hasSuffix("\n"))
            for line in text.split(separator: "\n") {
                #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "torn line in \(file)")
            }
        }
        let last = try String(contentsOfFile: path, encoding: .utf8)
        #expect(last.contains(#""request_id":"r99""#))
    }
}

/// The refusals that come after authentication: scopes, roles, budgets, sizes, lock-out.
@Suite("Denial log, after authentication") struct DenialLogAuthorizationTests {
    @Test("403, 429 and 413 refusals each write one line with their own fields")
    func laterRefusals() async throws {
        let folder = try TempFolder("denials-authz")
        let secret = Array("denial-log-authz-secret-0123456789abcdef".utf8)
        let secretPath = try folder.write("hs.secret", secret)
        let logPath = folder.file("denials.jsonl")
        let now = unixNow()
        @Sendable func token(_ subject: String, role: String) -> String {
            TokenMinter.mint(
                header: ["alg": "HS256"],
                claims: [
                    "iss": "https://issuer.test", "aud": "gw", "sub": subject, "role": role, "iat": now,
                    "exp": now + 600,
                ],
                key: .hmac(secret)
            )
        }
        try await GatewayFixture.with(configure: { config in
            var issuer = IssuerConfig(issuer: "https://issuer.test", audiences: ["gw"], algorithms: [.hs256])
            issuer.hs256SecretFile = secretPath
            config.issuers = [issuer]
            config.apiKeys = APIKeySettings(store: folder.file("keys.db"))
            config.logs.denials = logPath
            config.roles = ["admin": ["mcp:read", "mcp:write"], "viewer": ["mcp:read"]]
            config.server.maxBodyBytes = 1024
            config.rateLimits.defaultPolicy = RateLimitPolicy(name: "default", requests: 1, per: .seconds(3600))
            config.rateLimits.authFailures = AuthFailureSettings(max: 1, per: .seconds(60), block: .seconds(60))
            let origin = config.routes[0].upstream
            let upstream = UpstreamURL(scheme: origin.scheme, host: origin.host, port: origin.port, basePath: "")
            config.routes += [
                RouteConfig(name: "write", path: "/write", upstream: upstream, scopes: ["mcp:write"]),
                RouteConfig(name: "admins", path: "/admins", upstream: upstream, roles: ["admin"]),
                RouteConfig(name: "read", path: "/read", upstream: upstream, scopes: ["mcp:read"]),
            ]
        }) { gw in
            let viewer = [("Authorization", "Bearer \(token("v1", role: "viewer"))")]
            let requests: [(String, String, [(String, String)], CurlClient.Body?, Int)] = [
                ("scope", "/write/x", viewer, nil, 403),
                ("role", "/admins/x", [("Authorization", "Bearer \(token("v2", role: "viewer"))")], nil, 403),
                ("first", "/read/x", [("Authorization", "Bearer \(token("v3", role: "viewer"))")], nil, 200),
                ("budget", "/read/x", [("Authorization", "Bearer \(token("v3", role: "viewer"))")], nil, 429),
                ("size", "/api/upload", [], .pattern(bytes: 4096), 413),
                ("bad", "/read/x", [("Authorization", "Bearer \(token("v4", role: "viewer"))x")], nil, 401),
                ("blocked", "/read/x", [("Authorization", "Bearer \(token("v5", role: "viewer"))")], nil, 429),
            ]
            for (id, path, headers, body, status) in requests {
                let response = try await CurlClient.request(
                    method: body == nil ? "GET" : "POST",
                    url: gw.url(path),
                    headers: headers + [("X-Request-Id", id)],
                    body: body
                )
                #expect(response.status == status, "\(id)")
            }
            #expect(
                await eventually(timeout: .seconds(3)) {
                    ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").count >= 6
                })
        }
        var byID: [String: [String: Any]] = [:]
        for line in try String(contentsOfFile: logPath, encoding: .utf8).split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let id = try #require(object["request_id"] as? String)
            #expect(byID[id] == nil, "two lines for \(id)")
            byID[id] = object
        }
        #expect(byID.count == 6)
        #expect(byID["first"] == nil)
        #expect(byID["scope"]?["reason"] as? String == "insufficient_scope")
        #expect(byID["scope"]?["required_scopes"] as? [String] == ["mcp:write"])
        #expect(byID["scope"]?["granted_scopes"] as? [String] == ["mcp:read"])
        #expect(byID["scope"]?["subject"] as? String == "v1")
        #expect(byID["scope"]?["role"] as? String == "viewer")
        #expect(byID["role"]?["reason"] as? String == "role_not_allowed")
        #expect(byID["budget"]?["reason"] as? String == "rate_limited")
        #expect(byID["budget"]?["policy"] as? String == "default")
        #expect(byID["size"]?["reason"] as? String == "body_too_large")
        #expect(byID["bad"]?["reason"] as? String == "invalid_signature")
        #expect(byID["blocked"]?["reason"] as? String == "client_blocked")
    }
}
