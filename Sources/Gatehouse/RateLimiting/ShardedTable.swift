import NIOConcurrencyHelpers

/// A dictionary split over lock-protected shards by the hash of the key, shared by the
/// rate limiter and the auth-failure guard.
///
/// Why shards: every request touches this table, from every event loop at once; one lock
/// would serialise them all, while with 64 shards two requests wait for each other only
/// when their keys fall in the same shard. Why not per-event-loop tables instead: a
/// key's entry would then exist once per loop, and a client spreading its connections
/// over the loops would get the limit once per loop. Sharding keeps ONE entry per key,
/// so limits stay exact whatever the number of threads.
///
/// Entries that carry no information any more (a refilled bucket, an expired failure
/// window) are removed lazily: each shard sweeps itself after a number of operations at
/// least its own size (and at least `minimumSweepInterval`), so the cost is O(1)
/// amortised per operation. `sweep(isLive:)` does the same for every shard on demand,
/// for a periodic timer, so memory is given back when traffic stops.
final class ShardedTable<Key: ShardedKey, Value: Sendable>: Sendable {
    struct Shard: Sendable {
        var entries: [Key: Value] = [:]
        var operationsSinceSweep = 0
    }

    /// Below this many operations a shard is not swept: sweeping a near-empty table
    /// often costs more than the few stale entries it would free.
    static var minimumSweepInterval: Int { 1024 }

    private let shards: [NIOLockedValueBox<Shard>]
    /// log2 of the shard count, which is a power of two so that a shift selects one.
    private let shardBits: Int

    init(shardCount: Int) {
        var bits = 0
        while (1 << bits) < max(1, min(shardCount, 1 << 16)) { bits += 1 }
        shardBits = bits
        shards = (0..<(1 << bits)).map { _ in NIOLockedValueBox(Shard()) }
    }

    var shardCount: Int { shards.count }

    /// Runs `body` on `key`'s shard under its lock, then sweeps the shard when due,
    /// keeping the entries for which `isLive` is true.
    @inline(__always)
    func withShard<Result>(
        of key: Key, isLive: (Value) -> Bool, _ body: (inout Shard) -> Result
    ) -> Result {
        shards[index(of: key)].withLockedValue { shard in
            let result = body(&shard)
            shard.operationsSinceSweep += 1
            if shard.operationsSinceSweep >= max(Self.minimumSweepInterval, shard.entries.count) {
                Self.sweep(&shard, isLive: isLive)
            }
            return result
        }
    }

    /// Reads `key`'s entry under its shard's lock, without counting towards a sweep.
    @inline(__always)
    func read<Result>(_ key: Key, _ body: (Value?) -> Result) -> Result {
        shards[index(of: key)].withLockedValue { body($0.entries[key]) }
    }

    /// Removes every entry that is no longer live; returns how many were removed.
    @discardableResult
    func sweep(isLive: (Value) -> Bool) -> Int {
        shards.reduce(0) { removed, shard in
            removed + shard.withLockedValue { Self.sweep(&$0, isLive: isLive) }
        }
    }

    var count: Int {
        shards.reduce(0) { total, shard in total + shard.withLockedValue { $0.entries.count } }
    }

    @discardableResult
    static func sweep(_ shard: inout Shard, isLive: (Value) -> Bool) -> Int {
        shard.operationsSinceSweep = 0
        let before = shard.entries.count
        // `filter` builds a right-sized table, so memory shrinks after a burst of keys too.
        shard.entries = shard.entries.filter { isLive($0.value) }
        return before - shard.entries.count
    }

    /// Fibonacci hashing on top of `shardingHash`: the top bits of the product depend on
    /// every bit of the hash, and the dictionaries inside the shards hash with their own
    /// per-table seed, so the shard choice and the in-shard slot are independent. (An
    /// index rather than the box itself: subscripting in place borrows the box, where
    /// returning it would retain and release it, a shared counter, on every call.)
    @inline(__always)
    private func index(of key: Key) -> Int {
        guard shardBits > 0 else { return 0 }
        let mixed = UInt64(UInt(bitPattern: key.shardingHash)) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: mixed >> UInt64(64 - shardBits))
    }
}

/// A key that can say which shard it belongs in.
protocol ShardedKey: Hashable, Sendable {
    /// A well-mixed hash of the key, stable for the life of the process.
    var shardingHash: Int { get }
}

extension String: ShardedKey {
    var shardingHash: Int { hashValue }
}
