/// A request target after normalisation (SPEC §6): the path that is matched, authorised
/// and forwarded, and the query string exactly as the client sent it.
public struct NormalizedTarget: Sendable, Equatable {
    public var path: String
    /// Raw text after the first `?`; nil when the target has no `?` at all, "" for a bare `?`.
    public var query: String?

    public init(path: String, query: String?) {
        self.path = path
        self.query = query
    }
}

/// Why a request target was refused. `invalidPath` → 400 `invalid_path`,
/// `malformedRequest` → 400 `malformed_request` (SPEC §7).
public enum TargetRejection: Error, Sendable, Equatable {
    case invalidPath
    case malformedRequest
}

/// The security boundary between what a client wrote and what routing, authorisation and
/// the upstream see (SPEC §6). Every path that passes here means the same thing to
/// Gatehouse and to any upstream, whether that upstream decodes once, twice, or strips
/// `;` path parameters: anything that could be read two ways is refused instead.
public enum PathNormalizer {
    public static func normalize(target: String) -> Result<NormalizedTarget, TargetRejection> {
        if let result = target.utf8.withContiguousStorageIfAvailable({ normalize(bytes: $0, target: target) }) {
            return result
        }
        // Only bridged/foreign strings get here; targets parsed off the wire are native UTF-8.
        let copy = Array(target.utf8)
        return copy.withUnsafeBufferPointer { normalize(bytes: $0, target: target) }
    }

    private static func normalize(
        bytes: UnsafeBufferPointer<UInt8>,
        target: String
    ) -> Result<NormalizedTarget, TargetRejection> {
        // Absolute-form, authority-form, `*` and empty targets all fail here: Gatehouse is
        // not a forward proxy, and a target naming a host could disagree with `Host`.
        guard bytes.first == Ascii.slash else { return .failure(.malformedRequest) }

        let pathEnd = bytes.firstIndex(of: Ascii.question) ?? bytes.count
        let pathBytes = UnsafeBufferPointer(rebasing: bytes[0..<pathEnd])

        let path: String
        switch scanFastPath(pathBytes) {
        case .unchanged:
            // The common case: hand back the caller's own string when there is no query.
            path = pathEnd == bytes.count ? target : String(decoding: pathBytes, as: UTF8.self)
        case .needsRewrite:
            switch rewrite(pathBytes) {
            case .success(let rewritten): path = rewritten
            case .failure(let rejection): return .failure(rejection)
            }
        case .refused:
            return .failure(.invalidPath)
        }

        guard pathEnd < bytes.count else { return .success(NormalizedTarget(path: path, query: nil)) }
        let queryBytes = UnsafeBufferPointer(rebasing: bytes[(pathEnd + 1)...])
        // The query is forwarded verbatim, so it must be something curl and the upstream will
        // read exactly as we do: no raw controls, spaces, non-ASCII, or a `#` that curl
        // would take for a fragment and silently cut off.
        for byte in queryBytes where !Ascii.isAllowedInQuery(byte) {
            return .failure(.malformedRequest)
        }
        return .success(NormalizedTarget(path: path, query: String(decoding: queryBytes, as: UTF8.self)))
    }

    private enum FastPathVerdict {
        case unchanged, needsRewrite, refused
    }

    /// Decides whether the path is already in normal form. Only `%`, `//` and `/.` can make
    /// the normal form differ from the input, so anything without them is returned as is.
    private static func scanFastPath(_ path: UnsafeBufferPointer<UInt8>) -> FastPathVerdict {
        var verdict = FastPathVerdict.unchanged
        var previous: UInt8 = 0
        for byte in path {
            if Ascii.isForbiddenRawInPath(byte) { return .refused }
            if byte == Ascii.percent || (previous == Ascii.slash && (byte == Ascii.slash || byte == Ascii.dot)) {
                verdict = .needsRewrite
            }
            previous = byte
        }
        return verdict
    }

    /// The slow path: decodes, merges slashes and resolves dot segments into a fresh buffer.
    /// Segments are written straight into `out`; a `..` simply truncates `out` back to
    /// where the previous segment started.
    private static func rewrite(_ path: UnsafeBufferPointer<UInt8>) -> Result<String, TargetRejection> {
        let count = path.count
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var segmentStarts: [Int] = []
        var endsAsDirectory = false
        var index = 1  // past the leading "/"

        while true {
            let segmentStart = out.count
            out.append(Ascii.slash)
            // Only a segment holding an escape or `;` can hide a dot segment from the checks below.
            var mayHideDots = false

            while index < count, path[index] != Ascii.slash {
                let byte = path[index]
                if byte == Ascii.percent {
                    guard index + 2 < count,
                        let high = Ascii.hexValue(path[index + 1]),
                        let low = Ascii.hexValue(path[index + 2])
                    else { return .failure(.invalidPath) }
                    let decoded = high << 4 | low
                    if Ascii.isControl(decoded) || decoded == Ascii.slash || decoded == Ascii.backslash {
                        return .failure(.invalidPath)
                    }
                    if Ascii.isUnreserved(decoded) {
                        out.append(decoded)
                    } else {
                        // One spelling per byte, so routes, logs and upstream caches agree.
                        out.append(Ascii.percent)
                        out.append(Ascii.upperHexDigit(high))
                        out.append(Ascii.upperHexDigit(low))
                        mayHideDots = true
                    }
                    index += 3
                } else {
                    if Ascii.isForbiddenRawInPath(byte) { return .failure(.invalidPath) }
                    if byte == Ascii.semicolon { mayHideDots = true }
                    out.append(byte)
                    index += 1
                }
            }

            let segmentLength = out.count - segmentStart - 1
            let isDot = segmentLength == 1 && out[segmentStart + 1] == Ascii.dot
            let isDotDot =
                segmentLength == 2 && out[segmentStart + 1] == Ascii.dot && out[segmentStart + 2] == Ascii.dot
            if segmentLength == 0 || isDot {
                out.removeSubrange(segmentStart...)
                endsAsDirectory = true
            } else if isDotDot {
                out.removeSubrange(segmentStart...)
                // Climbing above "/" is refused rather than clamped: a client that tries it
                // is probing, and a clamped path would be logged as something it never sent.
                guard let parentStart = segmentStarts.popLast() else { return .failure(.invalidPath) }
                out.removeSubrange(parentStart...)
                endsAsDirectory = true
            } else {
                if mayHideDots {
                    let isSafe = out.withUnsafeBufferPointer {
                        isSafeWhenFullyDecoded(UnsafeBufferPointer(rebasing: $0[(segmentStart + 1)...]))
                    }
                    if !isSafe { return .failure(.invalidPath) }
                }
                segmentStarts.append(segmentStart)
                endsAsDirectory = false
            }

            if index >= count { break }
            index += 1  // past the "/" that ended this segment
        }

        if out.isEmpty || endsAsDirectory { out.append(Ascii.slash) }
        return .success(String(decoding: out, as: UTF8.self))
    }

    /// Upstreams, frameworks and filesystems decode again, or drop `;` parameters; none of
    /// that may turn a segment we let through into a dot segment, a separator or a control
    /// byte. So decode until nothing changes and check what is left.
    private static func isSafeWhenFullyDecoded(_ segment: UnsafeBufferPointer<UInt8>) -> Bool {
        var current = Array(segment)
        // Each round that changes anything shortens the bytes, so this terminates.
        while true {
            var next: [UInt8] = []
            next.reserveCapacity(current.count)
            var changed = false
            var index = 0
            while index < current.count {
                if current[index] == Ascii.percent, index + 2 < current.count,
                    let high = Ascii.hexValue(current[index + 1]),
                    let low = Ascii.hexValue(current[index + 2])
                {
                    next.append(high << 4 | low)
                    index += 3
                    changed = true
                } else {
                    next.append(current[index])
                    index += 1
                }
            }
            if !changed { break }
            current = next
        }

        for (offset, byte) in current.enumerated() {
            if Ascii.isControl(byte) || byte == Ascii.slash || byte == Ascii.backslash { return false }
            // Overlong UTF-8 (`%c0%ae` for "."): never valid, but lenient decoders have
            // historically read these as the ASCII byte they spell out.
            if byte == 0xC0 || byte == 0xC1 { return false }
            if offset + 1 < current.count {
                let following = current[offset + 1]
                if byte == 0xE0 && following >= 0x80 && following < 0xA0 { return false }
                if byte == 0xF0 && following >= 0x80 && following < 0x90 { return false }
            }
        }

        let name = current.firstIndex(of: Ascii.semicolon).map { current[..<$0] } ?? current[...]
        return !name.elementsEqual([Ascii.dot]) && !name.elementsEqual([Ascii.dot, Ascii.dot])
    }
}

extension PathNormalizer {
    fileprivate enum Ascii {
        static let slash = UInt8(ascii: "/")
        static let backslash = UInt8(ascii: "\\")
        static let dot = UInt8(ascii: ".")
        static let percent = UInt8(ascii: "%")
        static let question = UInt8(ascii: "?")
        static let semicolon = UInt8(ascii: ";")
        static let hash = UInt8(ascii: "#")
        static let space = UInt8(ascii: " ")

        @inline(__always)
        static func isControl(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }

        /// Raw bytes a path may not carry: controls, space, non-ASCII (clients must
        /// percent-encode), `\` (a separator on some upstreams) and `#` (a fragment that
        /// should never be sent).
        @inline(__always)
        static func isForbiddenRawInPath(_ byte: UInt8) -> Bool {
            byte <= space || byte >= 0x7F || byte == backslash || byte == hash
        }

        @inline(__always)
        static func isAllowedInQuery(_ byte: UInt8) -> Bool {
            byte > space && byte < 0x7F && byte != hash
        }

        /// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
        @inline(__always)
        static func isUnreserved(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                return true
            default:
                return false
            }
        }

        @inline(__always)
        static func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            default: return nil
            }
        }

        @inline(__always)
        static func upperHexDigit(_ value: UInt8) -> UInt8 {
            value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
        }
    }
}
