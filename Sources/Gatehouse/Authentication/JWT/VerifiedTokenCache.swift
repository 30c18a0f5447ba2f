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
    /// Bumped by `removeAll`, before any shard is emptied: a store that read an older
    /// value is dropped (checked under the shard's lock), so a verification that began
    /// before the flush cannot refill the cache with what the flush removed.
    private let flushes = NIOLockedValueBox<UInt64>(0)

    public init(capacity: Int = defaultCapacity, shardCount: Int = 16) {
        let shardCount = max(1, shardCount)
        let perShard = max(1, (max(1, capacity) + shardCount - 1) / shardCount)
        shards = (0..<shardCount).map { _ in NIOLockedValueBox(Shard(capacity: perShard)) }
    }

    /// The cached identity, or nil when absent or expired at `now` (seconds).
    /// `audienceOverride` must be the one the caller would pass to the verifier: a token
    /// accepted for one MCP resource says nothing about another.
    public func lookup(_ token: String, audienceOverride: [String]? = nil, now: Int64) -> Identity? {
        lookup(Key(token: token, audienceOverride: audienceOverride), now: now)
    }

    /// As `lookup(_:audienceOverride:now:)`, with the key computed once by the caller, who
    /// stores under the same key after a miss (one SHA-256 per request, not two).
    public func lookup(_ key: Key, now: Int64) -> Identity? {
        shard(for: key).withLockedValue { $0.lookup(key, now: now) }
    }

    /// Caches a verified identity. Identities without `expiresAt` are not cached.
    public func store(_ token: String, audienceOverride: [String]? = nil, identity: Identity) {
        store(Key(token: token, audienceOverride: audienceOverride), identity: identity)
    }

    /// The current flush count: read it before verifying, pass it to `store(_:identity:ifGeneration:)`.
    public var generation: UInt64 { flushes.withLockedValue { $0 } }

    /// Caches a verified identity under a key from `Key(token:audienceOverride:)`; with a
    /// `generation`, only if `removeAll` has not run since it was read.
    public func store(_ key: Key, identity: Identity, ifGeneration generation: UInt64? = nil) {
        guard let expiresAt = identity.expiresAt else { return }
        shard(for: key).withLockedValue { shard in
            if let generation, flushes.withLockedValue({ $0 }) != generation { return }
            shard.store(key, identity: identity, expiresAt: expiresAt)
        }
    }

    /// Drops every entry: for when a JWKS refresh removes a key (often a sign of
    /// compromise), so that tokens it signed are verified again rather than served.
    public func removeAll() {
        flushes.withLockedValue { $0 &+= 1 }
        for shard in shards {
            shard.withLockedValue { $0.removeAll() }
        }
    }

    public var count: Int {
        shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.entries.count } }
    }

    private func shard(for key: Key) -> NIOLockedValueBox<Shard> {
        shards[Int(key.a % UInt64(shards.count))]
    }

    /// SHA-256 of the token and the audience override in force. The full 256-bit digest:
    /// a collision would hand one caller another's identity.
    public struct Key: Hashable, Sendable {
        let a, b, c, d: UInt64

        /// Every part is length-prefixed and the override is tagged, so no two different
        /// (token, override) pairs hash the same input: no override and an empty one are
        /// distinct (the verifier treats them differently), whatever bytes the parts hold.
        public init(token: String, audienceOverride: [String]? = nil) {
            var hasher = SHA256()
            Self.hash(token, into: &hasher)
            if let audienceOverride {
                Self.hash(UInt64(1), into: &hasher)
                Self.hash(UInt64(audienceOverride.count), into: &hasher)
                for audience in audienceOverride { Self.hash(audience, into: &hasher) }
            } else {
                Self.hash(UInt64(0), into: &hasher)
            }
            let digest = hasher.finalize()
            (a, b, c, d) = digest.withUnsafeBytes { raw in
                (
                    raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                    raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                    raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
                    raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
                )
            }
        }

        /// The string's UTF-8 length, then its bytes, hashed in place: a token (always
        /// native, contiguous) is not copied into an array first.
        private static func hash(_ text: String, into hasher: inout SHA256) {
            var text = text
            text.withUTF8 { bytes in
                hash(UInt64(bytes.count), into: &hasher)
                hasher.update(bufferPointer: UnsafeRawBufferPointer(bytes))
            }
        }

        /// Eight little-endian bytes, from the stack rather than a temporary array.
        private static func hash(_ number: UInt64, into hasher: inout SHA256) {
            withUnsafeBytes(of: number.littleEndian) { hasher.update(bufferPointer: $0) }
        }
    }

    /// A class so that the dictionary's buckets hold a pointer, not a whole `Identity`:
    /// buckets are allocated in powers of two and half of them stand empty after a resize,
    /// which made an inline entry cost about twice its size.
    private final class Entry: Sendable {
        let identity: Identity
        let expiresAt: Int64
        /// The ring slot that owns this entry.
        let slot: Int

        init(identity: Identity, expiresAt: Int64, slot: Int) {
            self.identity = identity
            self.expiresAt = expiresAt
            self.slot = slot
        }
    }

    private struct Shard {
        var entries: [Key: Entry] = [:]
        /// Keys by insertion slot. It grows with the entries up to `capacity` (so an idle
        /// cache costs no memory), then wraps. A slot can outlive its entry (expired and
        /// removed, or re-inserted elsewhere); `Entry.slot` tells whether it still owns it.
        var ring: [Key] = []
        let capacity: Int
        /// The slot to overwrite next, once the ring is full.
        var next = 0

        init(capacity: Int) {
            self.capacity = capacity
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
            let slot: Int
            if ring.count < capacity {
                // Grown by hand: append's doubling would overshoot the capacity by up to 2×.
                if ring.count == ring.capacity { ring.reserveCapacity(min(capacity, max(16, ring.count * 2))) }
                slot = ring.count
                ring.append(key)
            } else {
                slot = next
                let evicted = ring[slot]
                if entries[evicted]?.slot == slot { entries[evicted] = nil }
                ring[slot] = key
                next = (next + 1) % capacity
            }
            entries[key] = Entry(identity: identity, expiresAt: expiresAt, slot: slot)
        }

        mutating func removeAll() {
            entries.removeAll()
            ring.removeAll()
            next = 0
        }
    }
}
