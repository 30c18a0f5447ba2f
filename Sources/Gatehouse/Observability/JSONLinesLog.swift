/// Something written as one JSON line, stamped with the time it is logged.
public protocol JSONLogEntry: Sendable {
    func jsonLine(timestamp: String) -> String
}

/// A log of JSON lines (access log, denial log): the entry is encoded on the caller's
/// thread, the bytes go to a `LineWriter` that writes them off the request path. A nil
/// writer means the log is off.
public final class JSONLinesLog<Entry: JSONLogEntry>: Sendable {
    private let writer: LineWriter?

    init(writer: LineWriter?) {
        self.writer = writer
    }

    public var isEnabled: Bool { writer != nil }

    public func record(_ entry: Entry) {
        writer?.write(entry.jsonLine(timestamp: Timestamp.now()))
    }

    /// Reopens the file (after logrotate moved it away).
    public func reopen() throws { try writer?.reopen() }

    /// Writes everything queued and stops the writer thread.
    public func close() { writer?.close() }
}
