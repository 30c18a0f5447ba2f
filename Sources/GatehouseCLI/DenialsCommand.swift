import ArgumentParser
import Gatehouse

#if canImport(Glibc)
    import Glibc
#endif

/// `gatehouse denials` (SPEC §1, §8): reads the denial log named by the config, the
/// rotated files included, oldest first. A table by default, the log's own JSON lines with
/// `--json`, grouped counts with `--summary`, and `--follow` to watch it like `tail -F`.
struct DenialsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "denials",
        abstract: "Show the requests Gatehouse refused, from the denial log.",
        discussion: """
            Reads [logs] denials from the config and its rotated files (denials.jsonl.N … .1), oldest \
            first. Filters combine: every one given must match. Unreadable lines are reported on \
            stderr and skipped. A log that does not exist yet is not an error (exit 0).
            """
    )

    @OptionGroup var options: ConfigOption

    @Option(help: "Only entries from the last DURATION (30m, 1h, 7d) or since an RFC 3339 time.")
    var since: String?

    @Option(help: "Only entries with this reason, e.g. insufficient_scope.")
    var reason: String?

    @Option(help: "Only entries of this subject or API key id (\"anonymous\": neither known).")
    var identity: String?

    @Option(help: "Only entries for this route (\"none\": requests that matched no route).")
    var route: String?

    @Option(help: "Only entries from this client address or CIDR block.")
    var ip: String?

    @Option(help: "Only the last N matching entries. With --follow: how many to show before following (default 10).")
    var limit: Int?

    @Flag(help: "Print the matching log lines as they are: one JSON object per line.")
    var json = false

    @Flag(help: "Print counts by reason, identity and route, with the total and time span.")
    var summary = false

    @Option(help: "With --summary: how many values to list in each group (default 10).")
    var top: Int?

    @Flag(help: "Keep printing entries as they are logged (follows rotation) until Ctrl-C.")
    var follow = false

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
        if let top {
            guard summary else { throw ValidationError("--top applies only with --summary") }
            guard top >= 1 else { throw ValidationError("--top must be 1 or more") }
        }
        if summary && follow { throw ValidationError("--summary and --follow cannot be combined") }
        if summary && limit != nil {
            throw ValidationError("--limit does not apply to --summary; narrow it with --since or the other filters")
        }
        _ = try makeFilter(now: DenialFilter.currentTimeMilliseconds())
    }

    func run() async throws {
        guard let loaded = loadConfigReportingIssues(options.config) else { throw ExitStatus.userError }
        guard let path = loaded.config.logs.denials else {
            printError(
                "the denial log is off in \(options.config) ([logs] denials = \"off\"); there is nothing to read")
            throw ExitStatus.userError
        }
        let filter = try makeFilter(now: DenialFilter.currentTimeMilliseconds())
        do {
            if follow {
                try await followLog(path: path, filter: filter)
            } else {
                try readLog(path: path, filter: filter)
            }
        } catch let error as DenialLogError {
            printError(error.description)
            // Permissions are the operator's to fix (run as the gateway's user); I/O errors are not.
            throw [EACCES, EPERM, EISDIR].contains(error.errno) ? ExitStatus.userError : ExitStatus.internalError
        }
    }

    private func makeFilter(now: Int64) throws -> DenialFilter {
        var filter = DenialFilter(reason: reason, identity: identity, route: route)
        if let since {
            do {
                filter.since = try DenialFilter.parseSince(since, now: now)
            } catch {
                throw ValidationError("invalid --since: \(error.message)")
            }
        }
        if let ip {
            do {
                filter.ip = try DenialIPFilter.parse(ip)
            } catch {
                throw ValidationError("invalid --ip: \(error.message)")
            }
        }
        return filter
    }

    private func readLog(path: String, filter: DenialFilter) throws {
        let reader = DenialLogReader(path: path)
        guard !reader.files().isEmpty else {
            printError("no denials logged yet at \(path)")
            return
        }
        let problems = ProblemReporter()
        defer { problems.finish() }
        let output = StandardOutput()
        defer { output.flush() }
        if summary {
            let result = try reader.summarize(matching: filter, top: top ?? 10, onProblem: problems.report)
            if json {
                output.line(SummaryPrinter.json(result))
            } else {
                SummaryPrinter.text(result, to: output)
            }
            return
        }
        let table = DenialTable()
        var count = 0
        let emit = { (entry: DenialEntry) in
            count += 1
            if json { output.line(entry.line) } else { table.add(entry, to: output) }
        }
        if let limit {
            for entry in try reader.last(limit, matching: filter, onProblem: problems.report) { emit(entry) }
        } else if json {
            try reader.forEachLine(matching: filter, onProblem: problems.report) { output.line($0) }
        } else {
            try reader.forEach(matching: filter, onProblem: problems.report, emit)
        }
        table.finish(to: output)
        if count == 0 && !json { printError("no denials match in \(path)") }
    }

    private func followLog(path: String, filter: DenialFilter) async throws {
        // Installed before anything is read or printed, so that a Ctrl-C at any point
        // ends the command cleanly (exit 0) rather than by the default signal action.
        let signals = SignalWaiter.signals([SIGINT, SIGTERM])
        let backlog = limit ?? 10
        let json = json
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in signals { return }
            }
            group.addTask {
                try await Self.follow(path: path, filter: filter, backlog: backlog, json: json)
            }
            _ = try await group.next()
            group.cancelAll()
        }
    }

    /// Polls every 250 ms: cheap (one `stat` and, usually, a zero-byte read) and quick
    /// enough for a person watching; inotify would be Linux-only for no visible gain.
    private static func follow(path: String, filter: DenialFilter, backlog: Int, json: Bool) async throws {
        let output = StandardOutput()
        let problems = ProblemReporter()
        defer { problems.finish() }
        let table = DenialTable(streaming: true)
        let emit = { (entry: DenialEntry) in
            if json { output.line(entry.line) } else { table.add(entry, to: output) }
        }
        let reader = DenialLogReader(path: path)
        let (initial, follower) = try reader.follow(matching: filter, backlog: backlog, onProblem: problems.report)
        initial.forEach(emit)
        table.finish(to: output)  // fix the widths now: from here on, rows print as they come
        output.flush()
        if reader.files().isEmpty { printError("no denials logged yet at \(path); waiting for the first") }
        printError("following \(path) (Ctrl-C to stop)")
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(250))
            } catch {
                break  // cancelled: a signal arrived
            }
            try follower.poll(onProblem: problems.report, emit)
            output.flush()
        }
    }
}

// MARK: - Output

/// Buffered stdout: printing millions of lines through `print` costs a lock and a
/// conversion per call; this writes 64 KiB at a time.
final class StandardOutput {
    private var buffer: [UInt8] = []

    init() {
        buffer.reserveCapacity(64 * 1024)
    }

    func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(0x0A)
        if buffer.count >= 64 * 1024 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        FileDescriptorOutput(fd: 1).write(bytes: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

extension FileDescriptorOutput {
    func write(bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.write(fd, $0.baseAddress?.advanced(by: offset), $0.count - offset)
            }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }  // stdout closed: nothing useful left to do with the text
            offset += written
        }
    }
}

/// Reports unreadable lines on stderr: the first few in full, then only a count, so a
/// file that is not a denial log at all does not bury the output.
final class ProblemReporter {
    private static let shown = 20
    private var count = 0

    func report(_ problem: DenialLogProblem) {
        count += 1
        if count <= Self.shown { printError("warning: \(problem.description)") }
    }

    func finish() {
        guard count > Self.shown else { return }
        printError("warning: \(count - Self.shown) more unreadable lines skipped (\(count) in all)")
    }
}

/// The default output: one aligned row per entry. Column widths come from the first rows
/// (capped, longer cells end in "…"), then stay fixed, so a long result streams instead of
/// being held in memory to measure.
final class DenialTable {
    private static let header = ["TIME", "STATUS", "REASON", "IDENTITY", "ROUTE", "REQUEST", "DETAIL"]
    /// Widest each column may get; the last column is not padded, only cut.
    private static let maximum = [24, 6, 28, 32, 24, 48, 120]
    /// Widths to start from when following, before any entry is known.
    private static let streamingMinimum = [24, 6, 20, 16, 12, 32, 0]
    private static let sampleRows = 500

    private var pending: [[String]] = []
    private var widths: [Int]?
    private var headerPrinted = false
    private let minimum: [Int]

    init(streaming: Bool = false) {
        minimum = streaming ? Self.streamingMinimum : Self.header.map(\.count)
    }

    func add(_ entry: DenialEntry, to output: StandardOutput) {
        let row = Self.cells(entry)
        guard let widths else {
            pending.append(row)
            if pending.count >= Self.sampleRows { finish(to: output) }
            return
        }
        emit(row, widths: widths, to: output)
    }

    /// Fixes the widths (if not yet) and prints what is pending.
    func finish(to output: StandardOutput) {
        let fixed =
            widths
            ?? (0..<Self.header.count).map { column in
                let widest = pending.reduce(max(minimum[column], Self.header[column].count)) {
                    max($0, $1[column].count)
                }
                return min(widest, Self.maximum[column])
            }
        widths = fixed
        for row in pending { emit(row, widths: fixed, to: output) }
        pending.removeAll()
    }

    private func emit(_ row: [String], widths: [Int], to output: StandardOutput) {
        if !headerPrinted {
            headerPrinted = true
            output.line(Self.format(Self.header, widths: widths))
        }
        output.line(Self.format(row, widths: widths))
    }

    private static func format(_ row: [String], widths: [Int]) -> String {
        var text = ""
        for (column, cell) in row.enumerated() {
            let isLast = column == row.count - 1
            let cut = fit(cell, width: isLast ? maximum[column] : widths[column])
            text += cut
            if !isLast { text += String(repeating: " ", count: widths[column] - cut.count + 2) }
        }
        return text
    }

    private static func fit(_ cell: String, width: Int) -> String {
        cell.count <= width ? cell : String(cell.prefix(max(0, width - 1))) + "…"
    }

    private static func cells(_ entry: DenialEntry) -> [String] {
        let identity: String
        switch (entry.subject, entry.keyID) {
        case (let subject?, let key?): identity = "\(subject) (key \(key))"
        case (let subject?, nil): identity = subject
        case (nil, let key?): identity = "key \(key)"
        case (nil, nil): identity = "-"
        }
        let request = "\(entry.method ?? "-") \(entry.path ?? "-")"
        return [
            entry.timestamp, entry.status.map(String.init) ?? "-", entry.reason ?? "-", identity, entry.route ?? "-",
            request, entry.detail ?? "",
        ].map(terminalSafe)
    }
}

/// Paths, subjects and details come from clients: control characters (an ANSI escape
/// could rewrite the operator's terminal) and bidirectional overrides (which reorder what
/// is shown) are replaced before they are printed as text.
func terminalSafe(_ text: String) -> String {
    func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || (0x202A...0x202E).contains(scalar.value)
            || (0x2066...0x2069).contains(scalar.value)
    }
    guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
    var safe = String.UnicodeScalarView()
    for scalar in text.unicodeScalars { safe.append(isUnsafe(scalar) ? "\u{FFFD}" : scalar) }
    return String(safe)
}

/// `--summary` as text or as one JSON line.
enum SummaryPrinter {
    static func text(_ summary: DenialSummary, to output: StandardOutput) {
        guard let earliest = summary.earliest, let latest = summary.latest else {
            output.line("0 denials")
            return
        }
        output.line(
            "\(summary.total) \(summary.total == 1 ? "denial" : "denials") from \(DenialSummary.format(earliest)) to \(DenialSummary.format(latest)) "
                + "(\(span(latest - earliest)))")
        for (title, noun, grouping) in [
            ("REASON", ("reason", "reasons"), summary.reasons),
            ("IDENTITY", ("identity", "identities"), summary.identities),
            ("ROUTE", ("route", "routes"), summary.routes),
        ] {
            output.line("")
            let values = grouping.top.map { terminalSafe($0.value) }
            let hidden = grouping.distinct - grouping.top.count
            let others = hidden > 0 ? "(\(hidden) other \(hidden == 1 ? noun.0 : noun.1))" : ""
            let width = min(48, values.reduce(max(title.count, others.count)) { max($0, $1.count) })
            let countWidth = max(5, String(summary.total).count)
            output.line(pad(title, width) + "  " + leftPad("COUNT", countWidth) + "       %")
            for (value, item) in zip(values, grouping.top) {
                let shown = value.count <= width ? value : String(value.prefix(width - 1)) + "…"
                output.line(
                    pad(shown, width) + "  " + leftPad(String(item.count), countWidth) + "  "
                        + leftPad(percent(item.count, of: summary.total), 6))
            }
            if hidden > 0 {
                output.line(
                    pad(others, width) + "  " + leftPad(String(grouping.others), countWidth) + "  "
                        + leftPad(percent(grouping.others, of: summary.total), 6))
            }
        }
    }

    static func json(_ summary: DenialSummary) -> String {
        var text = "{\"total\":\(summary.total),\"first\":"
        text += summary.earliest.map { "\"\(DenialSummary.format($0))\"" } ?? "null"
        text += ",\"last\":"
        text += summary.latest.map { "\"\(DenialSummary.format($0))\"" } ?? "null"
        for (key, grouping) in [
            ("by_reason", summary.reasons), ("by_identity", summary.identities), ("by_route", summary.routes),
        ] {
            text += ",\"\(key)\":{\"top\":["
            for (index, item) in grouping.top.enumerated() {
                if index > 0 { text += "," }
                text += "{\"value\":"
                JSONText.appendQuoted(item.value, to: &text)
                text += ",\"count\":\(item.count)}"
            }
            text += "],\"distinct\":\(grouping.distinct),\"others\":\(grouping.others)}"
        }
        return text + "}"
    }

    /// One decimal, computed in integers (no Foundation formatter for one number).
    private static func percent(_ count: Int, of total: Int) -> String {
        guard total > 0 else { return "0.0" }
        let tenths = (count * 1000 + total / 2) / total
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// "350ms", "42s", "5m 3s", "1h 5m", "2d 3h": the two largest units are enough.
    static func span(_ milliseconds: Int64) -> String {
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        let seconds = milliseconds / 1000
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m \(seconds % 60)s" }
        if seconds < 86_400 { return "\(seconds / 3600)h \(seconds % 3600 / 60)m" }
        return "\(seconds / 86_400)d \(seconds % 86_400 / 3600)h"
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    private static func leftPad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
