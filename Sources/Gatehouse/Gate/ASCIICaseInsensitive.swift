/// HTTP field names (and tokens such as `text/event-stream`) compare case-insensitively
/// in ASCII only. These helpers do it on the UTF-8 bytes, without the lower-cased copy
/// `lowercased()` allocates for anything past 15 bytes: they run on every field of every
/// request and response. The argument must already be all lower case.
extension StringProtocol {
    /// Equality ignoring ASCII case.
    func equalsASCIICaseInsensitive(_ lowercased: String) -> Bool {
        let bytes = utf8
        let other = lowercased.utf8
        guard bytes.count == other.count else { return false }
        // Native strings and literals are contiguous: compare the two byte buffers directly
        // (the generic `elementsEqual` walks both views through index arithmetic).
        if let equal = bytes.withContiguousStorageIfAvailable({ mine in
            other.withContiguousStorageIfAvailable { theirs in Self.equalsIgnoringASCIICase(mine, theirs) }
        }), let equal {
            return equal
        }
        return bytes.elementsEqual(other) { $0.asciiLowercased == $1 }
    }

    /// Compares `bytes.count` bytes of each buffer. Sound as long as `lowercased` is at
    /// least that long, which both callers check first; the buffers are read only inside
    /// the `withContiguousStorageIfAvailable` closures that lent them.
    private static func equalsIgnoringASCIICase(
        _ bytes: UnsafeBufferPointer<UInt8>, _ lowercased: UnsafeBufferPointer<UInt8>
    )
        -> Bool
    {
        for index in bytes.indices where bytes[index].asciiLowercased != lowercased[index] { return false }
        return true
    }

    /// Whether the text starts with `lowercasedPrefix`, ignoring ASCII case.
    func hasASCIICaseInsensitivePrefix(_ lowercasedPrefix: String) -> Bool {
        let bytes = utf8
        let prefix = lowercasedPrefix.utf8
        guard bytes.count >= prefix.count else { return false }
        if let starts = bytes.withContiguousStorageIfAvailable({ mine in
            prefix.withContiguousStorageIfAvailable { theirs in
                Self.equalsIgnoringASCIICase(UnsafeBufferPointer(rebasing: mine[0..<theirs.count]), theirs)
            }
        }), let starts {
            return starts
        }
        return bytes.prefix(prefix.count).elementsEqual(prefix) { $0.asciiLowercased == $1 }
    }

    /// Whether `lowercasedNeedle` occurs anywhere in the text, ignoring ASCII case.
    func containsASCIICaseInsensitive(_ lowercasedNeedle: String) -> Bool {
        let needle = Array(lowercasedNeedle.utf8)
        guard let first = needle.first else { return true }
        let haystack = utf8
        var start = haystack.startIndex
        while let candidate = haystack[start...].firstIndex(where: { $0.asciiLowercased == first }) {
            if haystack[candidate...].starts(with: needle, by: { $0.asciiLowercased == $1 }) { return true }
            start = haystack.index(after: candidate)
        }
        return false
    }
}

extension StringProtocol {
    /// Trims spaces and horizontal tabs, the only whitespace HTTP allows around values.
    /// Works on the UTF-8 bytes: both are ASCII, so each cut is a scalar boundary, and a
    /// byte comparison costs a fraction of the `Character` one.
    func trimmingASCIIWhitespace() -> Substring {
        let text = Substring(self)
        let bytes = text.utf8
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start].isHTTPBlank { start = bytes.index(after: start) }
        while start < end {
            let last = bytes.index(before: end)
            guard bytes[last].isHTTPBlank else { break }
            end = last
        }
        return text[start..<end]
    }
}

extension UInt8 {
    var asciiLowercased: UInt8 { self >= 65 && self <= 90 ? self | 0x20 : self }
    /// A space or a horizontal tab: the only whitespace HTTP allows around values and
    /// after an authentication scheme.
    var isHTTPBlank: Bool { self == UInt8(ascii: " ") || self == UInt8(ascii: "\t") }
}
