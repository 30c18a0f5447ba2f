import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import Gatehouse

// RSA generation is slow in debug builds: one key for the whole file, made on first use.
private let rsaKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
private let p256Key = P256.Signing.PrivateKey()
private let p384Key = P384.Signing.PrivateKey()
private let ed25519Key = Curve25519.Signing.PrivateKey()
private let hmacSecret = Array("0123456789abcdef0123456789abcdef-shared".utf8)

/// Another issuer key that signs nothing here: only its public half is needed.
private let otherRSAPublicKeyPEM = fixtureRSA2048PublicKeyPEM

private let issuerName = "https://auth.example.com"
private let audience = "https://gateway.example.com/mcp"
private let now: Int64 = 1_800_000_000

private enum Signer {
    case rsa
    case es256
    case es384
    case ed25519
    case hmac([UInt8])
    /// An exact signature segment (possibly empty).
    case raw([UInt8])
}

private func sign(_ input: [UInt8], alg: String, with signer: Signer) -> [UInt8] {
    switch signer {
    case .rsa:
        let signature =
            switch alg {
            case "RS384": try! rsaKey.signature(for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5)
            case "RS512": try! rsaKey.signature(for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)
            default: try! rsaKey.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
            }
        return Array(signature.rawRepresentation)
    case .es256: return Array(try! p256Key.signature(for: input).rawRepresentation)
    case .es384: return Array(try! p384Key.signature(for: input).rawRepresentation)
    case .ed25519: return Array(try! ed25519Key.signature(for: input))
    case .hmac(let secret):
        let key = SymmetricKey(data: secret)
        switch alg {
        case "HS384": return Array(HMAC<SHA384>.authenticationCode(for: input, using: key))
        case "HS512": return Array(HMAC<SHA512>.authenticationCode(for: input, using: key))
        default: return Array(HMAC<SHA256>.authenticationCode(for: input, using: key))
        }
    case .raw(let bytes): return bytes
    }
}

/// Encodes `header` and `payload` as given (raw JSON text) and signs them.
private func mint(header: String, payload: String, alg: String, signer: Signer) -> String {
    let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
    return input + "." + Base64URL.encode(sign(Array(input.utf8), alg: alg, with: signer))
}

private func json(_ object: [String: Any]) -> String {
    String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
}

private func claims(_ changes: [String: Any] = [:], removing: [String] = []) -> String {
    var object: [String: Any] = [
        "iss": issuerName, "aud": audience, "sub": "user-123", "exp": now + 600, "iat": now - 10,
        "jti": "token-1", "email": "u@example.com", "org": "org-1", "role": "viewer", "scope": "mcp:read logs:read",
    ]
    for (key, value) in changes { object[key] = value }
    for key in removing { object[key] = nil }
    return json(object)
}

private func token(
    alg: String = "RS256", kid: String? = "rsa-1", extraHeader: [String: Any] = [:],
    payload: String = claims(), signer: Signer? = nil
) -> String {
    var header: [String: Any] = ["alg": alg, "typ": "JWT"]
    if let kid { header["kid"] = kid }
    for (key, value) in extraHeader { header[key] = value }
    let defaultSigner: Signer =
        switch alg {
        case "ES256": .es256
        case "ES384": .es384
        case "EdDSA": .ed25519
        case "HS256", "HS384", "HS512": .hmac(hmacSecret)
        default: .rsa
        }
    return mint(header: json(header), payload: payload, alg: alg, signer: signer ?? defaultSigner)
}

/// RSA kid "rsa-1", P-256 kid "ec-1", P-384 without kid, Ed25519 kid "ed-1", HMAC secret without kid.
private func defaultKeys() -> [VerificationKey] {
    [
        try! VerificationKey(.rsa(rsaKey.publicKey), kid: "rsa-1"),
        try! VerificationKey(.p256(p256Key.publicKey), kid: "ec-1"),
        try! VerificationKey(.p384(p384Key.publicKey)),
        try! VerificationKey(.ed25519(ed25519Key.publicKey), kid: "ed-1"),
        try! VerificationKey(.hmacSecret(SymmetricKey(data: hmacSecret))),
    ]
}

private func issuerConfig(
    algorithms: [JWTAlgorithm] = JWTAlgorithm.allCases,
    _ configure: (inout IssuerConfig) -> Void = { _ in }
) -> IssuerConfig {
    var config = IssuerConfig(issuer: issuerName, audiences: [audience], algorithms: algorithms)
    config.leeway = .seconds(30)
    configure(&config)
    return config
}

private func makeVerifier(
    algorithms: [JWTAlgorithm] = JWTAlgorithm.allCases,
    keys: [VerificationKey]? = nil,
    _ configure: (inout IssuerConfig) -> Void = { _ in }
) -> JWTVerifier {
    JWTVerifier(issuers: [
        (config: issuerConfig(algorithms: algorithms, configure), keys: IssuerKeys(staticKeys: keys ?? defaultKeys()))
    ])
}

private func reason(_ result: Result<Identity, AuthenticationFailure>) -> DenialReason? {
    if case .failure(let failure) = result { return failure.reason }
    return nil
}

private func success(_ result: Result<Identity, AuthenticationFailure>) -> Identity? {
    if case .success(let identity) = result { return identity }
    return nil
}

@Suite struct JWTVerifierTests {
    let standard = makeVerifier()

    // MARK: Algorithms and keys

    @Test(
        arguments: [
            ("RS256", "rsa-1"), ("RS384", "rsa-1"), ("RS512", nil), ("ES256", "ec-1"), ("ES384", nil),
            ("EdDSA", "ed-1"), ("HS256", nil), ("HS384", nil), ("HS512", nil),
        ] as [(String, String?)])
    func validTokenOfEveryAlgorithmVerifies(alg: String, kid: String?) throws {
        let result = standard.verify(token(alg: alg, kid: kid), now: now)
        let identity = try #require(success(result), "\(result)")
        #expect(identity.method == .jwt)
        #expect(identity.subject == "user-123")
        #expect(identity.email == "u@example.com")
        #expect(identity.org == "org-1")
        #expect(identity.role == "viewer")
        #expect(identity.scopes == ["mcp:read", "logs:read"])
        #expect(identity.hasScopeClaim)
        #expect(identity.issuer == issuerName)
        #expect(identity.jti == "token-1")
        #expect(identity.issuedAt == now - 10)
        #expect(identity.expiresAt == now + 600)
    }

    /// The HMAC states are keyed once per key and copied for each check: a check must
    /// never leave anything behind in them, whatever order and threads checks come in.
    @Test(arguments: ["HS256", "HS384", "HS512"])
    func keyedMACStateIsNeverChangedByAVerification(alg: String) async {
        let valid = token(alg: alg)
        let forged = token(alg: alg, signer: .hmac(Array("another secret of the same length!!!!!!".utf8)))
        let verifier = standard
        let outcomes = await withTaskGroup(of: (Bool, Bool).self) { group in
            for round in 0..<200 {
                group.addTask {
                    // Alternate the order so a failed check precedes a valid one and vice versa.
                    if round % 2 == 0 {
                        let bad = success(verifier.verify(forged, now: now)) == nil
                        let good = success(verifier.verify(valid, now: now)) != nil
                        return (good, bad)
                    }
                    let good = success(verifier.verify(valid, now: now)) != nil
                    let bad = success(verifier.verify(forged, now: now)) == nil
                    return (good, bad)
                }
            }
            var all: [(Bool, Bool)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes.count == 200)
        #expect(outcomes.allSatisfy { $0.0 && $0.1 })
        #expect(reason(standard.verify(forged, now: now)) == .invalidSignature)
    }

    @Test(arguments: ["none", "None", "NONE", "nOnE"])
    func algNoneIsRefusedInEverySpelling(alg: String) {
        let header = json(["alg": alg, "typ": "JWT"])
        for signature in [[], Array("garbage".utf8), sign([1, 2, 3], alg: "HS256", with: .hmac(hmacSecret))] {
            let unsigned = mint(header: header, payload: claims(), alg: alg, signer: .raw(signature))
            #expect(reason(standard.verify(unsigned, now: now)) == .unsupportedAlgorithm)
        }
        // Also with the signature segment missing altogether.
        let twoParts = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims().utf8)) + "."
        #expect(reason(standard.verify(twoParts, now: now)) == .unsupportedAlgorithm)
    }

    @Test func unknownOrMiscasedAlgorithmIsUnsupported() {
        for alg in ["PS256", "rs256", "HS1", ""] {
            #expect(reason(standard.verify(token(alg: alg, signer: .rsa), now: now)) == .unsupportedAlgorithm)
        }
    }

    @Test func missingOrNonStringAlgIsMalformed() {
        let noAlg = mint(header: json(["typ": "JWT"]), payload: claims(), alg: "RS256", signer: .rsa)
        #expect(reason(standard.verify(noAlg, now: now)) == .malformedToken)
        let numeric = mint(header: #"{"alg":256}"#, payload: claims(), alg: "RS256", signer: .rsa)
        #expect(reason(standard.verify(numeric, now: now)) == .malformedToken)
    }

    @Test func hs256SignedWithTheRSAPublicKeyNeverVerifies() {
        let pem = Array(rsaKey.publicKey.pemRepresentation.utf8)
        let der = Array(rsaKey.publicKey.derRepresentation)
        for secret in [pem, der, Array((rsaKey.publicKey.pemRepresentation + "\n").utf8)] {
            let forged = token(alg: "HS256", kid: "rsa-1", signer: .hmac(secret))
            // An RSA-only issuer does not allow HS256 at all.
            let rsaOnly = makeVerifier(algorithms: [.rs256], keys: [defaultKeys()[0]])
            #expect(reason(rsaOnly.verify(forged, now: now)) == .unsupportedAlgorithm)
            // Even with HS256 allowed, an RSA key never verifies HMAC.
            let confused = makeVerifier(algorithms: [.rs256, .hs256], keys: [defaultKeys()[0]])
            #expect(reason(confused.verify(forged, now: now)) == .unknownKey)
            // With a real secret configured, the forged MAC does not match it.
            #expect(reason(standard.verify(forged, now: now)) == .invalidSignature)
            #expect(
                reason(standard.verify(token(alg: "HS256", kid: nil, signer: .hmac(secret)), now: now))
                    == .invalidSignature)
        }
    }

    @Test func disallowedAlgorithmWithValidSignatureIsRefused() {
        let rsaOnly = makeVerifier(algorithms: [.rs256])
        #expect(reason(rsaOnly.verify(token(alg: "ES256", kid: "ec-1"), now: now)) == .unsupportedAlgorithm)
        #expect(reason(rsaOnly.verify(token(alg: "HS256", kid: nil), now: now)) == .unsupportedAlgorithm)
        #expect(reason(rsaOnly.verify(token(alg: "RS384", kid: "rsa-1"), now: now)) == .unsupportedAlgorithm)
        #expect(success(rsaOnly.verify(token(alg: "RS256", kid: "rsa-1"), now: now)) != nil)
    }

    @Test func headerAlgMustMatchTheKeyType() {
        // An ES256 signature labelled RS256, naming the EC key: no RSA key carries "ec-1".
        let relabelled = token(alg: "RS256", kid: "ec-1", signer: .es256)
        #expect(reason(standard.verify(relabelled, now: now)) == .unknownKey)
        // An RSA signature labelled ES256 without kid: tried against EC keys only.
        let mislabelled = token(alg: "ES256", kid: nil, signer: .rsa)
        #expect(reason(standard.verify(mislabelled, now: now)) == .invalidSignature)
        // An ES384 signature labelled ES256: wrong length for P-256.
        #expect(
            reason(standard.verify(token(alg: "ES256", kid: "ec-1", signer: .es384), now: now)) == .invalidSignature)
    }

    @Test func unknownKidNeverFallsBackToAnotherKey() {
        let keys = IssuerKeys(staticKeys: defaultKeys(), hasJWKSURL: true)
        keys.replaceJWKS([])
        let verifier = JWTVerifier(issuers: [(config: issuerConfig(), keys: keys)])
        // Correctly signed by rsa-1's key, but naming a kid nobody has.
        let result = verifier.verify(token(alg: "RS256", kid: "rsa-2"), now: now)
        #expect(reason(result) == .unknownKey)
        #expect(keys.takeUnknownKidSignal())
        #expect(!keys.takeUnknownKidSignal())
        // A kid naming a key of another type is unknown too.
        #expect(reason(verifier.verify(token(alg: "RS256", kid: "ed-1"), now: now)) == .unknownKey)
        #expect(reason(verifier.verify(token(alg: "EdDSA", kid: "rsa-1"), now: now)) == .unknownKey)
        #expect(keys.takeUnknownKidSignal())
        // The known kid still works and raises no signal.
        #expect(success(verifier.verify(token(alg: "RS256", kid: "rsa-1"), now: now)) != nil)
        #expect(!keys.takeUnknownKidSignal())
    }

    @Test func kidlessKeysServeTokensWithAnyKidOrNone() {
        #expect(success(standard.verify(token(alg: "ES384", kid: "whatever"), now: now)) != nil)
        #expect(success(standard.verify(token(alg: "HS256", kid: "some-kid"), now: now)) != nil)
        #expect(success(standard.verify(token(alg: "ES384", kid: nil), now: now)) != nil)
        // A token without kid is tried against every key of its type, kid-carrying ones included.
        #expect(success(standard.verify(token(alg: "RS256", kid: nil), now: now)) != nil)
        #expect(success(standard.verify(token(alg: "ES256", kid: nil), now: now)) != nil)
    }

    @Test func tokenWithoutKidTriesEveryKeyOfItsType() {
        let keys = [
            try! VerificationKey(.rsa(_RSA.Signing.PublicKey(pemRepresentation: otherRSAPublicKeyPEM)), kid: "old"),
            try! VerificationKey(.rsa(rsaKey.publicKey), kid: "new"),
        ]
        let verifier = makeVerifier(keys: keys)
        #expect(success(verifier.verify(token(alg: "RS256", kid: nil), now: now)) != nil)
        #expect(success(verifier.verify(token(alg: "RS256", kid: "new"), now: now)) != nil)
        #expect(reason(verifier.verify(token(alg: "RS256", kid: "old"), now: now)) == .invalidSignature)
    }

    @Test func embeddedAttackerKeysAreIgnored() {
        let attacker = P256.Signing.PrivateKey()
        let raw = Array(attacker.publicKey.rawRepresentation)
        let jwk: [String: Any] = [
            "kty": "EC", "crv": "P-256", "x": Base64URL.encode(raw[0..<32]), "y": Base64URL.encode(raw[32...]),
        ]
        let headers: [[String: Any]] = [
            ["jwk": jwk], ["jku": "https://evil.example/jwks.json"], ["x5u": "https://evil.example/cert.pem"],
            ["x5c": [Base64URL.encode(Array(attacker.publicKey.derRepresentation))]],
        ]
        for extra in headers {
            for kid in ["ec-1", nil, "attacker"] as [String?] {
                var fields = extra
                fields["alg"] = "ES256"
                fields["kid"] = kid
                let header = json(fields)
                let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims().utf8))
                let forged =
                    input + "."
                    + Base64URL.encode(Array(try! attacker.signature(for: Array(input.utf8)).rawRepresentation))
                let result = standard.verify(forged, now: now)
                #expect(success(result) == nil)
                #expect([.invalidSignature, .unknownKey].contains(reason(result)))
            }
        }
        // The headers themselves do not prevent a genuine token from verifying.
        #expect(
            success(standard.verify(token(alg: "ES256", kid: "ec-1", extraHeader: ["jku": "https://x"]), now: now))
                != nil)
    }

    @Test func critHeaderIsRefused() {
        for crit in [["exp"], [], ["b64"]] as [[String]] {
            let result = standard.verify(token(extraHeader: ["crit": crit, "b64": false]), now: now)
            #expect(reason(result) == .malformedToken)
        }
    }

    @Test func ecdsaSignatureInDERIsRefused() {
        let header = json(["alg": "ES256", "kid": "ec-1"])
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims().utf8))
        let der = Array(try! p256Key.signature(for: Array(input.utf8)).derRepresentation)
        #expect(reason(standard.verify(input + "." + Base64URL.encode(der), now: now)) == .invalidSignature)
    }

    // MARK: Tampering and shape

    @Test func tamperedTokensAreRefused() {
        let good = token()
        let parts = good.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let otherPayload = Base64URL.encode(Array(claims(["sub": "admin"]).utf8))
        #expect(
            reason(standard.verify([parts[0], otherPayload, parts[2]].joined(separator: "."), now: now))
                == .invalidSignature)
        let otherHeader = Base64URL.encode(Array(json(["alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"]).utf8))
        #expect(
            reason(standard.verify([otherHeader, parts[1], parts[2]].joined(separator: "."), now: now))
                == .invalidSignature)
        var signature = Base64URL.decode(parts[2])!
        signature[17] ^= 0x01
        let flipped = [parts[0], parts[1], Base64URL.encode(signature)].joined(separator: ".")
        #expect(reason(standard.verify(flipped, now: now)) == .invalidSignature)
        #expect(
            reason(standard.verify([parts[0], parts[1], ""].joined(separator: "."), now: now)) == .invalidSignature)
    }

    @Test func truncatedAndMisshapenTokensAreMalformed() {
        let good = token()
        let parts = good.split(separator: ".").map(String.init)
        for bad in [
            String(good.dropLast()), parts[0] + "." + parts[1], parts[0], "", ".", "..", good + ".", good + ".x",
            "." + parts[1] + "." + parts[2], parts[0] + ".." + parts[2],
        ] {
            #expect(reason(standard.verify(bad, now: now)) == .malformedToken, "\(bad.prefix(40))")
        }
    }

    @Test func sizeLimitIsEightKiB() {
        // Find an otherwise valid HS256 token of exactly 8192 bytes, and one of 8193.
        func tokenOfLength(_ length: Int) -> String? {
            for kid in ["a", "ab", "abc"] {
                for padding in 5_000...6_500 {
                    let candidate = token(
                        alg: "HS256", kid: kid, payload: claims(["pad": String(repeating: "x", count: padding)]))
                    if candidate.utf8.count == length { return candidate }
                }
            }
            return nil
        }
        let atLimit = tokenOfLength(8192)!
        #expect(success(standard.verify(atLimit, now: now)) != nil)
        let overLimit = tokenOfLength(8193)!
        let result = standard.verify(overLimit, now: now)
        #expect(reason(result) == .malformedToken)
        if case .failure(let failure) = result { #expect(failure.detail.contains("8 KiB")) }
    }

    @Test func nonCanonicalBase64IsMalformed() {
        let good = token()
        let parts = good.split(separator: ".").map(String.init)
        let variants = [
            [parts[0] + "=", parts[1], parts[2]],
            [parts[0], parts[1] + "==", parts[2]],
            [parts[0], String(parts[1].dropLast()) + "+", parts[2]],
            [parts[0], String(parts[1].dropLast()) + "/", parts[2]],
            [parts[0], " " + parts[1], parts[2]],
            [parts[0], String(parts[1].prefix(8)) + "\n" + String(parts[1].dropFirst(8)), parts[2]],
            [parts[0], parts[1], parts[2] + "="],
            [parts[0].replacingOccurrences(of: "e", with: "+"), parts[1], parts[2]],
        ]
        for variant in variants {
            #expect(reason(standard.verify(variant.joined(separator: "."), now: now)) == .malformedToken)
        }
    }

    @Test func segmentsMustBeJSONObjects() {
        let cases: [(header: String, payload: String)] = [
            ("not json", claims()),
            (json(["alg": "RS256", "kid": "rsa-1"]), "not json"),
            (#"["RS256"]"#, claims()),
            (json(["alg": "RS256", "kid": "rsa-1"]), #"[{"iss":"x"}]"#),
            (json(["alg": "RS256", "kid": "rsa-1"]), #""a string""#),
            (json(["alg": "RS256", "kid": "rsa-1"]), "null"),
            (#"{"alg":"RS256","alg":"none"}"#, claims()),
            (json(["alg": "RS256", "kid": "rsa-1"]), #"{"iss":"https://auth.example.com","sub":"a","sub":"admin"}"#),
            (json(["alg": "RS256", "kid": "rsa-1"]), claims() + " x"),
            ("", claims()),
        ]
        for (header, payload) in cases {
            let result = standard.verify(mint(header: header, payload: payload, alg: "RS256", signer: .rsa), now: now)
            #expect(reason(result) == .malformedToken, "\(header) \(payload)")
        }
        let nonStringKid = mint(header: #"{"alg":"RS256","kid":1}"#, payload: claims(), alg: "RS256", signer: .rsa)
        #expect(reason(standard.verify(nonStringKid, now: now)) == .malformedToken)
    }

    // MARK: Claims

    @Test func issuerMustMatchExactly() {
        for iss in ["https://auth.example.com/", "HTTPS://auth.example.com", "https://other.example.com"] {
            let result = standard.verify(token(payload: claims(["iss": iss])), now: now)
            #expect(reason(result) == .invalidIssuer)
            if case .failure(let failure) = result {
                #expect(failure.issuer == iss)
                #expect(failure.subject == nil)
            }
        }
        #expect(reason(standard.verify(token(payload: claims(removing: ["iss"])), now: now)) == .invalidIssuer)
        #expect(reason(standard.verify(token(payload: claims(["iss": 7])), now: now)) == .invalidIssuer)
    }

    @Test func expiryHonoursLeewayOnBothSides() {
        #expect(success(standard.verify(token(payload: claims(["exp": now - 29])), now: now)) != nil)
        #expect(reason(standard.verify(token(payload: claims(["exp": now - 30])), now: now)) == .tokenExpired)
        #expect(reason(standard.verify(token(payload: claims(["exp": now - 3600])), now: now)) == .tokenExpired)
        #expect(success(standard.verify(token(payload: claims(["exp": Double(now) - 29.5])), now: now)) != nil)
        #expect(reason(standard.verify(token(payload: claims(removing: ["exp"])), now: now)) == .missingClaim)
        #expect(reason(standard.verify(token(payload: claims(["exp": "\(now + 60)"])), now: now)) == .malformedToken)
        let noLeeway = makeVerifier { $0.leeway = .zero }
        #expect(success(noLeeway.verify(token(payload: claims(["exp": now + 1])), now: now)) != nil)
        #expect(reason(noLeeway.verify(token(payload: claims(["exp": now])), now: now)) == .tokenExpired)
    }

    @Test(arguments: ["nbf", "iat"])
    func notBeforeAndIssuedAtHonourLeeway(claim: String) {
        #expect(success(standard.verify(token(payload: claims([claim: now + 30])), now: now)) != nil)
        #expect(reason(standard.verify(token(payload: claims([claim: now + 31])), now: now)) == .tokenNotYetValid)
        #expect(reason(standard.verify(token(payload: claims([claim: "soon"])), now: now)) == .malformedToken)
        #expect(success(standard.verify(token(payload: claims(removing: [claim])), now: now)) != nil)
    }

    @Test func audienceAsStringOrArray() {
        #expect(success(standard.verify(token(payload: claims(["aud": audience])), now: now)) != nil)
        #expect(success(standard.verify(token(payload: claims(["aud": ["other", audience]])), now: now)) != nil)
        for bad: Any in ["other", ["other", "another"], [String](), 5, [audience, 5], audience + "/"] {
            #expect(reason(standard.verify(token(payload: claims(["aud": bad])), now: now)) == .invalidAudience)
        }
        #expect(reason(standard.verify(token(payload: claims(removing: ["aud"])), now: now)) == .invalidAudience)
    }

    @Test func audienceOverrideReplacesConfiguredAudiences() {
        let resource = "https://gateway.example.com/mcp/github"
        let forResource = token(payload: claims(["aud": resource]))
        #expect(success(standard.verify(forResource, now: now, audienceOverride: [resource])) != nil)
        #expect(reason(standard.verify(forResource, now: now)) == .invalidAudience)
        #expect(reason(standard.verify(token(), now: now, audienceOverride: [resource])) == .invalidAudience)
    }

    @Test func requiredClaimsMustBePresentAndNonNull() {
        let verifier = makeVerifier { $0.requireClaims = ["sub", "exp", "app_metadata.org_id"] }
        let present = claims(["app_metadata": ["org_id": "org-9"]])
        #expect(success(verifier.verify(token(payload: present), now: now)) != nil)
        #expect(reason(verifier.verify(token(), now: now)) == .missingClaim)
        let null = claims(["app_metadata": ["org_id": NSNull()]])
        #expect(reason(verifier.verify(token(payload: null), now: now)) == .missingClaim)
        #expect(reason(standard.verify(token(payload: claims(removing: ["sub"])), now: now)) == .missingClaim)
    }

    @Test func maxTokenLifetime() {
        let verifier = makeVerifier { $0.maxTokenLifetime = .seconds(3600) }
        #expect(
            success(verifier.verify(token(payload: claims(["iat": now - 100, "exp": now + 3500])), now: now)) != nil)
        #expect(
            reason(verifier.verify(token(payload: claims(["iat": now - 100, "exp": now + 3501])), now: now))
                == .tokenTooOld)
        #expect(reason(verifier.verify(token(payload: claims(removing: ["iat"])), now: now)) == .missingClaim)
        #expect(success(standard.verify(token(payload: claims(["exp": now + 86_400 * 365])), now: now)) != nil)
    }

    @Test func dottedClaimPathsForSupabaseAndNamespacedClaims() throws {
        let verifier = makeVerifier {
            $0.claims.org = "app_metadata.org_id"
            $0.claims.role = "https://example.com/role"
            $0.claims.email = "user.contact.email"
        }
        let payload = claims(
            [
                "app_metadata": ["org_id": "org-42", "provider": "email"], "https://example.com/role": "admin",
                "user": ["contact": ["email": "deep@example.com"]],
            ], removing: ["org", "role", "email"])
        let identity = try #require(success(verifier.verify(token(payload: payload), now: now)))
        #expect(identity.org == "org-42")
        #expect(identity.role == "admin")
        #expect(identity.email == "deep@example.com")
    }

    @Test func identityFieldsTakeStringsOnly() throws {
        let payload = claims(["org": 42, "role": ["admin"], "email": ""])
        let identity = try #require(success(standard.verify(token(payload: payload), now: now)))
        #expect(identity.org == nil)
        #expect(identity.role == nil)
        #expect(identity.email == nil)
        #expect(reason(standard.verify(token(payload: claims(["sub": 12345])), now: now)) == .missingClaim)
        #expect(reason(standard.verify(token(payload: claims(["sub": ""])), now: now)) == .missingClaim)
        #expect(
            reason(standard.verify(token(payload: claims(["email": "a@b\r\nX-Admin: 1"])), now: now)) == .malformedToken
        )
    }

    @Test func scopesFromStringOrArray() throws {
        let fromString = try #require(
            success(standard.verify(token(payload: claims(["scope": " a  b a c "])), now: now)))
        #expect(fromString.scopes == ["a", "b", "c"])
        #expect(fromString.hasScopeClaim)
        // Scope tokens are delimited by the space byte (RFC 6749 §3.3), even where a
        // combining mark follows it: the issuer signed "admin" as a token of its own.
        let combining = try #require(
            success(standard.verify(token(payload: claims(["scope": "admin \u{301}x"])), now: now)))
        #expect(combining.scopes == ["admin", "\u{301}x"])
        let scp = makeVerifier { $0.claims.scopes = "scp" }
        let fromArray = try #require(success(scp.verify(token(payload: claims(["scp": ["x", "y", 3, ""]])), now: now)))
        #expect(fromArray.scopes == ["x", "y"])
        #expect(fromArray.hasScopeClaim)
        let none = try #require(success(standard.verify(token(payload: claims(removing: ["scope"])), now: now)))
        #expect(none.scopes.isEmpty)
        #expect(!none.hasScopeClaim)
        let garbled = try #require(success(standard.verify(token(payload: claims(["scope": 7])), now: now)))
        #expect(garbled.scopes.isEmpty)
        #expect(garbled.hasScopeClaim)
    }

    @Test func failuresCarryOnlyWhatWasVerified() throws {
        let expired = standard.verify(token(payload: claims(["exp": now - 100])), now: now)
        guard case .failure(let afterSignature) = expired else { throw Failure() }
        #expect(afterSignature.issuer == issuerName)
        #expect(afterSignature.subject == "user-123")
        #expect(afterSignature.jti == "token-1")
        let forged = standard.verify(token(signer: .raw(Array(repeating: 1, count: 256))), now: now)
        guard case .failure(let beforeSignature) = forged else { throw Failure() }
        #expect(beforeSignature.reason == .invalidSignature)
        #expect(beforeSignature.issuer == issuerName)
        #expect(beforeSignature.subject == nil)
        #expect(beforeSignature.jti == nil)
        #expect(!beforeSignature.keysUnavailable)
    }

    @Test func jwksNeverLoadedMeansKeysUnavailable() {
        let keys = IssuerKeys(staticKeys: [], hasJWKSURL: true)
        let verifier = JWTVerifier(issuers: [(config: issuerConfig(), keys: keys)])
        #expect(!keys.hasLoadedKeys)
        guard case .failure(let failure) = verifier.verify(token(), now: now) else {
            Issue.record("expected a failure")
            return
        }
        #expect(failure.keysUnavailable)
        keys.replaceJWKS([try! VerificationKey(.rsa(rsaKey.publicKey), kid: "rsa-1")])
        #expect(keys.hasLoadedKeys)
        #expect(success(verifier.verify(token(), now: now)) != nil)
        guard case .failure(let unknown) = verifier.verify(token(kid: "rotated"), now: now) else {
            Issue.record("expected a failure")
            return
        }
        #expect(unknown.reason == .unknownKey)
        #expect(!unknown.keysUnavailable)
    }

    @Test func unknownKidWithStaticKeysWhileJWKSPendingIsUnavailableNotInvalid() {
        let keys = IssuerKeys(staticKeys: [try! VerificationKey(.p256(p256Key.publicKey))], hasJWKSURL: true)
        let verifier = JWTVerifier(issuers: [(config: issuerConfig(), keys: keys)])
        // Static kid-less ES256 key verifies its own tokens even before the JWKS loads.
        #expect(success(verifier.verify(token(alg: "ES256", kid: "any"), now: now)) != nil)
        // An RS256 token has no candidate until the JWKS arrives.
        if case .failure(let failure) = verifier.verify(token(), now: now) {
            #expect(failure.keysUnavailable)
        } else {
            Issue.record("expected a failure")
        }
    }

    @Test func keysRemovedHandlerRunsOnlyWhenARefreshDropsAKey() throws {
        let rsa = try VerificationKey(.rsa(rsaKey.publicKey), kid: "rsa-1")
        let ec = try VerificationKey(.p256(p256Key.publicKey), kid: "ec-1")
        let otherEC = try VerificationKey(.p256(P256.Signing.PrivateKey().publicKey), kid: "ec-1")
        let keys = IssuerKeys(staticKeys: [], hasJWKSURL: true)
        let counter = Counter()
        keys.setKeysRemovedHandler { counter.increment() }
        #expect(!keys.replaceJWKS([rsa]), "the first load removes nothing")
        #expect(!keys.replaceJWKS([rsa]), "the same set again")
        #expect(!keys.replaceJWKS([ec, rsa]), "a key added (rotation), order changed")
        #expect(counter.value == 0)
        #expect(keys.replaceJWKS([ec]), "rsa-1 dropped")
        #expect(counter.value == 1)
        #expect(keys.replaceJWKS([otherEC]), "same kid, other key material: the old key is gone")
        #expect(counter.value == 2)
        let pinned = try VerificationKey(.p256(P256.Signing.PrivateKey().publicKey), kid: "p", pinnedAlgorithm: .es256)
        #expect(!keys.replaceJWKS([otherEC, pinned]))
        #expect(keys.replaceJWKS([otherEC]), "a pinned key dropped")
        #expect(counter.value == 3)
    }

    @Test func droppingAJWKSKeyEmptiesTheAuthenticatorsCache() throws {
        let keys = IssuerKeys(staticKeys: [], hasJWKSURL: true)
        keys.replaceJWKS([try VerificationKey(.rsa(rsaKey.publicKey), kid: "rsa-1")])
        let authenticator = Authenticator(
            jwt: JWTVerifier(issuers: [(config: issuerConfig(), keys: keys)]),
            apiKeys: APIKeyVerifier(prefix: "ghk"),
            issuerKeys: [(issuer: issuerName, keys: keys)]
        )
        let jwt = token(payload: claims(["exp": now + 600]))
        #expect(success(authenticator.authenticate(.jwt(jwt), now: now)) != nil)
        #expect(authenticator.tokenCache.count == 1)
        keys.replaceJWKS([try VerificationKey(.p256(p256Key.publicKey), kid: "ec-1")])
        #expect(authenticator.tokenCache.count == 0)
        guard case .failure(let failure) = authenticator.authenticate(.jwt(jwt), now: now) else {
            Issue.record("a token signed by a dropped key was still accepted")
            return
        }
        #expect(failure.reason == .unknownKey)
    }

    @Test func unknownKidHandlerRunsForJWKSIssuers() {
        let keys = IssuerKeys(staticKeys: defaultKeys(), hasJWKSURL: true)
        keys.replaceJWKS([])
        let counter = Counter()
        keys.setUnknownKidHandler { counter.increment() }
        let verifier = JWTVerifier(issuers: [(config: issuerConfig(), keys: keys)])
        _ = verifier.verify(token(kid: "new-key"), now: now)
        _ = verifier.verify(token(alg: "ES384", kid: "new-key", signer: .es256), now: now)
        #expect(counter.value == 2)
        // Kid-less fallbacks that verify do not ask for a refetch.
        _ = verifier.verify(token(alg: "ES384", kid: "new-key"), now: now)
        #expect(counter.value == 2)
    }

    @Test func fingerprintIsAShortSHA256Prefix() {
        let fingerprint = JWTVerifier.tokenFingerprint("abc")
        #expect(fingerprint == "ba7816bf8f01cfea")
        #expect(JWTVerifier.tokenFingerprint(token()).count == 16)
    }

    // MARK: Cache

    @Test func cacheHitsUntilExpiry() throws {
        let cache = VerifiedTokenCache()
        let jwt = token(payload: claims(["exp": now + 100]))
        #expect(cache.lookup(jwt, now: now) == nil)
        let verified = try #require(success(standard.verify(jwt, now: now)))
        cache.store(jwt, identity: verified)
        #expect(cache.lookup(jwt, now: now) == verified)
        #expect(cache.lookup(jwt, now: now + 99) == verified)
        #expect(cache.lookup(jwt, now: now + 100) == nil)
        #expect(cache.lookup(jwt, now: now) == nil, "expired entries are dropped")
        #expect(cache.lookup(token(payload: claims(["exp": now + 101])), now: now) == nil)
    }

    @Test func cacheSeparatesAudienceOverrides() throws {
        let cache = VerifiedTokenCache()
        let jwt = token()
        let verified = try #require(success(standard.verify(jwt, now: now)))
        cache.store(jwt, audienceOverride: ["https://a"], identity: verified)
        #expect(cache.lookup(jwt, audienceOverride: ["https://a"], now: now) == verified)
        #expect(cache.lookup(jwt, audienceOverride: ["https://b"], now: now) == nil)
        #expect(cache.lookup(jwt, now: now) == nil)
    }

    @Test func cacheStaysBounded() {
        let cache = VerifiedTokenCache(capacity: 64, shardCount: 4)
        let identity = Identity(method: .jwt, subject: "s", expiresAt: now + 60)
        for index in 0..<1_000 { cache.store("token-\(index)", identity: identity) }
        #expect(cache.count <= 64)
        #expect(cache.lookup("token-999", now: now) == identity)
        #expect(cache.lookup("token-0", now: now) == nil)
        let noExpiry = Identity(method: .jwt, subject: "s")
        cache.store("forever", identity: noExpiry)
        #expect(cache.lookup("forever", now: now) == nil)
        cache.removeAll()
        #expect(cache.count == 0)
        #expect(cache.lookup("token-999", now: now) == nil)
        cache.store("token-999", identity: identity)
        #expect(cache.lookup("token-999", now: now) == identity)
    }

    @Test func cacheEvictsInInsertionOrderOnceFull() {
        let cache = VerifiedTokenCache(capacity: 3, shardCount: 1)
        let identity = Identity(method: .jwt, subject: "s", expiresAt: now + 60)
        let shortLived = Identity(method: .jwt, subject: "short", expiresAt: now + 1)
        for name in ["a", "b"] { cache.store(name, identity: identity) }
        cache.store("c", identity: shortLived)
        #expect(cache.count == 3, "the ring grows with the entries up to its capacity")
        cache.store("d", identity: identity)
        #expect(cache.lookup("a", now: now) == nil, "the oldest slot is overwritten first")
        #expect(cache.count == 3)
        // Storing a cached token again refreshes it in place: it keeps its slot.
        cache.store("b", identity: identity)
        #expect(cache.count == 3)
        cache.store("e", identity: identity)
        #expect(cache.lookup("b", now: now) == nil)
        #expect(cache.lookup("d", now: now) == identity)
        // An entry dropped on expiry leaves its slot behind; reusing it evicts nothing else.
        #expect(cache.lookup("c", now: now + 1) == nil)
        #expect(cache.count == 2)
        cache.store("f", identity: identity)
        #expect(cache.count == 3)
        for name in ["d", "e", "f"] { #expect(cache.lookup(name, now: now) == identity) }
    }

    @Test func cacheSlotOwnershipKeepsAnEntryReStoredElsewhere() {
        let cache = VerifiedTokenCache(capacity: 3, shardCount: 1)
        let identity = Identity(method: .jwt, subject: "s", expiresAt: now + 60)
        cache.store("a", identity: identity)
        cache.store("b", identity: Identity(method: .jwt, subject: "b", expiresAt: now + 1))
        cache.store("c", identity: identity)
        #expect(cache.lookup("b", now: now + 1) == nil, "b expired and was dropped")
        // b comes back: it takes slot 0 (evicting a) while slot 1 still names it.
        cache.store("b", identity: identity)
        #expect(cache.lookup("a", now: now) == nil)
        // d overwrites slot 1: b is owned by slot 0 now, so it must survive.
        cache.store("d", identity: identity)
        for name in ["b", "c", "d"] { #expect(cache.lookup(name, now: now) == identity, "\(name)") }
        cache.store("e", identity: identity)
        #expect(cache.lookup("c", now: now) == nil)
        cache.store("f", identity: identity)
        #expect(cache.lookup("b", now: now) == nil, "b's own slot comes round")
        #expect(cache.count == 3)
    }

    @Test func aStoreFromBeforeAFlushIsDropped() {
        let cache = VerifiedTokenCache()
        let identity = Identity(method: .jwt, subject: "s", expiresAt: now + 60)
        let generation = cache.generation
        cache.store(VerifiedTokenCache.Key(token: "kept"), identity: identity, ifGeneration: generation)
        #expect(cache.lookup("kept", now: now) == identity)
        cache.removeAll()
        cache.store(VerifiedTokenCache.Key(token: "late"), identity: identity, ifGeneration: generation)
        #expect(cache.lookup("late", now: now) == nil, "verified with keys from before the flush")
        cache.store(VerifiedTokenCache.Key(token: "late"), identity: identity, ifGeneration: cache.generation)
        #expect(cache.lookup("late", now: now) == identity)
    }

    @Test func cacheKeyIsTheSameForTokenAndKeyCalls() throws {
        let cache = VerifiedTokenCache()
        let jwt = token()
        let verified = try #require(success(standard.verify(jwt, now: now)))
        cache.store(VerifiedTokenCache.Key(token: jwt), identity: verified)
        #expect(cache.lookup(jwt, now: now) == verified)
        #expect(cache.lookup(VerifiedTokenCache.Key(token: jwt, audienceOverride: ["https://a"]), now: now) == nil)
        #expect(VerifiedTokenCache.Key(token: jwt) != VerifiedTokenCache.Key(token: jwt + "x"))
        #expect(VerifiedTokenCache.Key(token: "ab") != VerifiedTokenCache.Key(token: "a", audienceOverride: ["b"]))
        #expect(VerifiedTokenCache.Key(token: jwt) != VerifiedTokenCache.Key(token: jwt, audienceOverride: []))
        #expect(
            VerifiedTokenCache.Key(token: "t\u{0}a") != VerifiedTokenCache.Key(token: "t", audienceOverride: ["a"]))
        #expect(
            VerifiedTokenCache.Key(token: "t", audienceOverride: ["a", "b"])
                != VerifiedTokenCache.Key(token: "t", audienceOverride: ["ab"]))
    }

    // MARK: Cost (informational only: printed, never asserted)

    @Test func measureVerificationCost() throws {
        let iterations = 200
        for alg in ["RS256", "ES256", "HS256"] {
            let kid: String? = alg == "HS256" ? nil : (alg == "RS256" ? "rsa-1" : "ec-1")
            let jwt = token(alg: alg, kid: kid)
            let clock = ContinuousClock()
            var ok = 0
            let cold = clock.measure {
                for _ in 0..<iterations where success(standard.verify(jwt, now: now)) != nil { ok += 1 }
            }
            let cache = VerifiedTokenCache()
            cache.store(jwt, identity: try #require(success(standard.verify(jwt, now: now))))
            let cached = clock.measure {
                for _ in 0..<iterations where cache.lookup(jwt, now: now) != nil { ok += 1 }
            }
            #expect(ok == 2 * iterations)
            let coldMicros = microseconds(cold) / Double(iterations)
            let cachedMicros = microseconds(cached) / Double(iterations)
            print("JWT cost \(alg): verify \(coldMicros) µs/token, cached lookup \(cachedMicros) µs/token")
        }
    }
}

private struct Failure: Error {}

private func microseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
}

// Sound: `count` is only touched with `lock` held.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
