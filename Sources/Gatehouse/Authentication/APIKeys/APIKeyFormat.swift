import Crypto

/// API keys as clients present them (SPEC §3): `<prefix>_<id>_<secret>`.
///
/// - `id`: 12 characters of lower-case RFC 4648 base32 (`a–z2–7`), random. Public: it
///   names the key in logs and in `gatehouse keys list`.
/// - `secret`: 32 random bytes in base62 (`0–9A–Za–z`), always 43 characters (the
///   number is left-padded with `0`). Only its SHA-256 is ever stored.
///
/// Randomness comes from `SystemRandomNumberGenerator`, which the standard library
/// documents as cryptographically secure (`getrandom(2)` on Linux, `arc4random` on Darwin).
public enum APIKeyFormat {
    public static let idLength = 12
    public static let secretLength = 43
    public static let secretByteCount = 32

    static let base32Alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
    static let base62Alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// A new key: its id, its secret and the full text the client will present.
    public static func generate(prefix: String) -> (id: String, secret: String, key: String) {
        let id = generateID()
        let secret = generateSecret()
        return (id, secret, key(prefix: prefix, id: id, secret: secret))
    }

    public static func generateID() -> String {
        var generator = SystemRandomNumberGenerator()
        // 32 symbols: each index is uniform over the alphabet, no modulo bias.
        let symbols = (0..<idLength).map { _ in base32Alphabet[Int.random(in: 0..<32, using: &generator)] }
        return String(decoding: symbols, as: UTF8.self)
    }

    public static func generateSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<secretByteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return base62(bytes, length: secretLength)
    }

    public static func key(prefix: String, id: String, secret: String) -> String {
        "\(prefix)_\(id)_\(secret)"
    }

    /// The id and secret of a presented key, or nil unless it is exactly
    /// `<prefix>_` + 12 base32 + `_` + 43 base62. Strict on purpose: anything else is not
    /// one of our keys, and refusing it early keeps odd input away from the lookup.
    public static func parse(_ presented: String, prefix: String) -> (id: String, secret: String)? {
        let bytes = Array(presented.utf8)
        let head = Array(prefix.utf8) + [UInt8(ascii: "_")]
        guard bytes.count == head.count + idLength + 1 + secretLength, bytes.starts(with: head) else { return nil }
        let idBytes = bytes[head.count..<head.count + idLength]
        let separator = head.count + idLength
        let secretBytes = bytes[(separator + 1)...]
        guard bytes[separator] == UInt8(ascii: "_"),
            idBytes.allSatisfy(isBase32),
            secretBytes.allSatisfy(isBase62)
        else { return nil }
        return (String(decoding: idBytes, as: UTF8.self), String(decoding: secretBytes, as: UTF8.self))
    }

    /// Whether `text` has the shape of a key id (the CLI checks ids before a lookup).
    public static func isValidID(_ text: String) -> Bool {
        text.utf8.count == idLength && text.utf8.allSatisfy(isBase32)
    }

    /// What the store keeps instead of the secret: SHA-256 of its UTF-8 text. A fast hash
    /// is enough (no bcrypt/argon2) because the secret is 256 random bits, not a password:
    /// there is nothing to guess from the hash.
    public static func hash(_ secret: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(secret.utf8)))
    }

    /// Byte equality in constant time: every byte pair is visited and the differences are
    /// OR-ed together, with no early exit. A comparison that stops at the first differing
    /// byte lets an attacker time their way through a secret one byte at a time; here the
    /// time depends only on the length, which is public (always 32 for SHA-256).
    public static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices {
            difference |= lhs[index] ^ rhs[index]
        }
        return difference == 0
    }

    /// Big-endian base62 of `bytes` in exactly `length` digits, left-padded with `0`.
    /// `length` must hold any value of that many bytes (43 for 32: 62^43 > 2^256 > 62^42).
    static func base62(_ bytes: [UInt8], length: Int) -> String {
        var number = bytes
        var digits = [UInt8](repeating: base62Alphabet[0], count: length)
        // Schoolbook long division by 62, once per output digit, least significant first.
        for position in stride(from: length - 1, through: 0, by: -1) {
            var remainder: UInt32 = 0
            for index in number.indices {
                let accumulator = remainder << 8 | UInt32(number[index])
                number[index] = UInt8(accumulator / 62)
                remainder = accumulator % 62
            }
            digits[position] = base62Alphabet[Int(remainder)]
        }
        return String(decoding: digits, as: UTF8.self)
    }

    private static func isBase32(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "2")...UInt8(ascii: "7")).contains(byte)
    }

    private static func isBase62(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }
}
