/// One token bucket (SPEC §5): holds up to `burst` tokens, refilled continuously at
/// `requests / per`; a request takes one.
///
/// 24 bytes: the policy is not stored (the caller passes it, and it is part of the
/// bucket's key), only the level, when it was measured and when the bucket will be full
/// again. The last one lets a sweep drop full buckets without knowing their policy: a
/// full bucket is exactly what a new bucket is, so dropping it changes no limit.
struct TokenBucket: Sendable {
    /// Tokens at `updated`. Whole numbers stay exact in a Double; refills add fractions.
    var tokens: Double
    /// Monotonic seconds of the last refill.
    var updated: Double
    /// Monotonic seconds at which the bucket is full again: from then on it can be evicted.
    var fullAt: Double

    /// Refill arithmetic is in floating point (`elapsed * rate`), so a bucket that is
    /// mathematically at 1 token may hold 0.99999999999; this much slack keeps whole
    /// tokens whole without granting anything measurable.
    static let epsilon = 1e-9

    /// What one `take` found, before it is turned into header values.
    struct Outcome: Sendable, Equatable {
        var allowed: Bool
        /// Whole tokens left after this request (`r`).
        var remaining: Int
        /// Seconds until the bucket is full, rounded up (`t`).
        var reset: Int
        /// Seconds until one token is available, rounded up, at least 1; refusals only.
        var retryAfter: Int?
    }

    /// A bucket as it is before its first request: full.
    static func full(_ policy: RateLimitPolicy, now: Double) -> TokenBucket {
        TokenBucket(tokens: Double(policy.burst), updated: now, fullAt: now)
    }

    /// Refills up to `now`, then takes one token if there is one.
    mutating func take(_ policy: RateLimitPolicy, now: Double) -> Outcome {
        let capacity = Double(policy.burst)
        let rate = policy.refillPerSecond
        // Threads read the clock before taking the shard lock, so a request may arrive
        // with a slightly older `now` than the last one: time never runs backwards here.
        let elapsed = max(0, now - updated)
        var level = min(capacity, tokens + elapsed * rate)
        let current = max(now, updated)
        let allowed = level >= 1 - Self.epsilon
        var retryAfter: Int?
        if allowed {
            level = max(0, level - 1)
        } else {
            retryAfter = max(1, Self.roundedUp((1 - level) / rate))
        }
        tokens = level
        updated = current
        let missing = capacity - level
        fullAt = missing <= Self.epsilon ? current : current + missing / rate
        let remaining = Int(min(capacity, (level + Self.epsilon).rounded(.down)))
        let reset = missing <= Self.epsilon ? 0 : Self.roundedUp(missing / rate)
        return Outcome(allowed: allowed, remaining: remaining, reset: reset, retryAfter: retryAfter)
    }

    /// Whether the bucket still differs from a new (full) one at `now`.
    func isLive(at now: Double) -> Bool { now < fullAt }

    /// Seconds rounded up, ignoring the last nanosecond of floating-point noise so that
    /// exactly 5 s never reads as 6. Clamped so absurd inputs cannot trap on conversion.
    static func roundedUp(_ seconds: Double) -> Int {
        Int(min(Double(Int32.max), max(0, (seconds - epsilon).rounded(.up))))
    }
}
