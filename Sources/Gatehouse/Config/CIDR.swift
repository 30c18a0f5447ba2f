#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 address. Both families are held as 128 bits, IPv4 in its IPv4-mapped
/// form (`::ffff:a.b.c.d`), so that a dual-stack socket's view of an IPv4 peer and the
/// peer's own address compare the same way against a `CIDR`.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The 128-bit value; IPv4 addresses are stored IPv4-mapped.
    let high: UInt64
    let low: UInt64
    /// Written as a dotted quad. Kept apart from the bits so that `1.2.3.4` and
    /// `::ffff:1.2.3.4` print as they were given; `unmapped` converts between them.
    public let isIPv4: Bool

    init(high: UInt64, low: UInt64, isIPv4: Bool) {
        self.high = high
        self.low = low
        self.isIPv4 = isIPv4
    }

    /// Parses a dotted quad (`192.0.2.1`) or an IPv6 address (`2001:db8::1`,
    /// `::ffff:192.0.2.1`). No brackets, ports, zone ids or prefix lengths.
    public static func parse(_ text: String) -> IPAddress? {
        // inet_pton stops at a NUL, so "1.2.3.4\0junk" would otherwise parse.
        guard !text.isEmpty, text.utf8.count <= 64, !text.utf8.contains(0) else { return nil }
        if text.utf8.contains(UInt8(ascii: ":")) {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            guard bytes.count == 16 else { return nil }
            return IPAddress(high: bigEndian(bytes[0..<8]), low: bigEndian(bytes[8..<16]), isIPv4: false)
        }
        var raw = in_addr()
        guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &raw) { Array($0) }
        guard bytes.count == 4 else { return nil }
        return IPAddress(high: 0, low: 0xffff_0000_0000 | bigEndian(bytes[0..<4]), isIPv4: true)
    }

    private static func bigEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reduce(0) { ($0 << 8) | UInt64($1) }
    }

    /// True for `::ffff:a.b.c.d` written as IPv6 (how a dual-stack socket reports IPv4 peers).
    public var isIPv4Mapped: Bool { !isIPv4 && high == 0 && low >> 32 == 0xffff }

    /// The plain IPv4 address for an IPv4-mapped one, else the address itself. Use it for
    /// anything keyed or logged by client address, so one client is one key.
    public var unmapped: IPAddress { isIPv4Mapped ? IPAddress(high: high, low: low, isIPv4: true) : self }

    /// "a.b.c.d" written straight into the string's storage: it is formatted for every
    /// request (the peer's address), and at most 15 bytes fit Swift's inline small strings.
    private static func dottedQuad(_ v4: UInt32) -> String {
        String(unsafeUninitializedCapacity: 15) { bytes in
            var at = 0
            for shift in stride(from: 24, through: 0, by: -8) {
                let octet = Int((v4 >> UInt32(shift)) & 0xff)
                if shift != 24 {
                    bytes[at] = UInt8(ascii: ".")
                    at += 1
                }
                if octet >= 100 {
                    bytes[at] = UInt8(ascii: "0") + UInt8(octet / 100)
                    at += 1
                }
                if octet >= 10 {
                    bytes[at] = UInt8(ascii: "0") + UInt8(octet / 10 % 10)
                    at += 1
                }
                bytes[at] = UInt8(ascii: "0") + UInt8(octet % 10)
                at += 1
            }
            return at
        }
    }

    /// Dotted quad, or RFC 5952 text: lowercase, the longest run of zero groups compressed.
    public var description: String {
        if isIPv4 || isIPv4Mapped {
            let quad = Self.dottedQuad(UInt32(truncatingIfNeeded: low))
            return isIPv4 ? quad : "::ffff:" + quad
        }
        let groups = (0..<8).map { index -> UInt16 in
            let word = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> (UInt64(3 - index % 4) * 16))
        }
        // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on a tie.
        var best = (start: -1, length: 0)
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > best.length, end - index >= 2 { best = (index, end - index) }
            index = end
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.start >= 0 else { return hex.joined(separator: ":") }
        let head = hex[0..<best.start].joined(separator: ":")
        let tail = hex[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}

/// An address block such as `10.0.0.0/8` or `fd00::/8`, e.g. one of `server.trusted_proxies`.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    /// The first address of the block (host bits cleared).
    public let network: IPAddress
    /// Prefix length in the network's own family: 0–32 for IPv4, 0–128 for IPv6.
    public let prefixLength: Int

    /// Parses `address/prefix`; a bare address is a single-host block (/32 or /128). Host
    /// bits set in the address are cleared (`10.1.2.3/8` is `10.0.0.0/8`); compare
    /// `network` with the written address to warn about that.
    public static func parse(_ text: String) -> CIDR? {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress.parse(String(parts[0])) else { return nil }
        let maximum = address.isIPv4 ? 32 : 128
        var length = maximum
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(digits), value <= maximum
            else { return nil }
            length = value
        }
        let (maskHigh, maskLow) = mask(bits: address.isIPv4 ? 96 + length : length)
        let network = IPAddress(
            high: address.high & maskHigh, low: address.low & maskLow, isIPv4: address.isIPv4)
        return CIDR(network: network, prefixLength: length)
    }

    /// Whether `address` lies in this block. IPv4 blocks match IPv4-mapped IPv6 peers
    /// (`::ffff:10.1.2.3` is in `10.0.0.0/8`), and IPv6 blocks that cover the mapped range
    /// (`::/0`, `::ffff:0:0/96`) match IPv4 addresses.
    public func contains(_ address: IPAddress) -> Bool {
        let (maskHigh, maskLow) = CIDR.mask(bits: network.isIPv4 ? 96 + prefixLength : prefixLength)
        return address.high & maskHigh == network.high && address.low & maskLow == network.low
    }

    public var description: String { "\(network)/\(prefixLength)" }

    /// The 128-bit netmask with the top `bits` bits set, as (high, low) words.
    private static func mask(bits: Int) -> (UInt64, UInt64) {
        func word(_ n: Int) -> UInt64 {
            n <= 0 ? 0 : n >= 64 ? .max : ~(UInt64.max >> UInt64(n))
        }
        return (word(bits), word(bits - 64))
    }
}
