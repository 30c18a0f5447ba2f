import Crypto
import NIOConcurrencyHelpers

/// Identities of tokens that already passed `JWTVerifier`, so that a client sending the
/// same token on every request pays one SHA-256 instead of a signature check.
///
/// - Keyed by SHA-256 of the token (plus the audience override in force): the token text
///   is never stored.
/// - An entry is never served at or past its `exp` (`Identity.expiresAt`); the verifier's
///   leeway is not extended to cached entries, so a token inside its leeway window is
///   simply verified again.
/// - Revocation is NOT checked here: the caller must check revocation (by `jti`, and by
///   subject + `iat`) after every lookup, hit or miss, since a token can be revoked while
///   it sits in the cache.
/// - A cache belongs to one `Runtime`: a config reload (other issuers, audiences, keys)
///   starts with an empty one.
/// - Bounded: `capacity` entries split over shards, each a lock-protected dictionary with
///   a ring of insertion slots; a full shard overwrites its oldest slot (FIFO), which is
///   O(1) and needs no per-hit bookkeeping.
public final class VerifiedTokenCache: Sendable {
    public static let defaultCapacity = 100_000

    private let shards: [NIOLockedValueBox<Shard>]

    public init(capacity: Int = defaultCapacity, shardCount: Int = 16) {
        let shardCount = max(1, shardCount)
        let perShard = max(1, (max(1, capacity) + shardCount - 1) / shardCount)
        shards = (0..<shardCount).map { _ in NIOLockedValueBox(Shard(capacity: perShard)) }
    }

    /// The cached identity, or nil when absent or expired at `now` (seconds).
    /// `audienceOverride` must be the one the caller would pass to the verifier: a token
    /// accepted for one MCP resource says nothing about another.
    public func lookup(_ token: String, audienceOverride: [String]? = nil, now: Int64) -> Identity? {
        let key = Self.key(token, audienceOverride: audienceOverride)
        return shard(for: key).withLockedValue { $0.lookup(key, now: now) }
    }

    /// Caches a verified identity. Identities without `expiresAt` are not cached.
    public func store(_ token: String, audienceOverride: [String]? = nil, identity: Identity) {
        guard let expiresAt = identity.expiresAt else { return }
        let key = Self.key(token, audienceOverride: audienceOverride)
        shard(for: key).withLockedValue { $0.store(key, identity: identity, expiresAt: expiresAt) }
    }

    /// Drops every entry: for when a JWKS refresh removes a key (often a sign of
    /// compromise), so that tokens it signed are verified again rather than served.
    public func removeAll() {
        for shard in shards {
            shard.withLockedValue { shard in
                shard.entries.removeAll(keepingCapacity: true)
                shard.ring = Array(repeating: nil, count: shard.ring.count)
                shard.next = 0
            }
        }
    }

    public var count: Int {
        shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.entries.count } }
    }

    private func shard(for key: Key) -> NIOLockedValueBox<Shard> {
        shards[Int(key.a % UInt64(shards.count))]
    }

    private static func key(_ token: String, audienceOverride: [String]?) -> Key {
        var hasher = SHA256()
        hasher.update(data: Array(token.utf8))
        if let audienceOverride {
            // NUL cannot occur in a token or (usefully) in an audience: an unambiguous join.
            for audience in audienceOverride {
                hasher.update(data: [0])
                hasher.update(data: Array(audience.utf8))
            }
        }
        let digest = hasher.finalize()
        return digest.withUnsafeBytes { raw in
            Key(
                a: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                b: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                c: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
                d: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
            )
        }
    }

    /// The full 256-bit digest: a collision would hand one caller another's identity.
    private struct Key: Hashable {
        var a, b, c, d: UInt64
    }

    private struct Entry {
        var identity: Identity
        var expiresAt: Int64
        /// The ring slot that owns this entry.
        var slot: Int
    }

    private struct Shard {
        var entries: [Key: Entry] = [:]
        /// Keys by insertion slot. A slot can outlive its entry (expired and removed, or
        /// re-inserted elsewhere); `Entry.slot` tells whether it still owns it.
        var ring: [Key?]
        var next = 0

        init(capacity: Int) {
            ring = Array(repeating: nil, count: capacity)
        }

        mutating func lookup(_ key: Key, now: Int64) -> Identity? {
            guard let entry = entries[key] else { return nil }
            guard now < entry.expiresAt else {
                entries[key] = nil
                return nil
            }
            return entry.identity
        }

        mutating func store(_ key: Key, identity: Identity, expiresAt: Int64) {
            if let existing = entries[key] {
                entries[key] = Entry(identity: identity, expiresAt: expiresAt, slot: existing.slot)
                return
            }
            if let evicted = ring[next], entries[evicted]?.slot == next {
                entries[evicted] = nil
            }
            ring[next] = key
            entries[key] = Entry(identity: identity, expiresAt: expiresAt, slot: next)
            next = (next + 1) % ring.count
        }
    }
}
