import Crypto
import Foundation

/// Verifies compact-JWS bearer tokens against the configured issuers (SPEC §3).
///
/// Built on swift-crypto primitives with our own JWS handling, not vapor/jwt-kit:
/// jwt-kit falls back to another key when a token's `kid` is unknown or missing, and it
/// never compares the header's `alg` with the key's type — SPEC §3 forbids both — and it
/// decodes claims into a fixed `Codable` type, whereas the claim mapping needs a generic
/// claims tree for dotted paths (`app_metadata.org_id`).
///
/// Order of checks, each refusal naming the first rule broken:
/// 1. size (> 8 KiB, before any parsing), shape (three base64url segments, header and
///    payload JSON objects) → `malformed_token`;
/// 2. header `alg` names an algorithm we implement (`none` in any spelling never does)
///    → `unsupported_algorithm`; `crit` present → `malformed_token`;
/// 3. the payload's `iss` picks the issuer → `invalid_issuer`. This has to precede the
///    signature because the issuer decides which keys may verify it; `iss` is the only
///    claim read before the signature, and only to choose keys (and to name the issuer
///    in the denial log);
/// 4. `alg` in that issuer's allow-list → `unsupported_algorithm`;
/// 5. key selection → `unknown_key` (or `keysUnavailable` while a JWKS URL never loaded);
/// 6. signature → `invalid_signature`;
/// 7. claims, now trusted: `exp`, `nbf`, `iat`, `aud`, `require_claims`, lifetime, and
///    the identity fields.
///
/// `jku`, `x5u`, `jwk`, `x5c` and `typ` are never read: keys come from the config only.
public final class JWTVerifier: Sendable {
    /// SPEC §3: larger tokens are refused before any parsing.
    public static let maximumTokenBytes = 8 * 1024

    private struct Issuer: Sendable {
        let config: IssuerConfig
        let keys: IssuerKeys
        let algorithms: Set<JWTAlgorithm>
        let leewaySeconds: Double
        let maxLifetimeSeconds: Double?
    }

    private let issuers: [Issuer]

    /// Issuers are matched in order; a duplicated `issuer` string (which the config
    /// checker refuses) would be served by its first entry.
    public init(issuers: [(config: IssuerConfig, keys: IssuerKeys)]) {
        self.issuers = issuers.map { entry in
            Issuer(
                config: entry.config,
                keys: entry.keys,
                algorithms: Set(entry.config.algorithms),
                leewaySeconds: entry.config.leeway.secondsAsDouble,
                maxLifetimeSeconds: entry.config.maxTokenLifetime?.secondsAsDouble
            )
        }
    }

    /// The verified identity, or why the token is refused.
    ///
    /// - Parameters:
    ///   - now: seconds since the epoch.
    ///   - audienceOverride: when set, replaces the issuer's `audiences` (an MCP route
    ///     binds tokens to its own resource URL).
    public func verify(_ token: String, now: Int64, audienceOverride: [String]? = nil)
        -> Result<Identity, AuthenticationFailure>
    {
        guard token.utf8.count <= Self.maximumTokenBytes else {
            return .failure(AuthenticationFailure(.malformedToken, detail: "token is larger than 8 KiB"))
        }
        let bytes = Array(token.utf8)
        guard let parts = CompactJWS(bytes) else {
            return .failure(
                AuthenticationFailure(
                    .malformedToken,
                    detail: "not a compact JWS (three base64url segments, JSON object header and payload)"))
        }
        let header = parts.header
        let claims = parts.payload
        // Unverified: recorded for the denial log only, never trusted for a decision.
        let claimedIssuer = claims["iss"]?.stringValue.map { Self.clipped($0) }

        func refuse(_ reason: DenialReason, _ detail: String) -> Result<Identity, AuthenticationFailure> {
            .failure(AuthenticationFailure(reason, detail: detail, issuer: claimedIssuer))
        }

        guard let algValue = header["alg"] else { return refuse(.malformedToken, "header has no \"alg\"") }
        guard let algName = algValue.stringValue else {
            return refuse(.malformedToken, "header \"alg\" is not a string")
        }
        guard let alg = JWTAlgorithm(rawValue: algName) else {
            if algName.lowercased() == "none" {
                return refuse(.unsupportedAlgorithm, "unsigned tokens (alg \"none\") are never accepted")
            }
            return refuse(.unsupportedAlgorithm, "alg \"\(Self.clipped(algName, to: 32))\" is not supported")
        }
        // RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` names an extension
        // it does not implement, and we implement none (`b64: false` of RFC 7797 included);
        // an empty list is itself invalid. So any `crit` is refused.
        if header["crit"] != nil {
            return refuse(.malformedToken, "header \"crit\" names extensions Gatehouse does not implement")
        }
        var kid: String?
        if let kidValue = header["kid"] {
            guard let text = kidValue.stringValue else {
                return refuse(.malformedToken, "header \"kid\" is not a string")
            }
            kid = text
        }

        guard let tokenIssuer = claims["iss"]?.stringValue else {
            return refuse(.invalidIssuer, "token has no \"iss\" string")
        }
        // Byte equality: Swift's `==` on strings treats canonically equivalent Unicode as
        // equal, and SPEC asks for an exact match.
        guard let issuer = issuers.first(where: { $0.config.issuer.utf8.elementsEqual(tokenIssuer.utf8) }) else {
            return refuse(.invalidIssuer, "issuer is not configured")
        }
        guard issuer.algorithms.contains(alg) else {
            return refuse(.unsupportedAlgorithm, "alg \(alg.rawValue) is not allowed for this issuer")
        }

        let selection = issuer.keys.select(alg: alg, kid: kid)
        let kidText = kid.map { " kid \"\(Self.clipped($0, to: 64))\"" } ?? " (no kid)"
        if selection.candidates.isEmpty {
            if selection.keysUnavailable {
                return .failure(
                    AuthenticationFailure(
                        .unknownKey, logReason: "keys_unavailable",
                        detail: "the issuer's JWKS has not been loaded yet", issuer: issuer.config.issuer,
                        keysUnavailable: true))
            }
            if selection.kidUnknown { issuer.keys.noteUnknownKid() }
            return refuse(.unknownKey, "no \(alg.rawValue) key for\(kidText)")
        }
        let signingInput = bytes[..<parts.signingInputEnd]
        guard
            selection.candidates.contains(where: {
                $0.verify(alg: alg, signingInput: signingInput, signature: parts.signature)
            })
        else {
            if selection.kidUnknown { issuer.keys.noteUnknownKid() }
            // The key that signed it may be in the JWKS we never managed to load: we
            // cannot call the token bad, only say we cannot check it yet.
            if issuer.keys.hasJWKSURL, !issuer.keys.hasLoadedKeys, kid == nil || selection.kidUnknown {
                return .failure(
                    AuthenticationFailure(
                        .unknownKey, logReason: "keys_unavailable",
                        detail: "signature did not verify and the issuer's JWKS has not been loaded yet",
                        issuer: issuer.config.issuer, keysUnavailable: true))
            }
            return refuse(.invalidSignature, "\(alg.rawValue) signature does not verify for\(kidText)")
        }

        // From here on the claims are signed by a trusted key.
        return checkClaims(JSONValue.object(claims), issuer: issuer, now: now, audienceOverride: audienceOverride)
    }

    private func checkClaims(_ claims: JSONValue, issuer: Issuer, now: Int64, audienceOverride: [String]?)
        -> Result<Identity, AuthenticationFailure>
    {
        let config = issuer.config
        let subject = claims.value(at: config.claims.subject)?.stringValue
        let jti = claims["jti"]?.stringValue
        func refuse(_ reason: DenialReason, _ detail: String) -> Result<Identity, AuthenticationFailure> {
            .failure(
                AuthenticationFailure(
                    reason, detail: detail, issuer: config.issuer, subject: subject.map { Self.clipped($0) },
                    jti: jti.map { Self.clipped($0) }))
        }
        let now = Double(now)
        let leeway = issuer.leewaySeconds

        // NumericDate may be fractional (RFC 7519 §2); comparisons are done in Double,
        // exact for any date within 2^53 seconds.
        guard let expValue = claims["exp"] else { return refuse(.missingClaim, "token has no \"exp\"") }
        guard let exp = expValue.numberValue?.doubleValue else {
            return refuse(.malformedToken, "\"exp\" is not a number")
        }
        guard now < exp + leeway else { return refuse(.tokenExpired, "token expired") }
        for name in ["nbf", "iat"] {
            guard let value = claims[name] else { continue }
            guard let date = value.numberValue?.doubleValue else {
                return refuse(.malformedToken, "\"\(name)\" is not a number")
            }
            guard date <= now + leeway else { return refuse(.tokenNotYetValid, "\"\(name)\" is in the future") }
        }
        let iat = claims["iat"]?.numberValue?.doubleValue

        let accepted = audienceOverride ?? config.audiences
        guard let audiences = Self.audiences(claims["aud"]) else {
            return refuse(.invalidAudience, "\"aud\" is missing or not a string / array of strings")
        }
        guard audiences.contains(where: { aud in accepted.contains { $0.utf8.elementsEqual(aud.utf8) } }) else {
            return refuse(.invalidAudience, "\"aud\" contains none of the accepted audiences")
        }

        for name in config.requireClaims {
            // A JSON null states nothing: it does not satisfy a requirement.
            guard let value = claims.value(at: name), value != .null else {
                return refuse(.missingClaim, "required claim \"\(name)\" is missing")
            }
        }
        if let maxLifetime = issuer.maxLifetimeSeconds {
            // Without `iat` the lifetime cannot be bounded: refused rather than assumed.
            guard let iat else {
                return refuse(.missingClaim, "\"iat\" is required to enforce max_token_lifetime")
            }
            guard exp - iat <= maxLifetime else {
                return refuse(.tokenTooOld, "token lifetime exp - iat exceeds max_token_lifetime")
            }
        }

        guard let subject, !subject.isEmpty else {
            return refuse(.missingClaim, "subject claim \"\(config.claims.subject)\" is missing or not a string")
        }
        let email = Self.optionalString(claims.value(at: config.claims.email))
        let org = Self.optionalString(claims.value(at: config.claims.org))
        let role = Self.optionalString(claims.value(at: config.claims.role))
        let scopeClaim = claims.value(at: config.claims.scopes)
        let scopes = Self.scopes(scopeClaim)
        // These values become upstream request headers: a CR or LF would split them.
        for value in [subject, email, org, role].compactMap({ $0 }) + scopes where Self.hasControlCharacter(value) {
            return refuse(.malformedToken, "an identity claim contains control characters")
        }
        return .success(
            Identity(
                method: .jwt,
                subject: subject,
                email: email,
                org: org,
                role: role,
                scopes: scopes,
                hasScopeClaim: scopeClaim != nil,
                issuer: config.issuer,
                jti: jti,
                issuedAt: iat.map(Self.wholeSeconds),
                expiresAt: Self.wholeSeconds(exp)
            ))
    }

    /// First 16 hex characters of SHA-256(token): names a token in logs without revealing it.
    public static func tokenFingerprint(_ token: String) -> String {
        let digest = SHA256.hash(data: Array(token.utf8))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(16)
        for byte in digest.prefix(8) {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Claim helpers

    private static func audiences(_ value: JSONValue?) -> [String]? {
        switch value {
        case .string(let single): return [single]
        case .array(let elements):
            var result: [String] = []
            for element in elements {
                guard let text = element.stringValue else { return nil }
                result.append(text)
            }
            return result
        default: return nil
        }
    }

    /// Strings only: another JSON type in an identity field is treated as absent, as is "".
    private static func optionalString(_ value: JSONValue?) -> String? {
        guard let text = value?.stringValue, !text.isEmpty else { return nil }
        return text
    }

    /// A space-separated string (RFC 6749 `scope`) or an array of strings (`scp`).
    /// Anything else present grants nothing, yet still counts as a scope claim, so that a
    /// garbled claim never falls back to the role's broader scopes.
    private static func scopes(_ value: JSONValue?) -> [String] {
        let raw: [String]
        switch value {
        // Scope tokens are ASCII (RFC 6749 §3.3), separated by single spaces: split the
        // bytes, not `Character`s, which cost ten times as much on every cold token.
        case .string(let text): raw = text.utf8.split(separator: UInt8(ascii: " ")).map { String(Substring($0)) }
        case .array(let elements): raw = elements.compactMap(\.stringValue).filter { !$0.isEmpty }
        default: return []
        }
        var seen = Set<String>()
        return raw.filter { seen.insert($0).inserted }
    }

    private static func hasControlCharacter(_ text: String) -> Bool {
        text.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }

    private static func wholeSeconds(_ value: Double) -> Int64 {
        let floor = value.rounded(.down)
        if floor >= 9.2e18 { return Int64.max }
        if floor <= -9.2e18 { return Int64.min }
        return Int64(floor)
    }

    /// Unverified or attacker-chosen text bound for logs is kept short.
    private static func clipped(_ text: String, to limit: Int = 256) -> String {
        text.utf8.count <= limit ? text : String(text.prefix(limit))
    }
}

/// The three segments of a compact JWS, decoded; nil unless well-formed.
private struct CompactJWS {
    let header: [String: JSONValue]
    let payload: [String: JSONValue]
    let signature: [UInt8]
    /// End of `header.payload` in the token bytes: what the signature covers.
    let signingInputEnd: Int

    init?(_ bytes: [UInt8]) {
        let dot = UInt8(ascii: ".")
        guard let first = bytes.firstIndex(of: dot),
            let second = bytes[(first + 1)...].firstIndex(of: dot),
            !bytes[(second + 1)...].contains(dot),
            let headerBytes = Base64URL.decode(bytes[..<first]),
            let payloadBytes = Base64URL.decode(bytes[(first + 1)..<second]),
            let signature = Base64URL.decode(bytes[(second + 1)...]),
            let header = (try? JSONValue.parse(headerBytes))?.objectValue,
            let payload = (try? JSONValue.parse(payloadBytes))?.objectValue
        else { return nil }
        self.header = header
        self.payload = payload
        self.signature = signature
        self.signingInputEnd = second
    }
}

extension Duration {
    fileprivate var secondsAsDouble: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
