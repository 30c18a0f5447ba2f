/// Verifies a presented credential end to end: JWT (cache → signature and claims →
/// revocation) or API key. Built per runtime; the API-key verifier (and with it the
/// revocation list) is shared across reloads because it follows the key store.
public final class Authenticator: Sendable {
    let jwt: JWTVerifier
    let tokenCache: VerifiedTokenCache
    let apiKeys: APIKeyVerifier
    /// Issuers' key sets, for readiness.
    let issuerKeys: [(issuer: String, keys: IssuerKeys)]

    public init(jwt: JWTVerifier, apiKeys: APIKeyVerifier, issuerKeys: [(issuer: String, keys: IssuerKeys)]) {
        self.jwt = jwt
        let tokenCache = VerifiedTokenCache()
        self.tokenCache = tokenCache
        self.apiKeys = apiKeys
        self.issuerKeys = issuerKeys
        for (_, keys) in issuerKeys {
            keys.setKeysRemovedHandler { tokenCache.removeAll() }
        }
    }

    /// Issuers with a `jwks_url` whose keys never loaded.
    public var issuersWithoutKeys: [String] {
        issuerKeys.filter { !$0.keys.hasLoadedKeys }.map(\.issuer)
    }

    public func authenticate(_ credential: PresentedCredential, now: Int64) -> Result<Identity, AuthenticationFailure> {
        switch credential {
        case .jwt(let token):
            return authenticateToken(token, now: now)
        case .apiKey(let key):
            return apiKeys.verify(key, now: now)
        case .emptyBearer:
            return .failure(AuthenticationFailure(.malformedToken, detail: "empty bearer credential"))
        case .none, .ambiguous:
            return .failure(AuthenticationFailure(.missingCredentials, detail: "no credential"))
        }
    }

    private func authenticateToken(_ token: String, now: Int64) -> Result<Identity, AuthenticationFailure> {
        let identity: Identity
        let cacheKey = VerifiedTokenCache.Key(token: token)
        if let cached = tokenCache.lookup(cacheKey, now: now) {
            identity = cached
        } else {
            // Taken before the keys are: if a JWKS refresh drops the key this token is
            // being verified with, the cache is emptied and this result is not stored.
            let generation = tokenCache.generation
            switch jwt.verify(token, now: now) {
            case .failure(let failure):
                return .failure(failure)
            case .success(let verified):
                identity = verified
                tokenCache.store(cacheKey, identity: verified, ifGeneration: generation)
            }
        }
        // After the cache on purpose: a revocation applies to cached tokens at once.
        if apiKeys.revocations.isRevoked(identity) {
            return .failure(
                AuthenticationFailure(
                    .tokenRevoked,
                    detail: identity.jti.map { "token \($0) was revoked" }
                        ?? "tokens of \(identity.subject) were revoked",
                    issuer: identity.issuer,
                    subject: identity.subject,
                    jti: identity.jti
                )
            )
        }
        return .success(identity)
    }
}
