import Synchronization

/// The byte stream used for every large body in the integration tests: xorshift64 from a
/// fixed seed, each 64-bit word emitted little-endian. Client uploads and upstream
/// downloads both generate it on the fly, so tests can compare SHA-256 digests instead of
/// keeping tens of megabytes around. The stream does not depend on how it is chunked.
struct DeterministicPattern: Sendable {
    static let defaultSeed: UInt64 = 0x9E37_79B9_7F4A_7C15

    private var state: UInt64
    /// Unused bytes of the last generated word (low byte first), so consecutive `fill`
    /// calls of any size produce the same stream as one big call.
    private var carry: UInt64 = 0
    private var carryCount = 0

    init(seed: UInt64 = DeterministicPattern.defaultSeed) {
        // xorshift has a fixed point at zero.
        state = seed == 0 ? DeterministicPattern.defaultSeed : seed
    }

    private mutating func nextWord() -> UInt64 {
        state ^= state &<< 13
        state ^= state &>> 7
        state ^= state &<< 17
        return state
    }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        let n = buffer.count
        var i = 0
        while i < n {
            if carryCount == 0 {
                if n - i >= 8 {
                    // Fast path: whole words straight into the buffer (unaligned stores are
                    // allowed by storeBytes).
                    buffer.storeBytes(of: nextWord().littleEndian, toByteOffset: i, as: UInt64.self)
                    i += 8
                    continue
                }
                carry = nextWord()
                carryCount = 8
            }
            buffer[i] = UInt8(truncatingIfNeeded: carry)
            carry &>>= 8
            carryCount -= 1
            i += 1
        }
    }

    mutating func next(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    private static let digestCache = Mutex<[Int: String]>([:])

    /// SHA-256 of the first `bytes` bytes of the default stream. Cached because several
    /// tests check the same large sizes and hashing is slow in unoptimised builds.
    static func sha256Hex(bytes: Int) -> String {
        if let cached = digestCache.withLock({ $0[bytes] }) { return cached }
        var pattern = DeterministicPattern()
        var hasher = SHA256()
        var remaining = bytes
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while remaining > 0 {
            let n = min(remaining, chunk.count)
            chunk.withUnsafeMutableBytes { pattern.fill(UnsafeMutableRawBufferPointer(rebasing: $0[0..<n])) }
            chunk.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            remaining -= n
        }
        let hex = hasher.finalizeHex()
        digestCache.withLock { $0[bytes] = hex }
        return hex
    }
}
