/// HTTP field names (and tokens such as `text/event-stream`) compare case-insensitively
/// in ASCII only. These helpers do it on the UTF-8 bytes, without the lower-cased copy
/// `lowercased()` allocates for anything past 15 bytes: they run on every field of every
/// request and response. The argument must already be all lower case.
extension StringProtocol {
    /// Equality ignoring ASCII case.
    func equalsASCIICaseInsensitive(_ lowercased: String) -> Bool {
        utf8.count == lowercased.utf8.count && utf8.elementsEqual(lowercased.utf8) { $0.asciiLowercased == $1 }
    }

    /// Whether the text starts with `lowercasedPrefix`, ignoring ASCII case.
    func hasASCIICaseInsensitivePrefix(_ lowercasedPrefix: String) -> Bool {
        utf8.count >= lowercasedPrefix.utf8.count
            && utf8.prefix(lowercasedPrefix.utf8.count).elementsEqual(lowercasedPrefix.utf8) {
                $0.asciiLowercased == $1
            }
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

extension UInt8 {
    var asciiLowercased: UInt8 { self >= 65 && self <= 90 ? self | 0x20 : self }
}
