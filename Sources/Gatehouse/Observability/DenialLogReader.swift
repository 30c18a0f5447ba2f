#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// Reads the denial log (SPEC §8) for `gatehouse denials`: the rotated files oldest first
// (`denials.jsonl.N` … `.1`), then the current one, streamed in 1 MiB chunks so a 1 GB
// log never sits in memory. A corrupt or truncated line is reported and skipped, never
// fatal: a crash mid-write or a disk-full leaves such lines, and the rest of the log must
// still be readable.
//
// Speed: operators run this against logs of a gigabyte or more, so each line goes
// through three gates, cheapest first:
// 1. a byte-level pre-filter: a line cannot match `--reason R` (or `--identity`,
//    `--route`, `--ip`) unless the bytes `"R"` occur in it, checked with a Horspool search
//    that mostly jumps a needle's length at a time;
// 2. with `--since`, the `ts` field (written first) is compared before anything else,
//    and whole rotated files whose last line is older are skipped unread;
// 3. a hand-rolled scanner over the flat object records each field's byte range, and
//    strings are only decoded for lines that are printed. `JSONSerialization` would
//    build an NSDictionary of bridged strings and numbers for every line (several
//    microseconds each, 10–20× slower overall), for fields that are mostly thrown away.

// MARK: - Public model

/// One line of the denial log, typed. Fields absent from the line, `null`, or of an
/// unexpected JSON type are nil.
public struct DenialEntry: Sendable, Equatable {
    /// `ts` as written (RFC 3339 UTC with milliseconds).
    public var timestamp: String
    /// `ts` in milliseconds since the Unix epoch.
    public var time: Int64
    public var requestID: String?
    public var clientIP: String?
    public var method: String?
    public var path: String?
    public var route: String?
    public var status: Int?
    public var reason: String?
    public var authMethod: String?
    public var subject: String?
    public var email: String?
    public var org: String?
    public var role: String?
    public var keyID: String?
    public var issuer: String?
    public var jti: String?
    public var tokenSHA256: String?
    public var requiredScopes: [String]?
    public var grantedScopes: [String]?
    public var policy: String?
    public var detail: String?
    /// MCP routes (SPEC §9) add these.
    public var mcpMethod: String?
    public var mcpTool: String?
    /// The JSON-RPC id as raw JSON text (`7` or `"abc"`): ids may be numbers or strings.
    public var jsonrpcID: String?
    /// Fields this reader does not know, name → raw JSON text of the value; kept so that
    /// a newer gateway's additions are not silently lost.
    public var extra: [String: String]
    /// The line exactly as read (without the newline), for `--json`.
    public var line: String

    /// Who was refused, as `--identity` and the summary see it: the subject, else the
    /// API key id, else nil (anonymous).
    public var identity: String? { subject ?? keyID }
}

/// A line that could not be read; reported, then skipped.
public struct DenialLogProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// 1-based line number in `file`.
    public var line: Int
    public var message: String

    public var description: String { "\(file):\(line): \(message); line skipped" }
}

/// A bad filter value (`--since`, `--ip`); the message names the problem.
public struct DenialFilterError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// A log file that exists but cannot be read (permissions, I/O error).
public struct DenialLogError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var errno: Int32

    public var description: String { "cannot read \(path): \(String(cString: strerror(errno)))" }
}

/// `--ip`: one address (compared as addresses, so `::ffff:10.0.0.1` equals `10.0.0.1`) or
/// a CIDR block.
public enum DenialIPFilter: Sendable, Equatable {
    case address(IPAddress)
    case block(CIDR)

    public static func parse(_ text: String) throws(DenialFilterError) -> DenialIPFilter {
        if text.contains("/") {
            guard let block = CIDR.parse(text) else {
                throw DenialFilterError("\"\(text)\" is not a CIDR block (e.g. 10.0.0.0/8)")
            }
            return .block(block)
        }
        guard let address = IPAddress.parse(text) else {
            throw DenialFilterError("\"\(text)\" is not an IP address or a CIDR block (e.g. 203.0.113.7, 10.0.0.0/8)")
        }
        return .address(address.unmapped)
    }

    func matches(_ address: IPAddress) -> Bool {
        switch self {
        case .address(let wanted): address.unmapped == wanted
        case .block(let block): block.contains(address)
        }
    }
}

/// Which entries to read. Every condition set must hold.
public struct DenialFilter: Sendable, Equatable {
    /// Entries at or after this time, in milliseconds since the Unix epoch.
    public var since: Int64?
    /// Exact `reason`.
    public var reason: String?
    /// Exact `subject` or `key_id`; `"anonymous"` also matches entries with neither.
    public var identity: String?
    /// Exact `route`; `"none"` also matches entries that matched no route (`null`).
    public var route: String?
    public var ip: DenialIPFilter?

    public init(
        since: Int64? = nil, reason: String? = nil, identity: String? = nil, route: String? = nil,
        ip: DenialIPFilter? = nil
    ) {
        self.since = since
        self.reason = reason
        self.identity = identity
        self.route = route
        self.ip = ip
    }

    /// `--since`: a duration back from `now` (`"1h"`, `"30m"`, `"7d"`, as config durations)
    /// or an RFC 3339 time (`2026-11-21T12:00:00Z`, offsets and fractions allowed; a bare
    /// date means its midnight UTC). Returns milliseconds since the Unix epoch.
    public static func parseSince(_ text: String, now: Int64) throws(DenialFilterError) -> Int64 {
        let bytes = Array(text.utf8)
        // "2026-…": four digits and a dash can only be meant as a date.
        let looksLikeDate = bytes.count >= 5 && bytes[0..<4].allSatisfy { $0 &- 48 < 10 } && bytes[4] == 0x2D
        if looksLikeDate {
            let parsed = bytes.withUnsafeBufferPointer { buffer -> Int64? in
                guard let base = buffer.baseAddress else { return nil }
                return RFC3339.milliseconds(base, 0, buffer.count, allowDateOnly: true)
            }
            guard let parsed else {
                throw DenialFilterError(
                    "\"\(text)\" is not an RFC 3339 time; write e.g. 2026-11-21T12:00:00Z or 2026-11-21")
            }
            return parsed
        }
        do {
            let (seconds, attoseconds) = try ConfigDuration.parse(text).components
            return now - (seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        } catch {
            throw DenialFilterError(
                "\(error.message) (a duration like 30m, 1h or 7d, or an RFC 3339 time like 2026-11-21T12:00:00Z)")
        }
    }

    /// The wall clock in milliseconds since the Unix epoch, the unit of `since`.
    public static func currentTimeMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// A value and how many entries had it.
public struct DenialCount: Sendable, Equatable {
    public var value: String
    public var count: Int

    public init(value: String, count: Int) {
        self.value = value
        self.count = count
    }
}

/// One grouping of a summary: the most frequent values, and what the rest add up to.
public struct DenialGrouping: Sendable, Equatable {
    /// Most frequent first; ties in name order, so output is stable.
    public var top: [DenialCount]
    /// How many different values there were in all.
    public var distinct: Int
    /// Entries whose value is not in `top`.
    public var others: Int
}

/// Counts of the matching entries (`gatehouse denials --summary`).
public struct DenialSummary: Sendable, Equatable {
    public var total: Int
    /// Earliest and latest `ts`, in milliseconds since the Unix epoch (nil when empty).
    public var earliest: Int64?
    public var latest: Int64?
    /// By `reason`.
    public var reasons: DenialGrouping
    /// By subject, else key id, else `"anonymous"`.
    public var identities: DenialGrouping
    /// By `route`; `"none"` when no route matched.
    public var routes: DenialGrouping

    /// RFC 3339 UTC text of a time in milliseconds, as the log writes `ts`.
    public static func format(_ milliseconds: Int64) -> String {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        return Timestamp.format(seconds: Int(seconds), milliseconds: Int(milliseconds - seconds * 1000))
    }
}

// MARK: - Reader

/// The denial log at `path` (the `[logs] denials` path) and its rotated files.
public struct DenialLogReader: Sendable {
    public let path: String

    /// 1 MiB reads: large enough that syscalls cost nothing next to scanning.
    static let chunkBytes = 1 << 20
    /// Lines longer than this are reported and skipped instead of growing the buffer
    /// further (denial lines are well under 64 KiB; the path is bounded by the header limit).
    static let maxLineBytes = 16 << 20
    /// Entries are written in order by one thread, but `ts` is taken on the request path,
    /// so neighbouring lines may be a little out of order; a rotated file is skipped for
    /// `since` only when its last line is older than `since` minus this margin.
    static let reorderMarginMilliseconds: Int64 = 60_000

    public init(path: String) {
        self.path = path
    }

    /// The existing log files, oldest first: `path.N` … `path.1`, then `path`. Rotated
    /// files are found by listing the folder, so a changed `denials_keep` (or a gap left by
    /// a manual cleanup) still reads every file in order.
    public func files() -> [String] {
        var found = rotatedFiles().map { "\(path).\($0)" }
        if access(path, F_OK) == 0 { found.append(path) }
        return found
    }

    /// Calls `body` with each matching entry, oldest first.
    public func forEach(
        matching filter: DenialFilter, onProblem: (DenialLogProblem) -> Void,
        _ body: (DenialEntry) throws -> Void
    ) throws {
        var matcher = DenialMatcher(filter)
        let sources = try openSources()
        for source in sources {
            if Self.isEntirelyBefore(filter.since, source, current: source.path == path) { continue }
            try Self.read(source, flushPartial: true, matcher: &matcher, onProblem: onProblem) { matcher, line, time in
                try body(matcher.scanner.entry(line, time: time))
            }
        }
    }

    /// Calls `body` with the text of each matching line, oldest first: `--json` needs no
    /// more, and skipping the typed entry saves two dozen strings per line.
    public func forEachLine(
        matching filter: DenialFilter, onProblem: (DenialLogProblem) -> Void, _ body: (String) throws -> Void
    ) throws {
        var matcher = DenialMatcher(filter)
        let sources = try openSources()
        for source in sources {
            if Self.isEntirelyBefore(filter.since, source, current: source.path == path) { continue }
            try Self.read(source, flushPartial: true, matcher: &matcher, onProblem: onProblem) { _, line, _ in
                try body(String(decoding: line, as: UTF8.self))
            }
        }
    }

    /// The last `limit` matching entries, oldest first. Only the last `limit` matching lines
    /// are kept (a ring of raw lines), so memory stays bounded whatever the log size.
    public func last(
        _ limit: Int, matching filter: DenialFilter, onProblem: (DenialLogProblem) -> Void
    ) throws -> [DenialEntry] {
        var matcher = DenialMatcher(filter)
        var ring = LineRing(capacity: limit)
        let sources = try openSources()
        for source in sources {
            if Self.isEntirelyBefore(filter.since, source, current: source.path == path) { continue }
            try Self.read(source, flushPartial: true, matcher: &matcher, onProblem: onProblem) { _, line, _ in
                ring.append(line)
            }
        }
        return ring.entries(using: &matcher.scanner)
    }

    /// Counts of the matching entries by reason, identity and route, the `top` most
    /// frequent of each. Nothing but the three group keys is read from a matching line.
    public func summarize(
        matching filter: DenialFilter, top: Int, onProblem: (DenialLogProblem) -> Void
    ) throws -> DenialSummary {
        var matcher = DenialMatcher(filter)
        var counts = SummaryCounts()
        let sources = try openSources()
        for source in sources {
            if Self.isEntirelyBefore(filter.since, source, current: source.path == path) { continue }
            try Self.read(source, flushPartial: true, matcher: &matcher, onProblem: onProblem) { matcher, line, time in
                counts.add(matcher.scanner, line, time: time)
            }
        }
        return counts.summary(top: top)
    }

    /// Starts following the log: returns the last `backlog` matching entries already
    /// written, and a follower that yields the ones appended from then on. The current
    /// file stays open between the two, so nothing written in between is lost.
    public func follow(
        matching filter: DenialFilter, backlog: Int, onProblem: (DenialLogProblem) -> Void
    ) throws -> (backlog: [DenialEntry], follower: DenialLogFollower) {
        var matcher = DenialMatcher(filter)
        var ring = LineRing(capacity: backlog)
        let sources = try openSources()
        // The current file is the last source only if `path` itself was opened.
        let current = sources.last.flatMap { $0.path == path ? $0 : nil }
        for source in sources {
            let isCurrent = source === current
            if backlog == 0 {
                // Nothing to show: only move the current file's position to its end.
                if isCurrent { try source.drain(flushPartial: false) { _ in } }
                continue
            }
            if Self.isEntirelyBefore(filter.since, source, current: isCurrent) { continue }
            // A partial last line of the current file may still be being written: keep it
            // buffered for the follower instead of reporting it as truncated.
            try Self.read(source, flushPartial: !isCurrent, matcher: &matcher, onProblem: onProblem) { _, line, _ in
                ring.append(line)
            }
        }
        let entries = ring.entries(using: &matcher.scanner)
        return (entries, DenialLogFollower(path: path, matcher: matcher, source: current))
    }

    // MARK: Internals

    /// Rotation indexes present next to `path`, highest (oldest) first.
    private func rotatedFiles() -> [Int] {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let prefix = (slash.map { String(path[path.index(after: $0)...]) } ?? path) + "."
        guard let directory = opendir(folder) else { return [] }
        defer { closedir(directory) }
        var indexes: [Int] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix(prefix) else { continue }
            let suffix = name.dropFirst(prefix.count)
            // Only what the writer produces: a positive number without leading zeros.
            guard !suffix.isEmpty, suffix.first != "0", suffix.allSatisfy({ $0.isASCII && $0.isNumber }),
                let index = Int(suffix)
            else { continue }
            indexes.append(index)
        }
        return indexes.sorted(by: >)
    }

    /// Opens every file before reading any, newest first, then drops a file seen twice:
    /// if the gateway rotates meanwhile, each open descriptor still names one file, and a
    /// file opened as `path` and again as `path.1` is read once, in its newer place.
    private func openSources() throws -> [LineSource] {
        var opened: [LineSource] = []
        for name in files().reversed() {
            guard let source = try LineSource.open(name) else { continue }
            if opened.contains(where: { $0.device == source.device && $0.inode == source.inode }) { continue }
            opened.append(source)
        }
        return opened.reversed()
    }

    /// Whether a rotated file ends before `since`, judged from its last line alone.
    private static func isEntirelyBefore(_ since: Int64?, _ source: LineSource, current: Bool) -> Bool {
        guard let since, !current, let last = source.lastLineTime() else { return false }
        return last < since - reorderMarginMilliseconds
    }

    static func read(
        _ source: LineSource, flushPartial: Bool, matcher: inout DenialMatcher,
        onProblem: (DenialLogProblem) -> Void,
        _ body: (inout DenialMatcher, UnsafeBufferPointer<UInt8>, Int64) throws -> Void
    ) throws {
        try source.drain(flushPartial: flushPartial) { event in
            switch event {
            case .line(let line, let number):
                switch matcher.match(line) {
                case .skip: break
                case .match(let time, let trimmed): try body(&matcher, trimmed, time)
                case .problem(let message):
                    onProblem(DenialLogProblem(file: source.path, line: number, message: message))
                }
            case .overlong(let number):
                onProblem(
                    DenialLogProblem(
                        file: source.path, line: number, message: "line longer than \(maxLineBytes >> 20) MiB"))
            }
        }
    }
}

/// Yields entries appended to the log after `DenialLogReader.follow`. Call `poll` every
/// so often (the CLI: every 250 ms). Handles the gateway's rotation (the file renamed to
/// `.1` and a new one created: the old file is read to its end first, then the new one
/// from its start), logrotate's `copytruncate` (the file shrinks: read again from the
/// start), and a log that does not exist yet.
public final class DenialLogFollower {
    private let path: String
    private var matcher: DenialMatcher
    private var source: LineSource?

    init(path: String, matcher: DenialMatcher, source: LineSource?) {
        self.path = path
        self.matcher = matcher
        self.source = source
    }

    /// Reads whatever was appended since the last call; `body` gets each matching entry.
    public func poll(onProblem: (DenialLogProblem) -> Void, _ body: (DenialEntry) throws -> Void) throws {
        if let source { try read(source, flushPartial: false, onProblem: onProblem, body) }
        var status = stat()
        guard stat(path, &status) == 0 else { return }  // rotated away, the new file not created yet
        if let source, source.device == UInt64(status.st_dev), source.inode == UInt64(status.st_ino) {
            if Int64(status.st_size) < source.bytesRead {
                source.rewind()
                try read(source, flushPartial: false, onProblem: onProblem, body)
            }
            return
        }
        // Another file is at `path` now. The writer finishes a line before rotating, so
        // whatever is left in the old one is complete: read it to its end first.
        if let source { try read(source, flushPartial: true, onProblem: onProblem, body) }
        source = try LineSource.open(path)
        if let source { try read(source, flushPartial: false, onProblem: onProblem, body) }
    }

    private func read(
        _ source: LineSource, flushPartial: Bool, onProblem: (DenialLogProblem) -> Void,
        _ body: (DenialEntry) throws -> Void
    ) throws {
        try DenialLogReader.read(source, flushPartial: flushPartial, matcher: &matcher, onProblem: onProblem) {
            matcher, line, time in
            try body(matcher.scanner.entry(line, time: time))
        }
    }
}

// MARK: - Reading lines

/// One open log file, read in chunks and split at newlines.
final class LineSource {
    enum Event {
        case line(UnsafeBufferPointer<UInt8>, number: Int)
        case overlong(number: Int)
    }

    let path: String
    let device: UInt64
    let inode: UInt64
    private let fd: Int32
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    /// Unconsumed bytes are `buffer[start..<end]`.
    private var start = 0
    private var end = 0
    private var discarding = false
    private(set) var lineNumber = 0
    /// Bytes read from the file so far (to notice truncation).
    private(set) var bytesRead: Int64 = 0

    /// Nil when the file does not exist (rotated away between listing and opening).
    static func open(_ path: String) throws(DenialLogError) -> LineSource? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw DenialLogError(path: path, errno: errno)
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let code = errno
            close(fd)
            throw DenialLogError(path: path, errno: code)
        }
        return LineSource(path: path, fd: fd, device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    private init(path: String, fd: Int32, device: UInt64, inode: UInt64) {
        self.path = path
        self.fd = fd
        self.device = device
        self.inode = inode
        capacity = DenialLogReader.chunkBytes
        buffer = .allocate(capacity: capacity)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    /// Calls `body` for each complete line from the current position to the end of the
    /// file; with `flushPartial`, also for a last line without a newline (else it stays
    /// buffered until the rest arrives).
    func drain(flushPartial: Bool, _ body: (Event) throws -> Void) throws {
        while true {
            // Locals in the per-line loop: every access to a class's stored property costs a
            // dynamic exclusivity check, which showed up at several percent of a full scan.
            do {
                let bytes = buffer
                let limit = end
                var position = start
                var number = lineNumber
                var dropping = discarding
                defer {
                    start = position
                    lineNumber = number
                    discarding = dropping
                }
                while position < limit {
                    guard let newline = memchr(bytes + position, 0x0A, limit - position) else { break }
                    let lineEnd = bytes.distance(to: newline.assumingMemoryBound(to: UInt8.self))
                    number += 1
                    if dropping {
                        dropping = false
                        try body(.overlong(number: number))
                    } else {
                        try body(
                            .line(
                                UnsafeBufferPointer(start: bytes + position, count: lineEnd - position), number: number)
                        )
                    }
                    position = lineEnd + 1
                }
            }
            if start > 0 {
                if end > start { memmove(buffer, buffer + start, end - start) }
                end -= start
                start = 0
            }
            if end == capacity {
                if capacity < DenialLogReader.maxLineBytes {
                    grow()
                } else {
                    discarding = true  // drop the rest of this line; reported at its newline
                    end = 0
                }
            }
            let count = Glibc.read(fd, buffer + end, capacity - end)
            if count < 0 {
                if errno == EINTR { continue }
                throw DenialLogError(path: path, errno: errno)
            }
            if count == 0 { break }
            end += count
            bytesRead += Int64(count)
        }
        guard flushPartial, end > start || discarding else { return }
        lineNumber += 1
        if discarding {
            discarding = false
            try body(.overlong(number: lineNumber))
        } else {
            try body(.line(UnsafeBufferPointer(start: buffer + start, count: end - start), number: lineNumber))
        }
        start = 0
        end = 0
    }

    /// Back to the start of the file, after it was truncated in place.
    func rewind() {
        lseek(fd, 0, SEEK_SET)
        start = 0
        end = 0
        discarding = false
        lineNumber = 0
        bytesRead = 0
    }

    /// `ts` of the file's last line, read from its tail without disturbing `drain`.
    func lastLineTime() -> Int64? {
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_size > 0 else { return nil }
        let size = Int64(status.st_size)
        let tailBytes = Int(min(size, 64 * 1024))
        var tail = [UInt8](repeating: 0, count: tailBytes)
        let count = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, tailBytes, off_t(size) - off_t(tailBytes)) }
        guard count == tailBytes else { return nil }
        var lineEnd = tailBytes
        while lineEnd > 0 && (tail[lineEnd - 1] == 0x0A || tail[lineEnd - 1] == 0x0D) { lineEnd -= 1 }
        var lineStart = lineEnd
        while lineStart > 0 && tail[lineStart - 1] != 0x0A { lineStart -= 1 }
        // A line cut by the window's start cannot be trusted to be whole.
        guard lineStart > 0 || tailBytes == Int(size) else { return nil }
        return tail.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return nil }
            var scanner = DenialLineScanner()
            let line = UnsafeBufferPointer(start: base + lineStart, count: lineEnd - lineStart)
            guard scanner.scan(line) == nil else { return nil }
            return scanner.time(line)
        }
    }

    private func grow() {
        let larger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
        larger.update(from: buffer, count: end)
        buffer.deallocate()
        buffer = larger
        capacity *= 2
    }
}

/// The last N matching lines, as raw bytes in reused slots (no allocation per line once
/// the ring is full); decoded into entries only at the end.
struct LineRing {
    private var slots: [[UInt8]] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    mutating func append(_ line: UnsafeBufferPointer<UInt8>) {
        guard capacity > 0 else { return }
        if slots.count < capacity {
            slots.append(Array(line))
            return
        }
        slots[next].removeAll(keepingCapacity: true)
        slots[next].append(contentsOf: line)
        next = (next + 1) % capacity
    }

    func entries(using scanner: inout DenialLineScanner) -> [DenialEntry] {
        let ordered = slots.count < capacity ? slots : Array(slots[next...] + slots[..<next])
        return ordered.compactMap { bytes in
            bytes.withUnsafeBufferPointer { line in
                guard scanner.scan(line) == nil, let time = scanner.time(line) else { return nil }
                return scanner.entry(line, time: time)
            }
        }
    }
}

// MARK: - Matching

/// A compiled `DenialFilter` plus the scanner it reuses for every line.
struct DenialMatcher {
    enum Outcome {
        case skip
        /// `line` is the trimmed line the scanner's ranges refer to.
        case match(time: Int64, line: UnsafeBufferPointer<UInt8>)
        case problem(String)
    }

    let filter: DenialFilter
    var scanner = DenialLineScanner()
    /// Byte strings every matching line must contain (the pre-filter).
    private let needles: [BytePattern]
    private let reason: [UInt8]?
    private let identity: [UInt8]?
    private let route: [UInt8]?
    private let ipText: [UInt8]?

    init(_ filter: DenialFilter) {
        self.filter = filter
        reason = filter.reason.map { Array($0.utf8) }
        identity = filter.identity.map { Array($0.utf8) }
        route = filter.route.map { Array($0.utf8) }
        if case .address(let address) = filter.ip { ipText = Array(address.description.utf8) } else { ipText = nil }
        // `"value"` with its quotes must occur in a matching line, unless the value may also
        // match a null (route "none", identity "anonymous") or would need escaping (the
        // writer escapes only quotes, backslashes and control characters).
        var needles: [BytePattern] = []
        let values: [(String?, String?)] = [
            (filter.reason, nil), (filter.identity, "anonymous"), (filter.route, "none"),
            (ipText.map { String(decoding: $0, as: UTF8.self) }, nil),
        ]
        for (value, nullAlias) in values {
            guard let value, value != nullAlias, !value.isEmpty,
                value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C })
            else { continue }
            needles.append(BytePattern([0x22] + Array(value.utf8) + [0x22]))
        }
        self.needles = needles
    }

    mutating func match(_ raw: UnsafeBufferPointer<UInt8>) -> Outcome {
        guard let base = raw.baseAddress else { return .skip }
        // Trim surrounding whitespace (a CRLF-edited file, a trailing blank line).
        var first = 0
        var last = raw.count
        while first < last && DenialLineScanner.isSpace(base[first]) { first += 1 }
        while last > first && DenialLineScanner.isSpace(base[last - 1]) { last -= 1 }
        if first == last { return .skip }
        let line = UnsafeBufferPointer(start: base + first, count: last - first)
        // Checked on every line, even those the pre-filter drops, because it is O(1) and
        // catches the common damage: a line cut short by a crash or a full disk.
        guard base[first] == 0x7B, base[last - 1] == 0x7D else {
            return .problem("truncated or corrupt line (not a complete JSON object)")
        }
        for needle in needles where !needle.occurs(in: base + first, count: line.count) { return .skip }
        if let since = filter.since, let time = DenialLineScanner.leadingTime(line), time < since { return .skip }
        if let failure = scanner.scan(line) { return .problem(failure) }
        guard let time = scanner.time(line) else { return .problem("missing or invalid \"ts\"") }
        if let since = filter.since, time < since { return .skip }
        if let reason, !scanner.equals(.reason, reason, in: line) { return .skip }
        if let route, !scanner.equals(.route, route, in: line) {
            guard filter.route == "none", scanner.isNull(.route) else { return .skip }
        }
        if let identity, !scanner.equals(.subject, identity, in: line), !scanner.equals(.keyID, identity, in: line) {
            guard filter.identity == "anonymous", scanner.isNull(.subject), scanner.isNull(.keyID) else { return .skip }
        }
        if let ip = filter.ip {
            let exact = ipText.map { scanner.equals(.clientIP, $0, in: line) } ?? false
            if !exact {
                guard let text = scanner.string(.clientIP, in: line), let address = IPAddress.parse(text),
                    ip.matches(address)
                else { return .skip }
            }
        }
        return .match(time: time, line: line)
    }
}

/// A substring search (Boyer–Moore–Horspool). Glibc's `memmem` is not visible to Swift
/// (it needs `_GNU_SOURCE`), and `memchr` to the needle's first byte stops at every quote
/// of a JSON line; Horspool looks at the byte under the needle's end and jumps up to the
/// needle's length on a mismatch, so a 20-byte needle touches a few dozen bytes of a line.
struct BytePattern {
    private let bytes: [UInt8]
    private let shifts: [Int]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var shifts = [Int](repeating: bytes.count, count: 256)
        for (index, byte) in bytes.enumerated().dropLast() { shifts[Int(byte)] = bytes.count - 1 - index }
        self.shifts = shifts
    }

    func occurs(in text: UnsafePointer<UInt8>, count: Int) -> Bool {
        let length = bytes.count
        guard length > 0 else { return true }
        guard count >= length else { return false }
        return bytes.withUnsafeBufferPointer { pattern in
            shifts.withUnsafeBufferPointer { shifts in
                guard let start = pattern.baseAddress else { return true }
                let last = pattern[length - 1]
                var index = 0
                while index <= count - length {
                    let byte = text[index + length - 1]
                    if byte == last && memcmp(text + index, start, length - 1) == 0 { return true }
                    index += shifts[Int(byte)]
                }
                return false
            }
        }
    }
}

// MARK: - Summary counting

/// Summary counters fed straight from scanned byte ranges: a line that matches costs
/// three hash-table increments and no `String`.
struct SummaryCounts {
    private var total = 0
    private var earliest: Int64?
    private var latest: Int64?
    private var reasons = ByteCounter()
    private var identities = ByteCounter()
    private var routes = ByteCounter()
    private static let unknown = Array("unknown".utf8)
    private static let anonymous = Array("anonymous".utf8)
    private static let none = Array("none".utf8)

    mutating func add(_ scanner: DenialLineScanner, _ line: UnsafeBufferPointer<UInt8>, time: Int64) {
        guard let base = line.baseAddress else { return }
        total += 1
        earliest = min(earliest ?? time, time)
        latest = max(latest ?? time, time)
        Self.add(scanner, .reason, nil, base, default: Self.unknown, to: &reasons)
        Self.add(scanner, .subject, .keyID, base, default: Self.anonymous, to: &identities)
        Self.add(scanner, .route, nil, base, default: Self.none, to: &routes)
    }

    /// Counts the first of `field`, `alternative` that is a string, else `fallback`.
    private static func add(
        _ scanner: DenialLineScanner, _ field: DenialField, _ alternative: DenialField?, _ base: UnsafePointer<UInt8>,
        default fallback: [UInt8], to counter: inout ByteCounter
    ) {
        var slot = scanner.slot(field)
        if let alternative, slot.kind != .string && slot.kind != .escapedString { slot = scanner.slot(alternative) }
        if slot.kind == .string || slot.kind == .escapedString {
            counter.add(base + slot.start, slot.end - slot.start, escaped: slot.kind == .escapedString)
            return
        }
        fallback.withUnsafeBufferPointer { buffer in
            if let pointer = buffer.baseAddress { counter.add(pointer, buffer.count, escaped: false) }
        }
    }

    func summary(top: Int) -> DenialSummary {
        DenialSummary(
            total: total, earliest: earliest, latest: latest, reasons: reasons.grouping(top: top, total: total),
            identities: identities.grouping(top: top, total: total), routes: routes.grouping(top: top, total: total))
    }
}

/// Counts byte strings in an open-addressing table whose keys live in one arena. A
/// `[String: Int]` would create and hash a `String` per line, several times the cost.
struct ByteCounter {
    private struct Key {
        var offset: Int
        var length: Int
        var hash: UInt64
        var count: Int
        var escaped: Bool
    }

    private var arena: [UInt8] = []
    private var keys: [Key] = []
    /// Index into `keys`, or -1; the size is a power of two.
    private var table = [Int32](repeating: -1, count: 64)

    mutating func add(_ bytes: UnsafePointer<UInt8>, _ length: Int, escaped: Bool) {
        let hash = Self.hash(bytes, length)
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let index = Int(table[slot])
            if index < 0 { break }
            let key = keys[index]
            if key.hash == hash && key.length == length {
                let same = arena.withUnsafeBufferPointer { arena in
                    for offset in 0..<length where arena[key.offset + offset] != bytes[offset] { return false }
                    return true
                }
                if same {
                    keys[index].count += 1
                    return
                }
            }
            slot = (slot + 1) & mask
        }
        table[slot] = Int32(keys.count)
        keys.append(Key(offset: arena.count, length: length, hash: hash, count: 1, escaped: escaped))
        arena.append(contentsOf: UnsafeBufferPointer(start: bytes, count: length))
        if keys.count * 2 > table.count { rehash() }
    }

    /// Eight bytes per multiply (a byte-at-a-time FNV-1a was a fifth of a summary's time);
    /// the final shifts fold the high bits down, since the table indexes with the low ones.
    private static func hash(_ bytes: UnsafePointer<UInt8>, _ length: Int) -> UInt64 {
        let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
        var hash = UInt64(length) &* multiplier
        var index = 0
        while index + 8 <= length {
            let word = UnsafeRawPointer(bytes + index).loadUnaligned(as: UInt64.self)
            hash = (hash ^ word) &* multiplier
            hash ^= hash >> 29
            index += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while index < length {
            tail |= UInt64(bytes[index]) << shift
            shift += 8
            index += 1
        }
        hash = (hash ^ tail) &* multiplier
        return hash ^ (hash >> 32)
    }

    private mutating func rehash() {
        table = [Int32](repeating: -1, count: table.count * 2)
        let mask = table.count - 1
        for (index, key) in keys.enumerated() {
            var slot = Int(truncatingIfNeeded: key.hash) & mask
            while table[slot] >= 0 { slot = (slot + 1) & mask }
            table[slot] = Int32(index)
        }
    }

    func grouping(top: Int, total: Int) -> DenialGrouping {
        // Decoded values can coincide (an escaped and a plain spelling): merge them.
        var merged: [String: Int] = [:]
        arena.withUnsafeBufferPointer { arena in
            guard let base = arena.baseAddress else {
                for key in keys { merged["", default: 0] += key.count }
                return
            }
            for key in keys {
                let value =
                    key.escaped
                    ? JSONStringDecoder.decode(base, key.offset, key.offset + key.length)
                    : String(decoding: UnsafeBufferPointer(start: base + key.offset, count: key.length), as: UTF8.self)
                merged[value, default: 0] += key.count
            }
        }
        let sorted = merged.map { DenialCount(value: $0.key, count: $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.value < $1.value }
        let shown = Array(sorted.prefix(max(0, top)))
        return DenialGrouping(top: shown, distinct: sorted.count, others: total - shown.reduce(0) { $0 + $1.count })
    }
}

// MARK: - Scanning one line

/// The fields this reader knows, in the order the gateway writes them (the scanner
/// guesses the next field from that order, so a key usually costs one comparison).
enum DenialField: Int, CaseIterable {
    case ts, requestID, clientIP, method, path, route, status, reason, authMethod, subject, email, org, role, keyID
    case issuer, jti, tokenSHA256, requiredScopes, grantedScopes, policy, detail, mcpMethod, mcpTool, jsonrpcID

    var name: String {
        switch self {
        case .ts: "ts"
        case .requestID: "request_id"
        case .clientIP: "client_ip"
        case .method: "method"
        case .path: "path"
        case .route: "route"
        case .status: "status"
        case .reason: "reason"
        case .authMethod: "auth_method"
        case .subject: "subject"
        case .email: "email"
        case .org: "org"
        case .role: "role"
        case .keyID: "key_id"
        case .issuer: "issuer"
        case .jti: "jti"
        case .tokenSHA256: "token_sha256"
        case .requiredScopes: "required_scopes"
        case .grantedScopes: "granted_scopes"
        case .policy: "policy"
        case .detail: "detail"
        case .mcpMethod: "mcp_method"
        case .mcpTool: "mcp_tool"
        case .jsonrpcID: "jsonrpc_id"
        }
    }
}

/// Where one value sits in the line. For strings the range excludes the quotes.
struct FieldSlot {
    enum Kind: UInt8 {
        case absent, null, string, escapedString, number, literal, composite
    }

    var start: Int
    var end: Int
    var kind: Kind

    static let absent = FieldSlot(start: 0, end: 0, kind: .absent)
}

/// A scanner for one flat JSON object per line, recording byte ranges. It validates the
/// structure (strings, separators, nesting of unknown array/object values), not every
/// detail of number syntax: enough to reject damaged lines, cheap enough for a gigabyte.
struct DenialLineScanner {
    private static let fieldCount = DenialField.allCases.count
    /// All field names back to back, and where each starts (plus the total length at the
    /// end): one flat table to compare keys against, with no per-name array to chase.
    private static let nameBytes: [UInt8] = DenialField.allCases.flatMap { Array($0.name.utf8) }
    private static let nameOffsets: [Int] = DenialField.allCases.reduce(into: [0]) { offsets, field in
        offsets.append((offsets.last ?? 0) + field.name.utf8.count)
    }

    private var slots = [FieldSlot](repeating: .absent, count: fieldCount)
    /// Unknown fields: key range (quotes excluded), whether the key has escapes, value.
    private var extras: [(key: Range<Int>, escaped: Bool, value: FieldSlot)] = []

    func slot(_ field: DenialField) -> FieldSlot { slots[field.rawValue] }

    func isNull(_ field: DenialField) -> Bool {
        let kind = slots[field.rawValue].kind
        return kind == .null || kind == .absent
    }

    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }

    /// Scans `line`; nil when it is a well-formed flat object, else why not.
    mutating func scan(_ line: UnsafeBufferPointer<UInt8>) -> String? {
        guard let base = line.baseAddress else { return "empty line" }
        // Swapped out (not copied) so the static scanner can hold both without overlapping
        // access to `self`.
        var fieldSlots: [FieldSlot] = []
        var unknown: [(key: Range<Int>, escaped: Bool, value: FieldSlot)] = []
        swap(&fieldSlots, &slots)
        swap(&unknown, &extras)
        defer {
            swap(&fieldSlots, &slots)
            swap(&unknown, &extras)
        }
        unknown.removeAll(keepingCapacity: true)
        return Self.nameBytes.withUnsafeBufferPointer { names in
            Self.nameOffsets.withUnsafeBufferPointer { offsets in
                fieldSlots.withUnsafeMutableBufferPointer { slots in
                    for index in 0..<slots.count { slots[index] = .absent }
                    guard let names = names.baseAddress else { return "no field table" }
                    return Self.scanObject(base, line.count, names, offsets, slots, &unknown)
                }
            }
        }
    }

    private static func scanObject(
        _ base: UnsafePointer<UInt8>, _ end: Int, _ names: UnsafePointer<UInt8>, _ offsets: UnsafeBufferPointer<Int>,
        _ slots: UnsafeMutableBufferPointer<FieldSlot>,
        _ extras: inout [(key: Range<Int>, escaped: Bool, value: FieldSlot)]
    ) -> String? {
        var index = 0
        while index < end && Self.isSpace(base[index]) { index += 1 }
        guard index < end, base[index] == 0x7B else { return "not a JSON object" }
        index += 1
        while index < end && Self.isSpace(base[index]) { index += 1 }
        if index < end && base[index] == 0x7D { return Self.trailing(base, index + 1, end) }
        var expected = 0
        while true {
            guard index < end, base[index] == 0x22 else { return "expected a field name at column \(index + 1)" }
            var keyEscaped = false
            let keyEnd = Self.stringEnd(base, index + 1, end, escaped: &keyEscaped)
            guard keyEnd >= 0 else { return "unterminated or invalid string at column \(index + 1)" }
            let keyStart = index + 1
            index = keyEnd + 1
            while index < end && Self.isSpace(base[index]) { index += 1 }
            guard index < end, base[index] == 0x3A else { return "expected ':' at column \(index + 1)" }
            index += 1
            while index < end && Self.isSpace(base[index]) { index += 1 }
            guard index < end else { return "missing value at the end of the line" }
            let valueStart = index
            let value: FieldSlot
            switch base[index] {
            case 0x22:
                var escaped = false
                let stringEnd = Self.stringEnd(base, index + 1, end, escaped: &escaped)
                guard stringEnd >= 0 else { return "unterminated or invalid string at column \(index + 1)" }
                value = FieldSlot(start: index + 1, end: stringEnd, kind: escaped ? .escapedString : .string)
                index = stringEnd + 1
            case 0x6E:  // n
                guard Self.hasLiteral(base, index, end, "null") else { return "invalid value at column \(index + 1)" }
                value = FieldSlot(start: index, end: index + 4, kind: .null)
                index += 4
            case 0x74, 0x66:  // t, f
                let word: StaticString = base[index] == 0x74 ? "true" : "false"
                guard Self.hasLiteral(base, index, end, word) else { return "invalid value at column \(index + 1)" }
                index += word.utf8CodeUnitCount
                value = FieldSlot(start: valueStart, end: index, kind: .literal)
            case 0x2D, 0x30...0x39:
                index += 1
                while index < end, Self.isNumberByte(base[index]) { index += 1 }
                value = FieldSlot(start: valueStart, end: index, kind: .number)
            case 0x5B, 0x7B:
                index = Self.compositeEnd(base, index, end)
                guard index >= 0 else { return "unterminated array or object at column \(valueStart + 1)" }
                value = FieldSlot(start: valueStart, end: index, kind: .composite)
            default:
                return "invalid value at column \(index + 1)"
            }
            let field =
                keyEscaped ? -1 : Self.field(base + keyStart, keyEnd - keyStart, names, offsets, guess: expected)
            if field >= 0 {
                slots[field] = value
                expected = field + 1
            } else {
                extras.append((keyStart..<keyEnd, keyEscaped, value))
            }
            while index < end && Self.isSpace(base[index]) { index += 1 }
            guard index < end else { return "truncated line (no closing '}')" }
            if base[index] == 0x2C {
                index += 1
                while index < end && Self.isSpace(base[index]) { index += 1 }
                continue
            }
            guard base[index] == 0x7D else { return "expected ',' or '}' at column \(index + 1)" }
            return Self.trailing(base, index + 1, end)
        }
    }

    private static func trailing(_ base: UnsafePointer<UInt8>, _ from: Int, _ end: Int) -> String? {
        var index = from
        while index < end && isSpace(base[index]) { index += 1 }
        return index == end ? nil : "unexpected text after the object at column \(index + 1)"
    }

    /// Index of the closing quote of a string whose content starts at `from`, or -1.
    private static func stringEnd(_ base: UnsafePointer<UInt8>, _ from: Int, _ end: Int, escaped: inout Bool) -> Int {
        var index = from
        while true {
            // Eight bytes at a time to the next quote, backslash or control character: strings
            // are most of a line's bytes, and byte-at-a-time was most of the scan's time.
            while index + 8 <= end {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
                let mask = attentionMask(word)
                if mask == 0 {
                    index += 8
                } else {
                    index += mask.trailingZeroBitCount >> 3
                    break
                }
            }
            guard index < end else { return -1 }
            let byte = base[index]
            if byte == 0x22 { return index }
            if byte == 0x5C {
                escaped = true
                index += 2
                continue
            }
            if byte < 0x20 { return -1 }  // raw control characters are not allowed in JSON strings
            index += 1
        }
    }

    /// The high bit set in each byte of `word` (little-endian order) that is `"`, `\` or
    /// below 0x20, by the classic "has zero byte" / "has byte less than" tricks. Bits above
    /// the first true hit may be spurious, but the lowest set bit is exact, and only it is used.
    @inline(__always)
    private static func attentionMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let hasQuote = (quote &- ones) & ~quote
        let hasBackslash = (backslash &- ones) & ~backslash
        let hasControl = (word &- ones &* 0x20) & ~word
        return (hasQuote | hasBackslash | hasControl) & high
    }

    /// Index just past a nested array/object starting at `from`, or -1.
    private static func compositeEnd(_ base: UnsafePointer<UInt8>, _ from: Int, _ end: Int) -> Int {
        var depth = 0
        var index = from
        while index < end {
            let byte = base[index]
            if byte == 0x22 {
                var escaped = false
                let close = stringEnd(base, index + 1, end, escaped: &escaped)
                if close < 0 { return -1 }
                index = close + 1
                continue
            }
            if byte == 0x5B || byte == 0x7B {
                depth += 1
            } else if byte == 0x5D || byte == 0x7D {
                depth -= 1
                if depth == 0 { return index + 1 }
            }
            index += 1
        }
        return -1
    }

    private static func hasLiteral(_ base: UnsafePointer<UInt8>, _ from: Int, _ end: Int, _ word: StaticString)
        -> Bool
    {
        let count = word.utf8CodeUnitCount
        guard from + count <= end else { return false }
        return memcmp(base + from, word.utf8Start, count) == 0
    }

    private static func isNumberByte(_ byte: UInt8) -> Bool {
        (byte &- 0x30) < 10 || byte == 0x2E || byte == 0x65 || byte == 0x45 || byte == 0x2B || byte == 0x2D
    }

    /// Which known field a key names, or -1; tries `guess` (the writer's next field) first.
    private static func field(
        _ key: UnsafePointer<UInt8>, _ length: Int, _ names: UnsafePointer<UInt8>, _ offsets: UnsafeBufferPointer<Int>,
        guess: Int
    ) -> Int {
        let count = offsets.count - 1
        // Compared inline: keys are a few bytes, shorter than a call to memcmp is worth.
        func named(_ field: Int) -> Bool {
            let start = offsets[field]
            guard offsets[field + 1] - start == length else { return false }
            for offset in 0..<length where names[start + offset] != key[offset] { return false }
            return true
        }
        if guess < count && named(guess) { return guess }
        for field in 0..<count where field != guess && named(field) { return field }
        return -1
    }

    // MARK: Reading fields of the scanned line

    /// `ts` in milliseconds, when it is a valid RFC 3339 time.
    func time(_ line: UnsafeBufferPointer<UInt8>) -> Int64? {
        let slot = slots[DenialField.ts.rawValue]
        guard slot.kind == .string, let base = line.baseAddress else { return nil }
        return RFC3339.milliseconds(base, slot.start, slot.end, allowDateOnly: false)
    }

    /// `ts` read straight from the start of a line the way the gateway writes it
    /// (`{"ts":"…",`), before any scanning; nil if the line does not start that way.
    static func leadingTime(_ line: UnsafeBufferPointer<UInt8>) -> Int64? {
        let prefix: StaticString = "{\"ts\":\""
        let prefixLength = prefix.utf8CodeUnitCount
        guard let base = line.baseAddress, line.count > prefixLength + 24,
            memcmp(base, prefix.utf8Start, prefixLength) == 0
        else { return nil }
        let close = prefixLength + 24  // 2026-11-21T12:00:00.123Z
        guard base[close] == 0x22 else { return nil }
        return RFC3339.milliseconds(base, prefixLength, close, allowDateOnly: false)
    }

    /// Whether a field is a string equal to `bytes`.
    func equals(_ field: DenialField, _ bytes: [UInt8], in line: UnsafeBufferPointer<UInt8>) -> Bool {
        let slot = slots[field.rawValue]
        guard let base = line.baseAddress else { return false }
        switch slot.kind {
        case .string:
            guard slot.end - slot.start == bytes.count else { return false }
            return bytes.withUnsafeBufferPointer { wanted in
                guard let wanted = wanted.baseAddress else { return true }
                return memcmp(base + slot.start, wanted, bytes.count) == 0
            }
        case .escapedString:
            return Array(JSONStringDecoder.decode(base, slot.start, slot.end).utf8) == bytes
        default:
            return false
        }
    }

    func string(_ field: DenialField, in line: UnsafeBufferPointer<UInt8>) -> String? {
        Self.string(slots[field.rawValue], in: line)
    }

    private static func string(_ slot: FieldSlot, in line: UnsafeBufferPointer<UInt8>) -> String? {
        guard let base = line.baseAddress else { return nil }
        switch slot.kind {
        case .string:
            return String(
                decoding: UnsafeBufferPointer(start: base + slot.start, count: slot.end - slot.start), as: UTF8.self)
        case .escapedString:
            return JSONStringDecoder.decode(base, slot.start, slot.end)
        default:
            return nil
        }
    }

    /// The value's JSON text as written (strings with their quotes).
    private static func raw(_ slot: FieldSlot, in line: UnsafeBufferPointer<UInt8>) -> String? {
        guard let base = line.baseAddress, slot.kind != .absent else { return nil }
        let isString = slot.kind == .string || slot.kind == .escapedString
        let start = isString ? slot.start - 1 : slot.start
        let end = isString ? slot.end + 1 : slot.end
        return String(decoding: UnsafeBufferPointer(start: base + start, count: end - start), as: UTF8.self)
    }

    private static func integer(_ slot: FieldSlot, in line: UnsafeBufferPointer<UInt8>) -> Int? {
        guard slot.kind == .number, let base = line.baseAddress else { return nil }
        var index = slot.start
        let negative = base[index] == 0x2D
        if negative { index += 1 }
        guard index < slot.end, slot.end - index <= 18 else { return nil }
        var value = 0
        while index < slot.end {
            let digit = base[index] &- 0x30
            guard digit < 10 else { return nil }  // a fraction or exponent: not a status code
            value = value * 10 + Int(digit)
            index += 1
        }
        return negative ? -value : value
    }

    /// An array of strings (the scope lists); nil for anything else.
    private static func strings(_ slot: FieldSlot, in line: UnsafeBufferPointer<UInt8>) -> [String]? {
        guard slot.kind == .composite, let base = line.baseAddress, base[slot.start] == 0x5B else { return nil }
        var values: [String] = []
        var index = slot.start + 1
        let end = slot.end - 1  // the closing bracket
        while true {
            while index < end && isSpace(base[index]) { index += 1 }
            if index == end { return values }
            guard base[index] == 0x22 else { return nil }
            var escaped = false
            let close = stringEnd(base, index + 1, end, escaped: &escaped)
            guard close >= 0 else { return nil }
            let item = FieldSlot(start: index + 1, end: close, kind: escaped ? .escapedString : .string)
            guard let value = string(item, in: line) else { return nil }
            values.append(value)
            index = close + 1
            while index < end && isSpace(base[index]) { index += 1 }
            if index == end { return values }
            guard base[index] == 0x2C else { return nil }
            index += 1
        }
    }

    /// The typed entry for the scanned line.
    func entry(_ line: UnsafeBufferPointer<UInt8>, time: Int64) -> DenialEntry {
        func text(_ field: DenialField) -> String? { Self.string(slots[field.rawValue], in: line) }
        var extra: [String: String] = [:]
        if let base = line.baseAddress {
            for (key, escaped, value) in extras {
                let name =
                    escaped
                    ? JSONStringDecoder.decode(base, key.lowerBound, key.upperBound)
                    : String(
                        decoding: UnsafeBufferPointer(start: base + key.lowerBound, count: key.count), as: UTF8.self)
                extra[name] = Self.raw(value, in: line)
            }
        }
        return DenialEntry(
            timestamp: text(.ts) ?? "", time: time, requestID: text(.requestID), clientIP: text(.clientIP),
            method: text(.method), path: text(.path), route: text(.route),
            status: Self.integer(slots[DenialField.status.rawValue], in: line), reason: text(.reason),
            authMethod: text(.authMethod), subject: text(.subject), email: text(.email), org: text(.org),
            role: text(.role), keyID: text(.keyID), issuer: text(.issuer), jti: text(.jti),
            tokenSHA256: text(.tokenSHA256),
            requiredScopes: Self.strings(slots[DenialField.requiredScopes.rawValue], in: line),
            grantedScopes: Self.strings(slots[DenialField.grantedScopes.rawValue], in: line), policy: text(.policy),
            detail: text(.detail), mcpMethod: text(.mcpMethod), mcpTool: text(.mcpTool),
            jsonrpcID: Self.raw(slots[DenialField.jsonrpcID.rawValue], in: line).flatMap { $0 == "null" ? nil : $0 },
            extra: extra, line: String(decoding: line, as: UTF8.self))
    }
}

/// Decodes the content of a JSON string that contains escapes.
enum JSONStringDecoder {
    static func decode(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        var index = start
        while index < end {
            let byte = base[index]
            guard byte == 0x5C, index + 1 < end else {
                out.append(byte)
                index += 1
                continue
            }
            let code = base[index + 1]
            index += 2
            switch code {
            case 0x62: out.append(0x08)  // \b
            case 0x66: out.append(0x0C)  // \f
            case 0x6E: out.append(0x0A)  // \n
            case 0x72: out.append(0x0D)  // \r
            case 0x74: out.append(0x09)  // \t
            case 0x75:  // \uXXXX, with surrogate pairs
                guard var unit = hex4(base, index, end) else {
                    append(0xFFFD, to: &out)
                    continue
                }
                index += 4
                if (0xD800..<0xDC00).contains(unit), index + 6 <= end, base[index] == 0x5C, base[index + 1] == 0x75,
                    let low = hex4(base, index + 2, end), (0xDC00..<0xE000).contains(low)
                {
                    unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    index += 6
                }
                append(unit, to: &out)
            default: out.append(code)  // \" \\ \/
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex4(_ base: UnsafePointer<UInt8>, _ from: Int, _ end: Int) -> UInt32? {
        guard from + 4 <= end else { return nil }
        var value: UInt32 = 0
        for index in from..<from + 4 {
            let byte = base[index]
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x41...0x46: digit = byte - 0x41 + 10
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    private static func append(_ value: UInt32, to out: inout [UInt8]) {
        let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"  // a lone surrogate
        out.append(contentsOf: String(Character(scalar)).utf8)
    }
}

/// RFC 3339 times to milliseconds since the Unix epoch, without Foundation (one call per
/// log line with `--since` or `--summary`).
enum RFC3339 {
    static func milliseconds(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int, allowDateOnly: Bool) -> Int64? {
        if end - start == 24, let fixed = gatewayFormat(base + start) { return fixed }
        var index = start
        func number(_ digits: Int) -> Int? {
            guard index + digits <= end else { return nil }
            var value = 0
            for offset in 0..<digits {
                let digit = base[index + offset] &- 0x30
                guard digit < 10 else { return nil }
                value = value * 10 + Int(digit)
            }
            index += digits
            return value
        }
        func skip(_ byte: UInt8) -> Bool {
            guard index < end, base[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = number(4), skip(0x2D), let month = number(2), skip(0x2D), let day = number(2),
            (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        if index == end && allowDateOnly { return days * 86_400_000 }
        guard index < end, base[index] == 0x54 || base[index] == 0x74 || base[index] == 0x20 else { return nil }
        index += 1
        guard let hour = number(2), skip(0x3A), let minute = number(2), skip(0x3A), let second = number(2),
            hour < 24, minute < 60, second <= 60  // 60: a leap second
        else { return nil }
        var millisecond = 0
        if skip(0x2E) {
            var digits = 0
            while index < end, base[index] &- 0x30 < 10 {
                if digits < 3 { millisecond = millisecond * 10 + Int(base[index] - 0x30) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millisecond *= 10 }
        }
        var offsetMinutes = 0
        if skip(0x5A) || skip(0x7A) {
            offsetMinutes = 0
        } else if index < end, base[index] == 0x2B || base[index] == 0x2D {
            let sign = base[index] == 0x2D ? -1 : 1
            index += 1
            guard let hours = number(2), skip(0x3A), let minutes = number(2), hours < 24, minutes < 60 else {
                return nil
            }
            offsetMinutes = sign * (hours * 60 + minutes)
        } else {
            return nil
        }
        guard index == end else { return nil }
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        return seconds * 1000 + Int64(millisecond)
    }

    /// The gateway's own spelling, `2026-11-21T12:00:00.123Z`, at fixed offsets: the case
    /// of nearly every line, without the general parser's branching.
    private static func gatewayFormat(_ text: UnsafePointer<UInt8>) -> Int64? {
        guard text[4] == 0x2D, text[7] == 0x2D, text[10] == 0x54, text[13] == 0x3A, text[16] == 0x3A,
            text[19] == 0x2E, text[23] == 0x5A
        else { return nil }
        func digits(_ at: Int, _ count: Int) -> Int {
            var value = 0
            for offset in at..<at + count {
                let digit = text[offset] &- 0x30
                if digit > 9 { return -1 }
                value = value * 10 + Int(digit)
            }
            return value
        }
        let year = digits(0, 4)
        let month = digits(5, 2)
        let day = digits(8, 2)
        let hour = digits(11, 2)
        let minute = digits(14, 2)
        let second = digits(17, 2)
        let millisecond = digits(20, 3)
        guard year >= 0, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            (0..<24).contains(hour),
            (0..<60).contains(minute), (0...60).contains(second), millisecond >= 0
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return (days * 86_400 + Int64(hour * 3600 + minute * 60 + second)) * 1000 + Int64(millisecond)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let shifted = month <= 2 ? year - 1 : year
        let era = (shifted >= 0 ? shifted : shifted - 399) / 400
        let yearOfEra = shifted - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return Int64(era * 146_097 + dayOfEra - 719_468)
    }
}
