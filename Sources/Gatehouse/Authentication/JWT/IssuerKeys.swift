import NIOConcurrencyHelpers

/// The keys chosen for one token (SPEC §3 key selection).
public struct KeySelection: Sendable {
    /// Keys to try, in order: those carrying the token's `kid`, then kid-less ones.
    public var candidates: [VerificationKey]
    /// The token named a `kid` that no key of its type carries: a JWKS refetch may
    /// bring it (key rotation), so the caller is told.
    public var kidUnknown: Bool
    /// No candidate, and the issuer's JWKS URL has never loaded: the answer is 503
    /// `keys_unavailable`, not a 401 the client can do nothing about.
    public var keysUnavailable: Bool

    public init(candidates: [VerificationKey], kidUnknown: Bool, keysUnavailable: Bool) {
        self.candidates = candidates
        self.kidUnknown = kidUnknown
        self.keysUnavailable = keysUnavailable
    }
}

/// One issuer's keys: the static ones from the config (PEM files, `jwks_file`,
/// `hs256_secret_file`), fixed for the life of a `Runtime`, plus the set fetched from
/// `jwks_url`, which the fetcher replaces whole while requests read it.
public final class IssuerKeys: Sendable {
    public let staticKeys: [VerificationKey]
    /// Whether a fetched key set is expected at all (`jwks_url` configured).
    public let hasJWKSURL: Bool

    private struct State {
        /// nil until the first successful fetch.
        var jwks: [VerificationKey]?
        var unknownKidPending = false
        var unknownKidHandler: (@Sendable () -> Void)?
        var keysRemovedHandler: (@Sendable () -> Void)?
    }

    private let state: NIOLockedValueBox<State>

    public init(staticKeys: [VerificationKey], hasJWKSURL: Bool = false) {
        self.staticKeys = staticKeys
        self.hasJWKSURL = hasJWKSURL
        self.state = NIOLockedValueBox(State())
    }

    /// Installs a freshly fetched key set. Tokens being verified keep the snapshot they
    /// took; the swap is one assignment under the lock.
    ///
    /// When a key of the previous set is missing from the new one (often a sign that it
    /// was compromised), the keys-removed handler runs, so that tokens it signed stop
    /// being served from the verified-token cache. Returns whether that happened.
    @discardableResult
    public func replaceJWKS(_ keys: [VerificationKey]) -> Bool {
        let kept = Set(keys.map(\.fingerprint))
        let (removed, handler) = state.withLockedValue { state -> (Bool, (@Sendable () -> Void)?) in
            let removed = state.jwks?.contains { !kept.contains($0.fingerprint) } ?? false
            state.jwks = keys
            return (removed, state.keysRemovedHandler)
        }
        // Outside the lock: the handler takes the cache's locks.
        if removed { handler?() }
        return removed
    }

    /// Installs what to run when a JWKS refresh drops a key (the authenticator: empty its
    /// verified-token cache).
    public func setKeysRemovedHandler(_ handler: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.keysRemovedHandler = handler }
    }

    /// False only while a `jwks_url` issuer has never loaded its key set (`/readyz`).
    public var hasLoadedKeys: Bool {
        !hasJWKSURL || state.withLockedValue { $0.jwks != nil }
    }

    /// Every key currently in force: static first, then fetched.
    public var allKeys: [VerificationKey] {
        staticKeys + (state.withLockedValue { $0.jwks } ?? [])
    }

    public func select(alg: JWTAlgorithm, kid: String?) -> KeySelection {
        let fetched = state.withLockedValue { $0.jwks }
        let keys = fetched.map { staticKeys + $0 } ?? staticKeys
        var selection = Self.select(from: keys, alg: alg, kid: kid)
        selection.keysUnavailable = selection.candidates.isEmpty && hasJWKSURL && fetched == nil
        return selection
    }

    /// SPEC §3, with "a key of its type" meaning a key that can verify `alg` (its type
    /// matches and any JWKS `alg` pin agrees). A `kid` never selects a key whose `kid`
    /// differs, and a `kid` naming a key of another type selects nothing by that name;
    /// kid-less keys of the right type are tried in both cases.
    public static func select(from keys: [VerificationKey], alg: JWTAlgorithm, kid: String?) -> KeySelection {
        let usable = keys.filter { $0.canVerify(alg) }
        guard let kid else {
            return KeySelection(candidates: usable, kidUnknown: false, keysUnavailable: false)
        }
        let named = usable.filter { $0.kid == kid }
        let kidless = usable.filter { $0.kid == nil }
        return KeySelection(candidates: named + kidless, kidUnknown: named.isEmpty, keysUnavailable: false)
    }

    /// Called by the verifier when a token's unknown `kid` kept it from verifying. Only
    /// meaningful for a `jwks_url` issuer; the fetcher rate-limits the refetch (SPEC: at
    /// most once per 30 s), so this stays cheap on the request path.
    public func noteUnknownKid() {
        guard hasJWKSURL else { return }
        let handler = state.withLockedValue { state -> (@Sendable () -> Void)? in
            state.unknownKidPending = true
            return state.unknownKidHandler
        }
        // Outside the lock: the handler may take locks of its own.
        handler?()
    }

    /// Whether an unknown `kid` was seen since the last call (clears the flag): for a
    /// fetcher that polls rather than installing a handler.
    public func takeUnknownKidSignal() -> Bool {
        state.withLockedValue { state in
            defer { state.unknownKidPending = false }
            return state.unknownKidPending
        }
    }

    /// Installs what to run when an unknown `kid` is seen (typically: wake the fetcher).
    public func setUnknownKidHandler(_ handler: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.unknownKidHandler = handler }
    }
}
