import Foundation
import Gatehouse
import Testing

/// API keys and token revocation as an operator manages them: the real `gatehouse`
/// binary (`keys create | list | revoke | rotate`, `revoke --jti | --subject`) changing
/// the store under a running `gatehouse serve`, which must follow within 2 s without a
/// restart (SPEC §1, §3) and never write a secret anywhere. Children are spawned with
/// `ChildProcess` (posix_spawn), not Foundation's `Process`, whose `run()` can crash the
/// test process on Linux (see `ChildProcess`).
@Suite("API key lifecycle", .serialized) struct APIKeyLifecycleTests {
    static let issuer = "https://hs.example"
    static let audience = "api://gatehouse"
    static let jwtSecret = Array("lifecycle-hmac-secret-0123456789abcdefgh".utf8)

    /// A config folder with `proxy.conf`, `jwt.secret` (ending with `\n`), the store at
    /// `data/keys.db` and both logs as files.
    struct Deployment {
        let folder: String
        let config: String
        let port: Int
        let adminPort: Int

        var store: String { folder + "/data/keys.db" }
        var accessLog: String { folder + "/access.jsonl" }
        var denialLog: String { folder + "/denials.jsonl" }

        func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

        static func make(upstreamPort: Int) async throws -> Deployment {
            let port = try await GatewayFixture.closedPort()
            let adminPort = try await GatewayFixture.closedPort()
            let config = try ConfigText.write(port: port, adminPort: adminPort, upstreamPort: upstreamPort)
            let folder = URL(fileURLWithPath: config).deletingLastPathComponent().path
            try Data(APIKeyLifecycleTests.jwtSecret + Array("\n".utf8))
                .write(to: URL(fileURLWithPath: folder + "/jwt.secret"))
            return Deployment(folder: folder, config: config, port: port, adminPort: adminPort)
        }

        func cli(_ arguments: [String]) async throws -> GatehouseProcess.Result {
            try await ChildProcess.runGatehouse(arguments + ["--config", config])
        }

        func serve() async throws -> ChildProcess {
            let running = try ChildProcess.spawn(GatehouseProcess.binary.path, ["serve", "--config", config])
            let ready = await eventually(timeout: .seconds(15), poll: .milliseconds(50)) {
                (try? await CurlClient.request(url: "http://127.0.0.1:\(adminPort)/readyz", timeout: .seconds(2)))?
                    .status == 200
            }
            #expect(ready, "gatehouse serve did not become ready: \(running.stderr)")
            return running
        }

        func call(_ headers: [(String, String)]) async throws -> CurlResponse {
            try await CurlClient.request(url: url("/secure/echo"), headers: headers, timeout: .seconds(10))
        }
    }

    enum ConfigText {
        static func write(port: Int, adminPort: Int, upstreamPort: Int) throws -> String {
            try GatehouseProcess.writeConfig(
                """
                [server]
                listen = "127.0.0.1:\(port)"

                [admin]
                listen = "127.0.0.1:\(adminPort)"

                [logs]
                access = "access.jsonl"
                denials = "denials.jsonl"

                [api_keys]
                store = "data/keys.db"

                # This test presents many bad keys on purpose from one address.
                [rate_limits.auth_failures]
                max = 100000
                per = "1m"
                block = "1s"

                [[issuers]]
                issuer = "\(APIKeyLifecycleTests.issuer)"
                audiences = ["\(APIKeyLifecycleTests.audience)"]
                algorithms = ["HS256"]
                hs256_secret_file = "jwt.secret"

                [[routes]]
                name = "secure"
                path = "/secure"
                upstream = "http://127.0.0.1:\(upstreamPort)/"
                auth = "required"
                """
            )
        }
    }

    /// `{"id":…,"key":…}` from the last stdout line of `keys create --json`.
    static func createdKey(_ result: GatehouseProcess.Result) throws -> (id: String, key: String) {
        #expect(result.status == 0, "keys create failed: \(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").last, "no output: \(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let id = try #require(object["id"] as? String)
        let key = try #require(object["key"] as? String)
        return (id, key)
    }

    /// The secret part of `<prefix>_<id>_<secret>`.
    static func secret(of key: String) -> String {
        String(key.split(separator: "_", maxSplits: 2).last ?? "")
    }

    /// Whether `response` is the 401 every API-key failure gets.
    static func isInvalidKey(_ response: CurlResponse?) -> Bool {
        response?.status == 401 && response?.reason == "invalid_api_key"
    }

    static func hs256(sub: String, jti: String, iat: Int) -> String {
        let claims: [String: Any] = [
            "iss": issuer, "aud": audience, "sub": sub, "jti": jti, "iat": iat, "exp": iat + 900,
            "scope": "mcp:read",
        ]
        return TokenMinter.mint(header: ["alg": "HS256", "typ": "JWT"], claims: claims, key: .hmac(jwtSecret))
    }

    @Test("keys create / list / revoke / rotate against a running gateway; no secret is ever written anywhere")
    func apiKeyLifecycle() async throws {
        try await TestUpstream.with { upstream in
            let deployment = try await Deployment.make(upstreamPort: upstream.port)
            defer { try? FileManager.default.removeItem(atPath: deployment.folder) }

            let first = try Self.createdKey(
                try await deployment.cli([
                    "keys", "create", "--name", "ci-bot", "--subject", "svc-1", "--email", "svc@example.com",
                    "--org", "org-9", "--role", "developer", "--scopes", "mcp:read", "--json",
                ]))
            let second = try Self.createdKey(
                try await deployment.cli([
                    "keys", "create", "--name", "rotating", "--subject", "svc-2", "--scopes", "mcp:read", "--json",
                ]))
            #expect(first.key.hasPrefix("ghk_\(first.id)_"))
            #expect(Self.secret(of: first.key).count == 43)

            let running = try await deployment.serve()
            // Never leave a gateway behind when an expectation throws half way.
            defer {
                running.send(SIGKILL)
                running.removeOutputFiles()
            }
            var secrets = [first.key, second.key]

            // The key works as X-Api-Key and as Authorization: Bearer; identity reaches the upstream.
            let spoofed: [(String, String)] = [("X-Api-Key-Id", "zzzzzzzzzzzz"), ("X_User_Id", "root")]
            for (label, header) in [
                ("X-Api-Key", ("X-Api-Key", first.key)), ("Bearer", ("Authorization", "Bearer \(first.key)")),
            ] {
                upstream.clearReceived()
                let response = try await deployment.call([header] + spoofed)
                #expect(response.status == 200, "\(label): \(response.status) \(response.bodyString)")
                let seen = try #require(upstream.received().first, "\(label): not forwarded")
                #expect(seen.identityValues(IdentityHeader.subject) == ["svc-1"], "\(label)")
                #expect(seen.identityValues(IdentityHeader.email) == ["svc@example.com"], "\(label)")
                #expect(seen.identityValues(IdentityHeader.org) == ["org-9"], "\(label)")
                #expect(seen.identityValues(IdentityHeader.role) == ["developer"], "\(label)")
                #expect(seen.identityValues(IdentityHeader.scopes) == ["mcp:read"], "\(label)")
                #expect(seen.identityValues(IdentityHeader.authMethod) == ["api_key"], "\(label)")
                #expect(seen.identityValues(IdentityHeader.keyID) == [first.id], "\(label)")
                #expect(seen.identityValues("X-Api-Key").isEmpty, "\(label): the key was forwarded")
                #expect(seen.identityValues("Authorization").isEmpty, "\(label): the key was forwarded")
            }

            // A key created while the gateway runs works within 2 s.
            let third = try Self.createdKey(
                try await deployment.cli(["keys", "create", "--name", "late", "--subject", "svc-3", "--json"]))
            secrets.append(third.key)
            let createdLive = await eventually(timeout: .seconds(2), poll: .milliseconds(50)) {
                (try? await deployment.call([("X-Api-Key", third.key)]))?.status == 200
            }
            #expect(createdLive, "a key created by the CLI was not accepted within 2 s")

            // keys list --json: every key, never a secret or a hash.
            let list = try await deployment.cli(["keys", "list", "--json"])
            #expect(list.status == 0, "\(list.stderr)")
            let records = try #require(
                try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]], "\(list.stdout)")
            #expect(Set(records.compactMap { $0["id"] as? String }) == [first.id, second.id, third.id])
            let listed = try #require(records.first { $0["id"] as? String == first.id })
            #expect(listed["name"] as? String == "ci-bot")
            #expect(listed["subject"] as? String == "svc-1")
            #expect(listed["org"] as? String == "org-9")
            #expect(listed["role"] as? String == "developer")
            for record in records {
                let suspicious = record.keys.filter {
                    ["key", "secret", "hash", "secret_sha256", "sha256"].contains($0)
                }
                #expect(suspicious.isEmpty, "keys list shows \(suspicious)")
            }
            for key in [first.key, second.key, third.key] {
                let secret = Self.secret(of: key)
                let hash = SHA256.hexDigest(of: Array(secret.utf8))
                #expect(!list.stdout.contains(secret) && !list.stderr.contains(secret), "keys list shows a secret")
                #expect(!list.stdout.contains(hash), "keys list shows a secret's SHA-256")
            }

            // A wrong secret for a real id, an unknown id, a truncated key: all invalid_api_key.
            let wrongSecret = "ghk_\(first.id)_" + String(repeating: "Z", count: 43)
            let unknownID = "ghk_aaaaaaaaaaaa_" + Self.secret(of: first.key)
            let truncated = String(first.key.dropLast())
            upstream.clearReceived()
            for (label, headers) in [
                ("wrong secret", [("X-Api-Key", wrongSecret)]),
                ("wrong secret as Bearer", [("Authorization", "Bearer \(wrongSecret)")]),
                ("unknown id with a real secret", [("X-Api-Key", unknownID)]),
                ("truncated key", [("X-Api-Key", truncated)]),
            ] {
                let response = try await deployment.call(headers)
                AuthExpect.unauthorized(response, reasons: ["invalid_api_key"], label)
            }
            #expect(upstream.received().isEmpty)

            // keys rotate: the old secret is refused and the new one accepted within 2 s.
            let rotate = try await deployment.cli(["keys", "rotate", second.id])
            #expect(rotate.status == 0, "\(rotate.stderr)")
            let rotatedKey = String(rotate.stdout.split(separator: "\n").last ?? "")
            #expect(
                rotatedKey.hasPrefix("ghk_\(second.id)_") && rotatedKey != second.key, "rotate printed \(rotatedKey)")
            secrets.append(rotatedKey)
            let rotatedAt = ContinuousClock.now
            let newAccepted = await eventually(timeout: .seconds(2), poll: .milliseconds(50)) {
                (try? await deployment.call([("X-Api-Key", rotatedKey)]))?.status == 200
            }
            #expect(newAccepted, "the rotated key was not accepted within 2 s")
            let oldRefused = await eventually(timeout: .seconds(2) - (ContinuousClock.now - rotatedAt)) {
                Self.isInvalidKey(try? await deployment.call([("X-Api-Key", second.key)]))
            }
            #expect(oldRefused, "the old secret still worked 2 s after keys rotate")
            #expect(upstream.received().last?.identityValues(IdentityHeader.keyID) == [second.id])

            // keys revoke: refused within 2 s, without a restart; other keys unaffected.
            let revoke = try await deployment.cli(["keys", "revoke", first.id])
            #expect(revoke.status == 0, "\(revoke.stderr)")
            let revoked = await eventually(timeout: .seconds(2), poll: .milliseconds(50)) {
                Self.isInvalidKey(try? await deployment.call([("X-Api-Key", first.key)]))
            }
            #expect(revoked, "a revoked key still worked 2 s after keys revoke")
            upstream.clearReceived()
            let revokedBearer = try await deployment.call([("Authorization", "Bearer \(first.key)")])
            AuthExpect.unauthorized(revokedBearer, reasons: ["invalid_api_key"], "revoked key as Bearer")
            #expect(upstream.received().isEmpty)
            #expect(try await deployment.call([("X-Api-Key", third.key)]).status == 200)
            #expect(try await deployment.call([("X-Api-Key", rotatedKey)]).status == 200)

            let listAfter = try await deployment.cli(["keys", "list", "--json"])
            let after = try JSONSerialization.jsonObject(with: Data(listAfter.stdout.utf8)) as? [[String: Any]] ?? []
            let revokedRecord = after.first { $0["id"] as? String == first.id }
            #expect(revokedRecord?["revoked"] is String, "keys list does not show the revocation")

            let served = await running.stop(signal: SIGTERM)
            #expect(served.status == 0, "serve exit \(served.status): \(served.stderr)")

            // Finally, no full key or secret anywhere on disk or in any output.
            let access = (try? Data(contentsOf: URL(fileURLWithPath: deployment.accessLog))) ?? Data()
            #expect(access.count > 0, "the access log is empty, so the check below would prove nothing")
            var places: [(String, [UInt8])] = [
                ("keys list output", Array((list.stdout + list.stderr + listAfter.stdout + listAfter.stderr).utf8)),
                ("serve stdout", Array(served.stdout.utf8)),
                ("serve stderr", Array(served.stderr.utf8)),
                ("access log", Array(access)),
                ("revoke output", Array((revoke.stdout + revoke.stderr).utf8)),
            ]
            for suffix in ["", "-wal", "-shm", "-journal"] {
                if let bytes = FileManager.default.contents(atPath: deployment.store + suffix) {
                    places.append(("keys.db\(suffix)", Array(bytes)))
                }
            }
            #expect(places.contains { $0.0 == "keys.db" && $0.1.count > 0 }, "the store file is missing")
            if let denials = FileManager.default.contents(atPath: deployment.denialLog) {
                places.append(("denial log", Array(denials)))
            }
            for key in secrets {
                let secret = Self.secret(of: key)
                for (place, bytes) in places {
                    #expect(!bytes.contains(subsequence: Array(secret.utf8)), "an API key secret appears in \(place)")
                }
            }
        }
    }

    @Test("gatehouse revoke --jti / --subject refuses JWTs in a running gateway within 2 s")
    func jwtRevocationCLI() async throws {
        try await TestUpstream.with { upstream in
            let deployment = try await Deployment.make(upstreamPort: upstream.port)
            defer { try? FileManager.default.removeItem(atPath: deployment.folder) }
            let running = try await deployment.serve()
            defer {
                running.send(SIGKILL)
                running.removeOutputFiles()
            }

            let now = unixNow()
            let byJTI = Self.hs256(sub: "user-7", jti: "cli-jti-1", iat: now - 60)
            let sibling = Self.hs256(sub: "user-7", jti: "cli-jti-2", iat: now - 60)
            let bySubject = Self.hs256(sub: "user-8", jti: "cli-jti-3", iat: now - 60)
            for token in [byJTI, sibling, bySubject] {
                let response = try await deployment.call([("Authorization", "Bearer \(token)")])
                #expect(response.status == 200, "\(response.bodyString)")
            }
            #expect(upstream.received().first?.identityValues(IdentityHeader.authMethod) == ["jwt"])

            let revokeJTI = try await deployment.cli(["revoke", "--jti", "cli-jti-1"])
            #expect(revokeJTI.status == 0, "\(revokeJTI.stderr)")
            let jtiRefused = await eventually(timeout: .seconds(2), poll: .milliseconds(50)) {
                (try? await deployment.call([("Authorization", "Bearer \(byJTI)")]))?.reason == "token_revoked"
            }
            #expect(jtiRefused, "revoke --jti did not take effect within 2 s")
            #expect(try await deployment.call([("Authorization", "Bearer \(sibling)")]).status == 200)

            let revokeSubject = try await deployment.cli(["revoke", "--subject", "user-8"])
            #expect(revokeSubject.status == 0, "\(revokeSubject.stderr)")
            let revokedDone = unixNow()
            let subjectRefused = await eventually(timeout: .seconds(2), poll: .milliseconds(50)) {
                (try? await deployment.call([("Authorization", "Bearer \(bySubject)")]))?.reason == "token_revoked"
            }
            #expect(subjectRefused, "revoke --subject did not take effect within 2 s")
            upstream.clearReceived()
            let refused = try await deployment.call([("Authorization", "Bearer \(bySubject)")])
            AuthExpect.unauthorized(refused, reasons: ["token_revoked"], "token of a revoked subject")
            #expect(upstream.received().isEmpty)

            // Logging in again after "log out everywhere" works.
            let fresh = Self.hs256(sub: "user-8", jti: "cli-jti-4", iat: revokedDone + 1)
            let again = try await deployment.call([("Authorization", "Bearer \(fresh)")])
            #expect(again.status == 200, "a token issued after the revocation: \(again.bodyString)")

            let served = await running.stop(signal: SIGTERM)
            #expect(served.status == 0, "\(served.stderr)")
            // SPEC §8: a token is never logged.
            let access = FileManager.default.contents(atPath: deployment.accessLog) ?? Data()
            let denials = FileManager.default.contents(atPath: deployment.denialLog) ?? Data()
            for token in [byJTI, sibling, bySubject, fresh] {
                let signature = String(token.split(separator: ".").last ?? "")
                for (place, bytes) in [
                    ("access log", Array(access)), ("denial log", Array(denials)),
                    ("serve output", Array((served.stdout + served.stderr).utf8)),
                ] {
                    #expect(!bytes.contains(subsequence: Array(signature.utf8)), "a token appears in the \(place)")
                }
            }
        }
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs in these bytes.
    func contains(subsequence needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        let first = needle[0]
        var index = 0
        while index <= count - needle.count {
            if self[index] == first && self[index..<(index + needle.count)].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }
}
