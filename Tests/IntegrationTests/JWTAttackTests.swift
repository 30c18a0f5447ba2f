import Foundation
import Gatehouse
import Testing

/// One token to present and what SPEC §3 says must happen to it. `reasons` empty means
/// accepted (200, forwarded); otherwise 401 `invalid_token` with one of `reasons` (more
/// than one only where SPEC leaves the reason open).
struct TokenCase: Sendable, CustomTestStringConvertible {
    let name: String
    let reasons: [String]
    let make: @Sendable () -> String

    init(_ name: String, _ reasons: [String], _ make: @escaping @Sendable () -> String) {
        self.name = name
        self.reasons = reasons
        self.make = make
    }

    init(_ name: String, accepted make: @escaping @Sendable () -> String) {
        self.init(name, [], make)
    }

    var testDescription: String { name }
}

/// Attacks on JWT verification (SPEC §3) through a real socket against the running
/// gateway: every refusal is a 401 with the right reason and challenge, and the upstream
/// never sees the request.
///
/// Issuers configured (all with audience `api://gatehouse` unless noted):
/// - A `https://a.example`: RS256 only; the RSA key with kid `rsa-a` and an EC key with kid
///   `ec-a`; leeway 30 s, max_token_lifetime 1 h, require_claims sub, exp, email.
/// - B `https://b.example`: RS256 + HS256; the same RSA key without kid, and a secret file
///   ending with `\n`.
/// - C `https://c.example`: ES256 + EdDSA; EC and Ed25519 keys without kid.
/// - S `https://project.supabase.co/auth/v1`: HS256 (secret file ending with `\r\n`),
///   audience `authenticated`, org and role read from `app_metadata.org_id` / `.role`.
@Suite("JWT attacks") struct JWTAttackTests {
    static let audience = "api://gatehouse"
    static let issuerA = "https://a.example"
    static let issuerB = "https://b.example"
    static let issuerC = "https://c.example"
    static let issuerS = "https://project.supabase.co/auth/v1"
    static let secretB = Array("b-shared-hmac-secret-0123456789-abcdef".utf8)
    static let secretS = Array("supabase-legacy-jwt-secret-0123456789xyz".utf8)

    // MARK: Gateway

    static func issuers(in folder: TempFolder) throws -> [IssuerConfig] {
        let rsa = try folder.write("rsa.pub.pem", TestKeys.rsaPublicPEM)
        let ec = try folder.write("ec.pub.pem", TestKeys.ecPublicPEM)
        let ed = try folder.write("ed.pub.pem", TestKeys.edPublicPEM)
        let secretFileB = try folder.write("b.secret", secretB + Array("\n".utf8))
        let secretFileS = try folder.write("s.secret", secretS + Array("\r\n".utf8))

        var a = IssuerConfig(issuer: issuerA, audiences: [audience], algorithms: [.rs256])
        a.keys = [KeyFileReference(path: rsa, kid: "rsa-a"), KeyFileReference(path: ec, kid: "ec-a")]
        a.leeway = .seconds(30)
        a.maxTokenLifetime = .seconds(3600)
        a.requireClaims = ["sub", "exp", "email"]

        var b = IssuerConfig(issuer: issuerB, audiences: [audience], algorithms: [.rs256, .hs256])
        b.keys = [KeyFileReference(path: rsa)]
        b.hs256SecretFile = secretFileB

        var c = IssuerConfig(issuer: issuerC, audiences: [audience], algorithms: [.es256, .edDSA])
        c.keys = [KeyFileReference(path: ec), KeyFileReference(path: ed)]

        var s = IssuerConfig(issuer: issuerS, audiences: ["authenticated"], algorithms: [.hs256])
        s.hs256SecretFile = secretFileS
        s.claims.org = "app_metadata.org_id"
        s.claims.role = "app_metadata.role"
        return [a, b, c, s]
    }

    /// A gateway with the four issuers, the auth routes of `AuthRoutes` and a fresh key store.
    static func withGateway<T: Sendable>(
        _ body: @Sendable (GatewayFixture, TempFolder) async throws -> T
    ) async throws -> T {
        let folder = try TempFolder("jwt")
        defer { folder.remove() }
        let issuers = try issuers(in: folder)
        return try await GatewayFixture.with(configure: { config in
            config.issuers = issuers
            config.apiKeys = APIKeySettings(store: folder.file("keys.db"))
            AuthRoutes.install(into: &config)
        }) { gw in
            try await body(gw, folder)
        }
    }

    static func get(
        _ gw: GatewayFixture, _ path: String = "/secure/echo", token: String?, headers: [(String, String)] = []
    ) async throws -> CurlResponse {
        var all = headers
        if let token { all.append(("Authorization", "Bearer \(token)")) }
        return try await CurlClient.request(url: gw.url(path), headers: all, timeout: .seconds(10))
    }

    // MARK: Tokens

    /// Valid claims for issuer `iss` at `now`; `changes` sets claims, a nil value removes one.
    static func claims(_ iss: String = issuerA, now: Int = unixNow(), _ changes: [String: Any?] = [:])
        -> [String: Any]
    {
        var claims: [String: Any] = [
            "iss": iss, "sub": "user-123", "aud": audience, "iat": now, "exp": now + 600,
            "jti": UUID().uuidString, "email": "user@example.com", "org": "org-1", "role": "developer",
            "scope": "mcp:read logs:read",
        ]
        for (name, value) in changes {
            if let value { claims[name] = value } else { claims.removeValue(forKey: name) }
        }
        return claims
    }

    /// Valid claims of issuer A with `changes` applied.
    static func claims(_ changes: [String: Any?]) -> [String: Any] {
        claims(issuerA, changes)
    }

    static func header(_ alg: String, kid: String?, _ extra: [String: Any] = [:]) -> [String: Any] {
        var header: [String: Any] = ["alg": alg, "typ": "JWT"]
        if let kid { header["kid"] = kid }
        header.merge(extra) { _, new in new }
        return header
    }

    /// An RS256 token of issuer A signed by the legitimate key (valid unless the claims say otherwise).
    static func rs256(_ claims: [String: Any] = claims(), kid: String? = "rsa-a", key: TokenKey = .rsa(TestKeys.rsa))
        -> String
    {
        TokenMinter.mint(header: header("RS256", kid: kid), claims: claims, key: key)
    }

    static func segments(_ token: String) -> [String] {
        token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    /// A valid token of issuer A whose segment `index` (0 header, 1 payload, 2 signature),
    /// in url-safe form, contains `symbol`; found by varying a filler claim.
    static func tokenWith(symbol: Character, inSegment index: Int) -> String {
        for length in 0..<64 {
            let token = rs256(claims(["note": String(repeating: "~?", count: length) + "~~~???"]))
            if segments(token)[index].contains(symbol) { return token }
        }
        fatalError("no token with \(symbol) in segment \(index)")
    }

    /// `header.payload` text re-signed with the legitimate RSA key, whatever its bytes.
    static func signedRS256(headerSegment: String, payloadSegment: String) -> String {
        TokenMinter.mint(
            headerSegment: headerSegment, payloadSegment: payloadSegment, alg: "RS256", key: .rsa(TestKeys.rsa))
    }

    // MARK: Cases

    static let algNone: [TokenCase] =
        ["none", "None", "NONE", "nOnE"].flatMap { spelling in
            [
                TokenCase("alg \(spelling), empty signature segment", ["unsupported_algorithm"]) {
                    TokenMinter.mint(header: header(spelling, kid: nil), claims: claims(), key: .unsigned)
                },
                TokenCase("alg \(spelling), with a signature segment", ["unsupported_algorithm"]) {
                    TokenMinter.mint(header: header(spelling, kid: nil), claims: claims(), key: .fixed(Array(0..<32)))
                },
                TokenCase("alg \(spelling), kid of the RSA key, RSA signature", ["unsupported_algorithm"]) {
                    TokenMinter.mint(header: header(spelling, kid: "rsa-a"), claims: claims(), key: .rsa(TestKeys.rsa))
                },
                TokenCase("alg \(spelling), issuer B (has an HMAC secret), empty signature", ["unsupported_algorithm"])
                {
                    TokenMinter.mint(header: header(spelling, kid: nil), claims: claims(issuerB), key: .unsigned)
                },
            ]
        } + [
            TokenCase("alg none, no signature segment at all", ["malformed_token", "unsupported_algorithm"]) {
                let token = TokenMinter.mint(header: header("none", kid: nil), claims: claims(), key: .unsigned)
                return String(token.dropLast())
            }
        ]

    static let keyConfusion: [TokenCase] = {
        let pem = TestKeys.rsaPublicPEM
        let trimmed = pem.hasSuffix("\n") ? String(pem.dropLast()) : pem
        let secrets: [(String, [UInt8])] = [
            ("PEM text", Array(pem.utf8)),
            ("PEM text + newline", Array((trimmed + "\n").utf8)),
            ("PEM text without final newline", Array(trimmed.utf8)),
            ("DER bytes", Array(TestKeys.rsa.publicKey.derRepresentation)),
            ("PKCS#1 PEM", Array(TestKeys.rsa.publicKey.pkcs1PEMRepresentation.utf8)),
        ]
        var cases: [TokenCase] = []
        for (label, secret) in secrets {
            cases.append(
                TokenCase(
                    "HS256 keyed with the RSA public key's \(label), RS256-only issuer", ["unsupported_algorithm"]
                ) {
                    TokenMinter.mint(header: header("HS256", kid: nil), claims: claims(), key: .hmac(secret))
                })
            cases.append(
                TokenCase(
                    "HS256 keyed with the RSA \(label), kid of the RSA key, RS256-only issuer",
                    [
                        "unsupported_algorithm"
                    ]
                ) {
                    TokenMinter.mint(header: header("HS256", kid: "rsa-a"), claims: claims(), key: .hmac(secret))
                })
            cases.append(
                TokenCase("HS256 keyed with the RSA \(label), issuer allowing RS256 + HS256", ["invalid_signature"]) {
                    TokenMinter.mint(header: header("HS256", kid: nil), claims: claims(issuerB), key: .hmac(secret))
                })
        }
        cases += [
            TokenCase("HS256 keyed with the secret file's bytes including its trailing \\n", ["invalid_signature"]) {
                TokenMinter.mint(
                    header: header("HS256", kid: nil), claims: claims(issuerB), key: .hmac(secretB + [0x0A]))
            },
            TokenCase("HS256 keyed with the secret including its trailing \\r\\n", ["invalid_signature"]) {
                let payload = claims(issuerS, ["aud": "authenticated"])
                return TokenMinter.mint(
                    header: header("HS256", kid: nil), claims: payload, key: .hmac(secretS + [0x0D, 0x0A]))
            },
            TokenCase("HS256 keyed with the secret plus a trailing \\r", ["invalid_signature"]) {
                let payload = claims(issuerS, ["aud": "authenticated"])
                return TokenMinter.mint(
                    header: header("HS256", kid: nil), claims: payload, key: .hmac(secretS + [0x0D]))
            },
            TokenCase("HS256 with issuer B's secret but issuer A's iss", ["unsupported_algorithm"]) {
                TokenMinter.mint(header: header("HS256", kid: nil), claims: claims(), key: .hmac(secretB))
            },
            TokenCase("RS256 signed as HMAC with the secret (issuer B)", ["invalid_signature"]) {
                TokenMinter.mint(header: header("RS256", kid: nil), claims: claims(issuerB), key: .hmac(secretB))
            },
        ]
        return cases
    }()

    static let algorithmRules: [TokenCase] = [
        TokenCase(
            "ES256 validly signed by the issuer's EC key (kid ec-a), RS256-only issuer",
            [
                "unsupported_algorithm"
            ]
        ) {
            TokenMinter.mint(header: header("ES256", kid: "ec-a"), claims: claims(), key: .p256(TestKeys.ec))
        },
        TokenCase("ES256 validly signed by the issuer's EC key, no kid, RS256-only issuer", ["unsupported_algorithm"]) {
            TokenMinter.mint(header: header("ES256", kid: nil), claims: claims(), key: .p256(TestKeys.ec))
        },
        TokenCase("RS384 validly signed by the issuer's RSA key, RS256-only issuer", ["unsupported_algorithm"]) {
            TokenMinter.mint(header: header("RS384", kid: "rsa-a"), claims: claims(), key: .rsa(TestKeys.rsa))
        },
        TokenCase("alg PS256 (not implemented)", ["unsupported_algorithm"]) {
            TokenMinter.mint(header: header("PS256", kid: "rsa-a"), claims: claims(), key: .rsa(TestKeys.rsa))
        },
        TokenCase("alg rs256 (wrong case)", ["unsupported_algorithm"]) {
            TokenMinter.mint(header: header("rs256", kid: "rsa-a"), claims: claims(), key: .rsa(TestKeys.rsa))
        },
        TokenCase("alg RS256 naming the EC key's kid, signed by the RSA key", ["unknown_key"]) {
            rs256(kid: "ec-a")
        },
        TokenCase("alg RS256 naming the EC key's kid, signed by the EC key", ["unknown_key"]) {
            TokenMinter.mint(header: header("RS256", kid: "ec-a"), claims: claims(), key: .p256(TestKeys.ec))
        },
        TokenCase("alg ES256 signed by the Ed25519 key (issuer C)", ["invalid_signature"]) {
            TokenMinter.mint(header: header("ES256", kid: nil), claims: claims(issuerC), key: .ed25519(TestKeys.ed))
        },
        TokenCase("alg EdDSA signed by the EC key (issuer C)", ["invalid_signature"]) {
            TokenMinter.mint(header: header("EdDSA", kid: nil), claims: claims(issuerC), key: .p256(TestKeys.ec))
        },
        TokenCase("unknown kid (other kid-bearing keys exist), validly signed by the rsa-a key", ["unknown_key"]) {
            rs256(kid: "rsa-b")
        },
        TokenCase("empty kid, validly signed by the rsa-a key", ["unknown_key"]) {
            rs256(kid: "")
        },
        TokenCase("kid differing from rsa-a only in case", ["unknown_key"]) {
            rs256(kid: "RSA-A")
        },
        TokenCase("kid is a number", ["malformed_token", "unknown_key"]) {
            TokenMinter.mint(
                header: ["alg": "RS256", "kid": 1], claims: claims(), key: .rsa(TestKeys.rsa))
        },
        TokenCase("header without alg", ["malformed_token", "unsupported_algorithm"]) {
            TokenMinter.mint(header: ["typ": "JWT", "kid": "rsa-a"], claims: claims(), key: .rsa(TestKeys.rsa))
        },
    ]

    /// The attacker's RSA public key as a JWK.
    static func attackerJWK(kid: String?) -> [String: Any] {
        TestKeys.jwk(rsa: TestKeys.attackerRSA.publicKey, kid: kid)
    }

    /// A valid-looking token of issuer A signed by the attacker's RSA key.
    static func attackerSigned(kid: String?, _ extra: [String: Any]) -> String {
        TokenMinter.mint(header: header("RS256", kid: kid, extra), claims: claims(), key: .rsa(TestKeys.attackerRSA))
    }

    static var attackerDER: String { B64URL.standard(TestKeys.attackerRSA.publicKey.derRepresentation) }

    static let embeddedKeys: [TokenCase] = [
        TokenCase("embedded jwk (attacker key), no kid", ["invalid_signature"]) {
            attackerSigned(kid: nil, ["jwk": attackerJWK(kid: nil)])
        },
        TokenCase("embedded jwk (attacker key) with its own kid", ["unknown_key"]) {
            attackerSigned(kid: "attacker", ["jwk": attackerJWK(kid: "attacker")])
        },
        TokenCase("embedded jwk (attacker key) claiming kid rsa-a", ["invalid_signature"]) {
            attackerSigned(kid: "rsa-a", ["jwk": attackerJWK(kid: "rsa-a")])
        },
        TokenCase("jku pointing at an attacker JWKS, attacker kid", ["unknown_key"]) {
            attackerSigned(kid: "attacker", ["jku": "http://127.0.0.1:9/jwks.json"])
        },
        TokenCase("jku pointing at an attacker JWKS, no kid", ["invalid_signature"]) {
            attackerSigned(kid: nil, ["jku": "http://127.0.0.1:9/jwks.json"])
        },
        TokenCase("x5c carrying the attacker key, no kid", ["invalid_signature"]) {
            attackerSigned(kid: nil, ["x5c": [attackerDER]])
        },
        TokenCase("x5c carrying the attacker key, kid rsa-a", ["invalid_signature"]) {
            attackerSigned(kid: "rsa-a", ["x5c": [attackerDER]])
        },
        TokenCase("x5u pointing at an attacker certificate", ["invalid_signature"]) {
            attackerSigned(kid: nil, ["x5u": "http://127.0.0.1:9/cert.pem"])
        },
        TokenCase("embedded EC jwk (attacker key), ES256 issuer C", ["invalid_signature"]) {
            let jwk = TestKeys.jwk(p256: TestKeys.attackerEC.publicKey, kid: nil)
            return TokenMinter.mint(
                header: header("ES256", kid: nil, ["jwk": jwk]), claims: claims(issuerC),
                key: .p256(TestKeys.attackerEC))
        },
        TokenCase("attacker key signing an otherwise perfect token", ["invalid_signature"]) {
            attackerSigned(kid: "rsa-a", [:])
        },
    ]

    static let critical: [TokenCase] = [
        TokenCase("crit naming a registered claim", ["malformed_token", "unsupported_algorithm"]) {
            TokenMinter.mint(
                header: header("RS256", kid: "rsa-a", ["crit": ["exp"], "exp": unixNow() + 600]), claims: claims(),
                key: .rsa(TestKeys.rsa))
        },
        TokenCase("crit b64 (RFC 7797 unencoded payload)", ["malformed_token", "unsupported_algorithm"]) {
            TokenMinter.mint(
                header: header("RS256", kid: "rsa-a", ["crit": ["b64"], "b64": false]), claims: claims(),
                key: .rsa(TestKeys.rsa))
        },
        TokenCase("crit empty list", ["malformed_token", "unsupported_algorithm"]) {
            TokenMinter.mint(
                header: header("RS256", kid: "rsa-a", ["crit": [String]()]), claims: claims(), key: .rsa(TestKeys.rsa))
        },
    ]

    static let tampering: [TokenCase] = [
        TokenCase("header changed after signing (cty added)", ["invalid_signature"]) {
            let parts = segments(rs256())
            let forged = B64URL.encode(TokenMinter.json(header("RS256", kid: "rsa-a", ["cty": "JWT"])))
            return [forged, parts[1], parts[2]].joined(separator: ".")
        },
        TokenCase("payload changed after signing (sub = admin)", ["invalid_signature"]) {
            let now = unixNow()
            let jti = UUID().uuidString
            let parts = segments(rs256(claims(now: now, ["jti": jti])))
            let forged = B64URL.encode(TokenMinter.json(claims(now: now, ["jti": jti, "sub": "admin"])))
            return [parts[0], forged, parts[2]].joined(separator: ".")
        },
        TokenCase("payload changed after signing (scope widened)", ["invalid_signature"]) {
            let now = unixNow()
            let jti = UUID().uuidString
            let parts = segments(rs256(claims(now: now, ["jti": jti])))
            let forged = B64URL.encode(TokenMinter.json(claims(now: now, ["jti": jti, "scope": "admin:all"])))
            return [parts[0], forged, parts[2]].joined(separator: ".")
        },
        TokenCase("signature: first character changed", ["invalid_signature"]) {
            var parts = segments(rs256())
            let first = parts[2].first == "A" ? "B" : "A"
            parts[2] = first + parts[2].dropFirst()
            return parts.joined(separator: ".")
        },
        TokenCase("signature of another valid token", ["invalid_signature"]) {
            let parts = segments(rs256())
            let other = segments(rs256())
            return [parts[0], parts[1], other[2]].joined(separator: ".")
        },
        TokenCase("signature shortened by 4 bytes (6 characters)", ["invalid_signature"]) {
            let parts = segments(rs256())
            return [parts[0], parts[1], String(parts[2].dropLast(6))].joined(separator: ".")
        },
        TokenCase("signature segment emptied", ["invalid_signature", "malformed_token"]) {
            let parts = segments(rs256())
            return [parts[0], parts[1], ""].joined(separator: ".")
        },
        TokenCase("token truncated in the middle", ["malformed_token"]) {
            let token = rs256()
            return String(token.prefix(token.count / 2))
        },
        TokenCase("signature segment dropped (two segments)", ["malformed_token"]) {
            segments(rs256()).prefix(2).joined(separator: ".")
        },
        TokenCase("a fourth segment appended", ["malformed_token"]) {
            rs256() + ".AAAA"
        },
        TokenCase("five segments (JWE shape)", ["malformed_token"]) {
            let parts = segments(rs256())
            return [parts[0], "", parts[1], "AAAA", parts[2]].joined(separator: ".")
        },
        TokenCase("over 8 KiB, validly signed", ["malformed_token"]) {
            rs256(claims(["pad": String(repeating: "x", count: 9000)]))
        },
    ]

    static let encoding: [TokenCase] = [
        TokenCase("header with = padding (signed as sent)", ["malformed_token"]) {
            var json = TokenMinter.json(header("RS256", kid: "rsa-a"))
            while B64URL.encode(json).count % 4 == 0 { json += " " }
            let encoded = B64URL.encode(json)
            let padded = encoded + String(repeating: "=", count: 4 - encoded.count % 4)
            return signedRS256(headerSegment: padded, payloadSegment: B64URL.encode(TokenMinter.json(claims())))
        },
        TokenCase("payload with = padding (signed as sent)", ["malformed_token"]) {
            var payload = claims()
            var encoded = B64URL.encode(TokenMinter.json(payload))
            var filler = ""
            while encoded.count % 4 == 0 {
                filler += "x"
                payload["note"] = filler
                encoded = B64URL.encode(TokenMinter.json(payload))
            }
            let padded = encoded + String(repeating: "=", count: 4 - encoded.count % 4)
            return signedRS256(
                headerSegment: B64URL.encode(TokenMinter.json(header("RS256", kid: "rsa-a"))), payloadSegment: padded)
        },
        TokenCase("payload in standard base64 with + (signed as sent)", ["malformed_token"]) {
            let parts = segments(tokenWith(symbol: "-", inSegment: 1))
            return signedRS256(
                headerSegment: parts[0], payloadSegment: parts[1].replacingOccurrences(of: "-", with: "+"))
        },
        TokenCase("payload in standard base64 with / (signed as sent)", ["malformed_token"]) {
            let parts = segments(tokenWith(symbol: "_", inSegment: 1))
            return signedRS256(
                headerSegment: parts[0], payloadSegment: parts[1].replacingOccurrences(of: "_", with: "/"))
        },
        TokenCase("signature in standard base64 with +", ["malformed_token"]) {
            var parts = segments(tokenWith(symbol: "-", inSegment: 2))
            parts[2] = parts[2].replacingOccurrences(of: "-", with: "+")
            return parts.joined(separator: ".")
        },
        TokenCase("signature in standard base64 with /", ["malformed_token"]) {
            var parts = segments(tokenWith(symbol: "_", inSegment: 2))
            parts[2] = parts[2].replacingOccurrences(of: "_", with: "/")
            return parts.joined(separator: ".")
        },
        TokenCase("signature with = padding", ["malformed_token"]) {
            rs256() + "=="
        },
        TokenCase("a character outside base64url in the payload", ["malformed_token"]) {
            let parts = segments(rs256())
            return signedRS256(headerSegment: parts[0], payloadSegment: parts[1] + "%")
        },
        TokenCase("header that is not JSON", ["malformed_token"]) {
            signedRS256(
                headerSegment: B64URL.encode("not json"), payloadSegment: B64URL.encode(TokenMinter.json(claims())))
        },
        TokenCase("payload that is not JSON", ["malformed_token"]) {
            signedRS256(
                headerSegment: B64URL.encode(TokenMinter.json(header("RS256", kid: "rsa-a"))),
                payloadSegment: B64URL.encode("sub=admin"))
        },
        TokenCase("header that is a JSON array", ["malformed_token"]) {
            signedRS256(
                headerSegment: B64URL.encode(#"["RS256"]"#), payloadSegment: B64URL.encode(TokenMinter.json(claims())))
        },
        TokenCase("payload that is a JSON string", ["malformed_token"]) {
            signedRS256(
                headerSegment: B64URL.encode(TokenMinter.json(header("RS256", kid: "rsa-a"))),
                payloadSegment: B64URL.encode(#""user-123""#))
        },
        TokenCase("payload JSON followed by garbage", ["malformed_token"]) {
            signedRS256(
                headerSegment: B64URL.encode(TokenMinter.json(header("RS256", kid: "rsa-a"))),
                payloadSegment: B64URL.encode(TokenMinter.json(claims()) + "x"))
        },
        TokenCase("not a JWT at all", ["malformed_token"]) {
            "definitely-not-a-token"
        },
    ]

    static var attacks: [TokenCase] {
        algNone + keyConfusion + algorithmRules + embeddedKeys + critical + tampering + encoding
    }

    /// Claim rules on both sides of each boundary (issuer A: leeway 30 s, max lifetime 1 h).
    static let claimRules: [TokenCase] = [
        TokenCase("exp 20 s ago (inside the 30 s leeway)", accepted: { rs256(claims(["exp": unixNow() - 20])) }),
        TokenCase("exp 45 s ago (past the leeway)", ["token_expired"]) { rs256(claims(["exp": unixNow() - 45])) },
        TokenCase("exp an hour ago", ["token_expired"]) {
            rs256(claims(["exp": unixNow() - 3600, "iat": unixNow() - 3700]))
        },
        TokenCase("exp missing", ["missing_claim", "token_expired"]) { rs256(claims(["exp": nil])) },
        TokenCase("exp not a number", ["malformed_token", "missing_claim", "token_expired"]) {
            rs256(claims(["exp": "tomorrow"]))
        },
        TokenCase("nbf 20 s ahead (inside the leeway)", accepted: { rs256(claims(["nbf": unixNow() + 20])) }),
        TokenCase("nbf 45 s ahead", ["token_not_yet_valid"]) { rs256(claims(["nbf": unixNow() + 45])) },
        TokenCase("iat 20 s ahead (inside the leeway)", accepted: { rs256(claims(["iat": unixNow() + 20])) }),
        TokenCase("iat 45 s ahead", ["token_not_yet_valid"]) { rs256(claims(["iat": unixNow() + 45])) },
        TokenCase("iss of an unknown issuer", ["invalid_issuer"]) { rs256(claims("https://evil.example")) },
        TokenCase("iss missing", ["invalid_issuer"]) { rs256(claims(["iss": nil])) },
        TokenCase("iss with a trailing slash", ["invalid_issuer"]) { rs256(claims("https://a.example/")) },
        TokenCase("iss in another case", ["invalid_issuer"]) { rs256(claims("HTTPS://A.EXAMPLE")) },
        TokenCase("iss as an array", ["invalid_issuer", "malformed_token"]) { rs256(claims(["iss": [issuerA]])) },
        TokenCase("aud as a string", accepted: { rs256(claims(["aud": audience])) }),
        TokenCase(
            "aud as an array containing the audience",
            accepted: {
                rs256(claims(["aud": ["https://other.example", audience]]))
            }),
        TokenCase("aud array without the audience", ["invalid_audience"]) {
            rs256(claims(["aud": ["https://other.example", "api://gatehouse/x"]]))
        },
        TokenCase("aud string that is wrong", ["invalid_audience"]) { rs256(claims(["aud": "https://other.example"])) },
        TokenCase("aud with a suffix", ["invalid_audience"]) { rs256(claims(["aud": audience + "x"])) },
        TokenCase("aud missing", ["invalid_audience", "missing_claim"]) { rs256(claims(["aud": nil])) },
        TokenCase("require_claims: email missing", ["missing_claim"]) { rs256(claims(["email": nil])) },
        TokenCase("require_claims: sub missing", ["missing_claim"]) { rs256(claims(["sub": nil])) },
        TokenCase(
            "lifetime exactly max_token_lifetime (1 h)",
            accepted: {
                let iat = unixNow() - 100
                return rs256(claims(["iat": iat, "exp": iat + 3600]))
            }),
        TokenCase("lifetime 1 s over max_token_lifetime", ["token_too_old"]) {
            let iat = unixNow() - 100
            return rs256(claims(["iat": iat, "exp": iat + 3601]))
        },
        TokenCase("lifetime of a day", ["token_too_old"]) {
            let iat = unixNow() - 100
            return rs256(claims(["iat": iat, "exp": iat + 86_400]))
        },
    ]

    /// Tokens every issuer should accept, one per algorithm and key-selection path.
    static let validTokens: [TokenCase] = [
        TokenCase("RS256 with kid rsa-a (issuer A)", accepted: { rs256() }),
        TokenCase("RS256 without kid: tried against every RSA key of issuer A", accepted: { rs256(kid: nil) }),
        TokenCase("RS256 without kid (issuer B, kid-less key)", accepted: { rs256(claims(issuerB), kid: nil) }),
        TokenCase(
            "RS256 with a kid no key carries, but issuer B's RSA key has no kid",
            accepted: {
                rs256(claims(issuerB), kid: "rotated-away")
            }),
        TokenCase(
            "HS256 (issuer B, secret file with a trailing \\n)",
            accepted: {
                TokenMinter.mint(header: header("HS256", kid: nil), claims: claims(issuerB), key: .hmac(secretB))
            }),
        TokenCase(
            "HS256 with a kid (issuer B's secret has none)",
            accepted: {
                TokenMinter.mint(header: header("HS256", kid: "k1"), claims: claims(issuerB), key: .hmac(secretB))
            }),
        TokenCase(
            "HS256 (issuer S, secret file with a trailing \\r\\n)",
            accepted: {
                TokenMinter.mint(
                    header: header("HS256", kid: nil), claims: claims(issuerS, ["aud": "authenticated"]),
                    key: .hmac(secretS))
            }),
        TokenCase(
            "ES256 (issuer C)",
            accepted: {
                TokenMinter.mint(header: header("ES256", kid: nil), claims: claims(issuerC), key: .p256(TestKeys.ec))
            }),
        TokenCase(
            "EdDSA (issuer C)",
            accepted: {
                TokenMinter.mint(header: header("EdDSA", kid: nil), claims: claims(issuerC), key: .ed25519(TestKeys.ed))
            }),
    ]

    // MARK: Tests

    @Test("attack tokens are refused 401 with the right reason and never forwarded", arguments: attacks)
    func attack(_ attack: TokenCase) async throws {
        try await Self.withGateway { gw, _ in
            let token = attack.make()
            let required = try await Self.get(gw, token: token)
            AuthExpect.unauthorized(required, reasons: attack.reasons, attack.name)
            // auth = optional refuses a failing credential exactly like a required route.
            let optional = try await Self.get(gw, "/open/echo", token: token)
            AuthExpect.unauthorized(optional, reasons: attack.reasons, "\(attack.name) (optional route)")
            #expect(gw.upstream.received().isEmpty, "\(attack.name) reached the upstream")
        }
    }

    @Test("claim rules on both sides of each boundary", arguments: claimRules)
    func claimRule(_ rule: TokenCase) async throws {
        try await Self.withGateway { gw, _ in
            let response = try await Self.get(gw, token: rule.make())
            if rule.reasons.isEmpty {
                #expect(response.status == 200, "\(rule.name): \(response.status) \(response.bodyString)")
                #expect(gw.upstream.received().count == 1, "\(rule.name)")
            } else {
                AuthExpect.unauthorized(response, reasons: rule.reasons, rule.name)
                #expect(gw.upstream.received().isEmpty, "\(rule.name) reached the upstream")
            }
        }
    }

    @Test("valid tokens of every algorithm are accepted with identity headers", arguments: validTokens)
    func validToken(_ valid: TokenCase) async throws {
        try await Self.withGateway { gw, _ in
            let response = try await Self.get(gw, token: valid.make())
            #expect(response.status == 200, "\(valid.name): \(response.status) \(response.bodyString)")
            let seen = try #require(gw.upstream.received().first, "\(valid.name) was not forwarded")
            #expect(seen.uri == "/echo")
            #expect(seen.identityValues(IdentityHeader.subject) == ["user-123"], "\(valid.name)")
            #expect(seen.identityValues(IdentityHeader.authMethod) == ["jwt"], "\(valid.name)")
            #expect(seen.identityValues("Authorization").isEmpty, "\(valid.name): Authorization forwarded")
        }
    }

    @Test("the 8 KiB limit: a token of exactly 8192 bytes verifies, a longer one is malformed_token")
    func sizeLimit() async throws {
        /// An HS256 token of issuer B of exactly `size` bytes, if the encoding can reach it.
        func token(ofSize size: Int) -> String? {
            let base = Self.claims(Self.issuerB)
            for kid in ["k", "kk", "kkk", "kkkk"] {
                let header = Self.header("HS256", kid: kid)
                let empty = TokenMinter.mint(header: header, claims: base, key: .hmac(Self.secretB)).utf8.count
                let estimate = max(0, (size - empty) * 3 / 4 - 8)
                for length in estimate..<(estimate + 24) {
                    var claims = base
                    claims["pad"] = String(repeating: "p", count: length)
                    let token = TokenMinter.mint(header: header, claims: claims, key: .hmac(Self.secretB))
                    if token.utf8.count == size { return token }
                }
            }
            return nil
        }
        let atLimit = try #require(token(ofSize: 8192))
        let overLimit = try #require(token(ofSize: 8193) ?? token(ofSize: 8194))
        try await Self.withGateway { gw, _ in
            let accepted = try await Self.get(gw, token: atLimit)
            #expect(accepted.status == 200, "8192-byte token: \(accepted.status) \(accepted.bodyString)")
            #expect(gw.upstream.received().count == 1)
            gw.upstream.clearReceived()
            let refused = try await Self.get(gw, token: overLimit)
            AuthExpect.unauthorized(refused, reasons: ["malformed_token"], "\(overLimit.utf8.count)-byte token")
            #expect(gw.upstream.received().isEmpty)
        }
    }

    @Test("identity headers reach the upstream; spoofed client values (any case, _ for -) never do")
    func identityHeaders() async throws {
        try await Self.withGateway { gw, _ in
            let spoofed: [(String, String)] = [
                ("X-User-Id", "admin"), ("x-user-email", "evil@example.com"), ("X-ORG-ID", "org-evil"),
                ("X_User_Role", "admin"), ("x_user_scopes", "admin:all"), ("X-Auth-Method", "api_key"),
                ("X-Api-Key-Id", "abcdefghijkl"), ("x_api_key_id", "mnopqrstuvwx"), ("X_USER_ID", "root"),
            ]
            let token = Self.rs256()
            let response = try await Self.get(gw, token: token, headers: spoofed)
            #expect(response.status == 200, "\(response.bodyString)")
            let seen = try #require(gw.upstream.received().first)
            #expect(seen.identityValues(IdentityHeader.subject) == ["user-123"])
            #expect(seen.identityValues(IdentityHeader.email) == ["user@example.com"])
            #expect(seen.identityValues(IdentityHeader.org) == ["org-1"])
            #expect(seen.identityValues(IdentityHeader.role) == ["developer"])
            #expect(seen.identityValues(IdentityHeader.scopes) == ["mcp:read logs:read"])
            #expect(seen.identityValues(IdentityHeader.authMethod) == ["jwt"])
            #expect(seen.identityValues(IdentityHeader.keyID).isEmpty)
            #expect(seen.identityValues("Authorization").isEmpty, "the client's Authorization was forwarded")
            let leaked = seen.headers.filter { $0.1.contains(token) }
            #expect(leaked.isEmpty, "the token reached the upstream in \(leaked.map(\.0))")

            // A scope array is joined with spaces; absent identity fields send no header.
            gw.upstream.clearReceived()
            let sparse = TokenMinter.mint(
                header: Self.header("ES256", kid: nil),
                claims: Self.claims(
                    Self.issuerC, ["email": nil, "org": nil, "role": nil, "scope": ["mcp:read", "mcp:write"]]),
                key: .p256(TestKeys.ec))
            let second = try await Self.get(gw, token: sparse, headers: spoofed)
            #expect(second.status == 200, "\(second.bodyString)")
            let seen2 = try #require(gw.upstream.received().first)
            #expect(seen2.identityValues(IdentityHeader.subject) == ["user-123"])
            #expect(seen2.identityValues(IdentityHeader.scopes) == ["mcp:read mcp:write"])
            #expect(seen2.identityValues(IdentityHeader.email).isEmpty)
            #expect(seen2.identityValues(IdentityHeader.org).isEmpty)
            #expect(seen2.identityValues(IdentityHeader.role).isEmpty)
            #expect(seen2.identityValues(IdentityHeader.keyID).isEmpty)
            #expect(seen2.identityValues(IdentityHeader.authMethod) == ["jwt"])
        }
    }

    @Test("the client's Authorization is forwarded only on a forward_authorization route")
    func authorizationForwarding() async throws {
        try await Self.withGateway { gw, _ in
            let token = Self.rs256()
            let stripped = try await Self.get(gw, "/secure/echo", token: token)
            #expect(stripped.status == 200)
            #expect(gw.upstream.received().first?.identityValues("Authorization") == [])
            gw.upstream.clearReceived()
            let passed = try await Self.get(gw, "/passthru/echo", token: token)
            #expect(passed.status == 200)
            let seen = try #require(gw.upstream.received().first)
            #expect(seen.identityValues("Authorization") == ["Bearer \(token)"])
            #expect(seen.identityValues(IdentityHeader.subject) == ["user-123"])
        }
    }

    @Test("Supabase-style dotted claim mapping (app_metadata.org_id, app_metadata.role)")
    func supabaseMapping() async throws {
        try await Self.withGateway { gw, _ in
            let now = unixNow()
            let claims: [String: Any] = [
                "iss": Self.issuerS, "aud": "authenticated", "sub": "6f1c2a9e-0d4b-4f0e-9b1a-3c2d1e0f9a8b",
                "email": "dev@example.com", "role": "authenticated", "iat": now, "exp": now + 3600,
                "app_metadata": ["org_id": "org-42", "role": "admin", "provider": "email"],
                "user_metadata": ["org_id": "org-spoof"],
            ]
            let token = TokenMinter.mint(
                header: Self.header("HS256", kid: nil), claims: claims, key: .hmac(Self.secretS))
            let response = try await Self.get(gw, token: token)
            #expect(response.status == 200, "\(response.bodyString)")
            let seen = try #require(gw.upstream.received().first)
            #expect(seen.identityValues(IdentityHeader.subject) == ["6f1c2a9e-0d4b-4f0e-9b1a-3c2d1e0f9a8b"])
            #expect(seen.identityValues(IdentityHeader.email) == ["dev@example.com"])
            #expect(seen.identityValues(IdentityHeader.org) == ["org-42"])
            #expect(seen.identityValues(IdentityHeader.role) == ["admin"])
            #expect(seen.identityValues(IdentityHeader.authMethod) == ["jwt"])
        }
    }

    @Test("auth = optional: anonymous without a credential, identity with one, 401 for a bad one")
    func optionalRoute() async throws {
        try await Self.withGateway { gw, _ in
            let spoofed: [(String, String)] = [
                ("X-User-Id", "admin"), ("X_User_Role", "admin"), ("x-auth-method", "jwt"), ("X-User-Scopes", "all"),
            ]
            let anonymous = try await Self.get(gw, "/open/echo", token: nil, headers: spoofed)
            #expect(anonymous.status == 200, "\(anonymous.bodyString)")
            let seen = try #require(gw.upstream.received().first)
            for name in IdentityHeader.all {
                #expect(seen.identityValues(name).isEmpty, "anonymous request carried \(name)")
            }

            gw.upstream.clearReceived()
            let identified = try await Self.get(gw, "/open/echo", token: Self.rs256())
            #expect(identified.status == 200)
            #expect(gw.upstream.received().first?.identityValues(IdentityHeader.subject) == ["user-123"])

            gw.upstream.clearReceived()
            var parts = Self.segments(Self.rs256())
            parts[1] = B64URL.encode(TokenMinter.json(Self.claims(["sub": "admin"])))
            let bad = try await Self.get(gw, "/open/echo", token: parts.joined(separator: "."))
            AuthExpect.unauthorized(bad, reasons: ["invalid_signature"], "tampered token on the optional route")
            let badKey = try await Self.get(
                gw, "/open/echo", token: nil,
                headers: [("X-Api-Key", "ghk_abcdefghijkl_" + String(repeating: "A", count: 43))])
            AuthExpect.unauthorized(badKey, reasons: ["invalid_api_key"], "unknown API key on the optional route")
            #expect(gw.upstream.received().isEmpty)
        }
    }

    @Test("no credential on a required route: 401 missing_credentials, challenge without error=")
    func missingCredentials() async throws {
        try await Self.withGateway { gw, _ in
            let response = try await Self.get(gw, token: nil, headers: [("X-User-Id", "admin")])
            AuthExpect.unauthorized(response, reasons: ["missing_credentials"], "no credential")
            #expect(gw.upstream.received().isEmpty)
        }
    }

    @Test("two different credentials: 400 ambiguous_credentials, nothing forwarded")
    func ambiguousCredentials() async throws {
        try await Self.withGateway { gw, _ in
            let key = "ghk_abcdefghijkl_" + String(repeating: "A", count: 43)
            let variants: [(String, String, [(String, String)])] = [
                (
                    "JWT + API key header", "/secure/echo",
                    [("Authorization", "Bearer \(Self.rs256())"), ("X-Api-Key", key)]
                ),
                (
                    "two different JWTs", "/secure/echo",
                    [("Authorization", "Bearer \(Self.rs256())"), ("Authorization", "Bearer \(Self.rs256())")]
                ),
                (
                    "JWT + API key on the optional route", "/open/echo",
                    [("Authorization", "Bearer \(Self.rs256())"), ("X-Api-Key", key)]
                ),
            ]
            for (label, path, headers) in variants {
                let response = try await CurlClient.request(url: gw.url(path), headers: headers)
                #expect(response.status == 400, "\(label): \(response.status) \(response.bodyString)")
                #expect(response.errorCode == "invalid_request", "\(label)")
                #expect(response.reason == "ambiguous_credentials", "\(label): \(response.bodyString)")
                #expect(response.header("Cache-Control") == "no-store", "\(label)")
            }
            #expect(gw.upstream.received().isEmpty)
        }
    }

    // MARK: Revocation

    @Test("revoke by jti: refused token_revoked within 2 s, whether or not the token was cached")
    func revokeByJTI() async throws {
        try await Self.withGateway { gw, folder in
            let cached = Self.rs256(Self.claims(["jti": "jti-cached"]))
            let fresh = Self.rs256(Self.claims(["jti": "jti-fresh"]))
            let untouched = Self.rs256(Self.claims(["jti": "jti-untouched"]))
            for _ in 0..<2 {
                #expect(try await Self.get(gw, token: cached).status == 200)
            }
            #expect(try await Self.get(gw, token: untouched).status == 200)

            let store = try APIKeyStore(path: folder.file("keys.db"))
            try store.revokeToken(jti: "jti-cached")
            try store.revokeToken(jti: "jti-fresh")
            let revokedAt = ContinuousClock.now
            let cachedRefused = await eventually(timeout: .seconds(2), poll: .milliseconds(50)) {
                (try? await Self.get(gw, token: cached))?.reason == "token_revoked"
            }
            #expect(cachedRefused, "a cached revoked token still worked 2 s after the revocation")
            let freshRefused = await eventually(timeout: .seconds(2) - (ContinuousClock.now - revokedAt)) {
                (try? await Self.get(gw, token: fresh))?.reason == "token_revoked"
            }
            #expect(freshRefused, "a revoked token was not refused within 2 s")

            gw.upstream.clearReceived()
            for (label, token) in [("cached", cached), ("fresh", fresh)] {
                let response = try await Self.get(gw, token: token)
                AuthExpect.unauthorized(response, reasons: ["token_revoked"], "revoked \(label) token")
                let optional = try await Self.get(gw, "/open/echo", token: token)
                AuthExpect.unauthorized(optional, reasons: ["token_revoked"], "revoked \(label) token, optional route")
            }
            #expect(gw.upstream.received().isEmpty)
            #expect(try await Self.get(gw, token: untouched).status == 200, "an unrevoked jti was refused")
        }
    }

    @Test("revoke by subject: earlier tokens refused within 2 s; tokens issued later still work")
    func revokeBySubject() async throws {
        try await Self.withGateway { gw, folder in
            let now = unixNow()
            let old = Self.rs256(Self.claims(now: now - 60, ["sub": "alice"]))
            let oldUncached = Self.rs256(Self.claims(now: now - 30, ["sub": "alice"]))
            let bob = Self.rs256(Self.claims(now: now - 60, ["sub": "bob"]))
            #expect(try await Self.get(gw, token: old).status == 200)
            #expect(try await Self.get(gw, token: bob).status == 200)

            let store = try APIKeyStore(path: folder.file("keys.db"))
            try store.revokeSubject("alice", at: Int64(now))
            let revokedAt = ContinuousClock.now
            let refused = await eventually(timeout: .seconds(2), poll: .milliseconds(50)) {
                (try? await Self.get(gw, token: old))?.reason == "token_revoked"
            }
            #expect(refused, "alice's cached token still worked 2 s after revoking the subject")
            let uncachedRefused = await eventually(timeout: .seconds(2) - (ContinuousClock.now - revokedAt)) {
                (try? await Self.get(gw, token: oldUncached))?.reason == "token_revoked"
            }
            #expect(uncachedRefused, "alice's other token was not refused within 2 s")

            gw.upstream.clearReceived()
            let stillRefused = try await Self.get(gw, token: old)
            AuthExpect.unauthorized(stillRefused, reasons: ["token_revoked"], "alice, iat before")
            #expect(gw.upstream.received().isEmpty)

            // iat < revocation time is revoked; a token issued at or after it is not.
            let atRevocation = Self.rs256(Self.claims(now: now, ["sub": "alice"]))
            let later = Self.rs256(Self.claims(now: now + 1, ["sub": "alice"]))
            let atResponse = try await Self.get(gw, token: atRevocation)
            #expect(atResponse.status == 200, "iat == revocation time: \(atResponse.bodyString)")
            let laterResponse = try await Self.get(gw, token: later)
            #expect(laterResponse.status == 200, "issued after the revocation: \(laterResponse.bodyString)")
            #expect(try await Self.get(gw, token: bob).status == 200, "another subject was refused")
        }
    }
}
