import Synchronization

/// `X-Request-Id` (SPEC §6): the client's own when it is 1–128 chars of
/// `[A-Za-z0-9._:-]`, otherwise a fresh 32-char lower-case hex id.
public enum RequestID {
    public static func accepting(_ candidate: String?) -> String {
        if let candidate, isAcceptable(candidate) { return candidate }
        return generate()
    }

    public static func isAcceptable(_ value: String) -> Bool {
        let bytes = value.utf8
        guard !bytes.isEmpty, bytes.count <= 128 else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
                UInt8(ascii: "-"):
                true
            default: false
            }
        }
    }

    /// A fresh id: a process-wide counter run through a keyed bijective mixer. Unique
    /// within the process by construction (the mixer is a permutation of `UInt64`), not
    /// guessable across restarts (the keys are random), and free of the two `getrandom(2)`
    /// calls per request that `SystemRandomNumberGenerator` costs. Request ids are for
    /// correlation, not secrets: nothing relies on them being unpredictable.
    public static func generate() -> String {
        let sequence = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        let low = mix(sequence &+ keys.low)
        let high = mix(low ^ keys.high)
        return String(unsafeUninitializedCapacity: 32) { bytes in
            writeHex(high, into: bytes, at: 0)
            writeHex(low, into: bytes, at: 16)
            return 32
        }
    }

    private static let keys: (high: UInt64, low: UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()
    private static let counter = Atomic<UInt64>(0)

    /// SplitMix64's finaliser: a bijection that spreads every input bit over the output.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    private static func writeHex(_ value: UInt64, into bytes: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        let digits: StaticString = "0123456789abcdef"
        for index in 0..<16 {
            let nibble = Int((value >> UInt64(60 - 4 * index)) & 0xf)
            bytes[offset + index] = digits.utf8Start[nibble]
        }
    }
}
