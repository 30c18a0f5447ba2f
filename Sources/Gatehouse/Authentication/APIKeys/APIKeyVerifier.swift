import NIOConcurrencyHelpers

/// Verifies presented API keys against the in-memory `KeyStoreSnapshot` (SPEC §3). The
/// request path never touches SQLite: the `KeyStoreWatcher` swaps in a whole new snapshot
/// when the store changes, and collects the `last_used` times queued here.
///
/// Threading: `Sendable`; every method may be called from any thread (event loops, the
/// watcher). The snapshot and the `last_used` queue each sit behind their own lock, held
/// only to copy a value in or out: hashing and comparing happen outside it.
public final class APIKeyVerifier: Sendable {
    /// The `<prefix>` of the keys this verifier accepts.
    public let prefix: String
    private let state: NIOLockedValueBox<KeyStoreSnapshot>
    private let pendingLastUsed = NIOLockedValueBox<[String: Int64]>([:])

    public init(prefix: String, snapshot: KeyStoreSnapshot = KeyStoreSnapshot()) {
        self.prefix = prefix
        self.state = NIOLockedValueBox(snapshot)
    }

    /// The snapshot in force.
    public var snapshot: KeyStoreSnapshot { state.withLockedValue { $0 } }

    /// Swaps the whole snapshot; requests already past the lookup finish with the old one.
    public func replace(_ snapshot: KeyStoreSnapshot) {
        state.withLockedValue { $0 = snapshot }
    }

    /// Token revocations from the same snapshot: a reload updates both at once.
    public var revocations: RevocationList { RevocationList(sharing: state) }

    /// Checks a presented key. Every refusal is `invalid_api_key` for the client; the log
    /// reason says which check failed. The order matters: revoked and expired are only
    /// reported once the secret matched, so a caller holding just a key id learns nothing
    /// about that key's state.
    public func verify(_ presentedKey: String, now: Int64) -> Result<Identity, AuthenticationFailure> {
        guard let parsed = APIKeyFormat.parse(presentedKey, prefix: prefix) else {
            return .failure(
                AuthenticationFailure(
                    .invalidAPIKey, logReason: "unknown_api_key",
                    detail: "the credential is not of the form \(prefix)_<id>_<secret>"))
        }
        let id = parsed.id
        // Hashed before the lookup so an unknown id costs the same as a wrong secret.
        let presentedHash = APIKeyFormat.hash(parsed.secret)
        guard let stored = state.withLockedValue({ $0.keys[id] }) else {
            return .failure(
                AuthenticationFailure(
                    .invalidAPIKey, logReason: "unknown_api_key", detail: "no API key with id \(id)", keyID: id))
        }
        guard APIKeyFormat.constantTimeEqual(presentedHash, stored.secretSHA256) else {
            return .failure(
                AuthenticationFailure(
                    .invalidAPIKey, logReason: "api_key_mismatch", detail: "wrong secret for API key \(id)", keyID: id))
        }
        let record = stored.record
        if let revoked = record.revoked {
            return .failure(
                AuthenticationFailure(
                    .invalidAPIKey, logReason: "api_key_revoked",
                    detail: "API key \(id) was revoked at \(Self.format(revoked))", subject: record.subject, keyID: id))
        }
        if let expires = record.expires, expires <= now {
            return .failure(
                AuthenticationFailure(
                    .invalidAPIKey, logReason: "api_key_expired",
                    detail: "API key \(id) expired at \(Self.format(expires))", subject: record.subject, keyID: id))
        }
        pendingLastUsed.withLockedValue { pending in
            pending[id] = max(pending[id] ?? now, now)
        }
        return .success(
            Identity(
                method: .apiKey, subject: record.subject, email: record.email, org: record.org, role: record.role,
                scopes: record.scopes, hasScopeClaim: true, keyID: id, expiresAt: record.expires))
    }

    /// Takes the queued `last_used` times (id → seconds), leaving the queue empty.
    public func takePendingLastUsed() -> [String: Int64] {
        pendingLastUsed.withLockedValue { pending in
            defer { pending = [:] }
            return pending
        }
    }

    /// Puts back times whose write failed, so the next flush retries them.
    public func requeueLastUsed(_ times: [String: Int64]) {
        pendingLastUsed.withLockedValue { pending in
            pending.merge(times) { max($0, $1) }
        }
    }

    private static func format(_ seconds: Int64) -> String {
        Timestamp.format(seconds: Int(seconds), milliseconds: 0)
    }
}

/// JWT revocations (SPEC §3 "Revocation"): by `jti`, or by subject + time. Checked after
/// the signature, and also for cached tokens, so it is a pair of hash lookups.
///
/// API-key identities are never refused here: a key is revoked on its own with
/// `gatehouse keys revoke`, and has no `iat` to compare with a subject's revocation time.
public struct RevocationList: Sendable {
    private let state: NIOLockedValueBox<KeyStoreSnapshot>

    /// A list of its own (tests, `gatehouse explain`); the gateway uses
    /// `APIKeyVerifier.revocations`, which follows the watcher's reloads.
    public init(snapshot: KeyStoreSnapshot) {
        state = NIOLockedValueBox(snapshot)
    }

    init(sharing state: NIOLockedValueBox<KeyStoreSnapshot>) {
        self.state = state
    }

    /// Whether the token was revoked: its `jti` is listed, or its subject was revoked at
    /// T and it was issued before T. A token without `iat` cannot prove it came after the
    /// revocation, so for a revoked subject it counts as revoked.
    public func isRevoked(_ identity: Identity) -> Bool {
        guard identity.method == .jwt else { return false }
        return state.withLockedValue { snapshot in
            if let jti = identity.jti, snapshot.revokedJTIs.contains(jti) { return true }
            guard let revokedAt = snapshot.revokedSubjects[identity.subject] else { return false }
            guard let issuedAt = identity.issuedAt else { return true }
            return issuedAt < revokedAt
        }
    }
}
