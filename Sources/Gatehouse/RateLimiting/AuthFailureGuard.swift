/// The brute-force lock-out (SPEC §5): per client IP, `max` failed credentials within
/// `per` block the IP for `block`.
///
/// - Counting: a window opens at an IP's first failure and lasts `per`; the failure that
///   brings its count to `max` is still answered 401 by the caller, and from then on the
///   IP is blocked for `block`. A block starts the count afresh: when it ends, the IP has
///   a full `max` again. (A fixed window per IP costs 24 bytes; an IP can squeeze at most
///   2 × (max − 1) failures around a window's end, never more than `max − 1` per window.)
/// - `isBlocked(ip:now:)` is one hash lookup under one shard's lock, cheap enough to run
///   before any token work; it does not create entries, so normal traffic costs no memory.
/// - Only the caller decides what a failure is (SPEC: a presented credential that fails
///   verification, not a missing one) and what the IP key is: the client IP as SPEC §6
///   derives it, in one canonical text form.
/// - Memory is bounded twice: expired windows and blocks are swept like the limiter's
///   full buckets, and the table holds at most `capacity` IPs; when an attacker rotating
///   addresses fills it, the entry closest to expiring, unblocked ones first, makes room.
public final class AuthFailureGuard: Sendable {
    public static let defaultCapacity = 100_000

    public let settings: AuthFailureSettings
    private let perSeconds: Double
    private let blockSeconds: Double
    private let entries: ShardedTable<String, FailureWindow>
    private let shardCapacity: Int

    public convenience init(
        settings: AuthFailureSettings, capacity: Int = defaultCapacity,
        shardCount: Int = RateLimiter.defaultShardCount
    ) {
        let table = ShardedTable<String, FailureWindow>(shardCount: shardCount)
        let perShard = (max(1, capacity) + table.shardCount - 1) / table.shardCount
        self.init(settings: settings, entries: table, shardCapacity: perShard)
    }

    private init(settings: AuthFailureSettings, entries: ShardedTable<String, FailureWindow>, shardCapacity: Int) {
        self.settings = settings
        self.perSeconds = Self.seconds(settings.per)
        self.blockSeconds = Self.seconds(settings.block)
        self.entries = entries
        self.shardCapacity = shardCapacity
    }

    /// A guard for a reloaded config that keeps this one's counts and blocks: a reload
    /// must not unblock an attacker. Windows and blocks already running keep their end.
    public func reconfigured(settings: AuthFailureSettings) -> AuthFailureGuard {
        AuthFailureGuard(settings: settings, entries: entries, shardCapacity: shardCapacity)
    }

    /// Whether `ip` is blocked at `now` (monotonic seconds), and if so the seconds left in
    /// the block, rounded up, at least 1 (`Retry-After`); 0 when not blocked.
    public func isBlocked(ip: String, now: Double) -> (blocked: Bool, retryAfter: Int) {
        entries.read(ip) { entry in
            guard let entry, now < entry.blockedUntil else { return (false, 0) }
            return (true, max(1, TokenBucket.roundedUp(entry.blockedUntil - now)))
        }
    }

    /// Counts one failed credential from `ip`; true when this failure reached `max` and
    /// started a block (it is still answered 401). Failures while blocked are ignored:
    /// they should not happen (blocked requests are refused before verification), and
    /// must not stretch the block.
    @discardableResult
    public func recordFailure(ip: String, now: Double) -> Bool {
        let per = perSeconds
        let block = blockSeconds
        let limit = settings.max
        let capacity = shardCapacity
        return entries.withShard(of: ip, isLive: { $0.isLive(at: now) }) { shard in
            if shard.entries.count >= capacity && shard.entries[ip] == nil {
                Self.makeRoom(in: &shard, now: now)
            }
            return shard.entries[ip, default: FailureWindow()].record(now: now, per: per, block: block, max: limit)
        }
    }

    /// Drops every expired window and block; returns how many. Shards also do this as
    /// they are used; this is for a periodic timer.
    @discardableResult
    public func sweep(now: Double) -> Int {
        entries.sweep { $0.isLive(at: now) }
    }

    /// IPs with a running window or block (expired ones not yet swept included).
    public var count: Int { entries.count }

    /// Frees a slot in a full shard: expired entries first, else the one that would
    /// expire soonest, preferring an IP that is not blocked (evicting a block would lift it).
    private static func makeRoom(in shard: inout ShardedTable<String, FailureWindow>.Shard, now: Double) {
        if ShardedTable<String, FailureWindow>.sweep(&shard, isLive: { $0.isLive(at: now) }) > 0 { return }
        let victim = shard.entries.min { a, b in
            let aBlocked = now < a.value.blockedUntil
            let bBlocked = now < b.value.blockedUntil
            if aBlocked != bBlocked { return !aBlocked }
            return a.value.expiry < b.value.expiry
        }
        if let victim { shard.entries.removeValue(forKey: victim.key) }
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// One IP's failure count (24 bytes).
struct FailureWindow: Sendable {
    /// End of the current counting window; -∞ before the first failure.
    var windowEnd = -Double.infinity
    /// End of the block; -∞ when never blocked.
    var blockedUntil = -Double.infinity
    var failures: Int32 = 0

    /// Adds a failure at `now`; true when it reached `max` and started a block.
    mutating func record(now: Double, per: Double, block: Double, max: Int) -> Bool {
        if now < blockedUntil { return false }
        if now >= windowEnd {
            windowEnd = now + per
            failures = 0
        }
        failures += 1
        guard Int(failures) >= max else { return false }
        blockedUntil = now + block
        // Counting starts over once the block ends.
        failures = 0
        windowEnd = -Double.infinity
        return true
    }

    /// When this entry stops mattering.
    var expiry: Double { Swift.max(windowEnd, blockedUntil) }

    func isLive(at now: Double) -> Bool { now < expiry }
}
