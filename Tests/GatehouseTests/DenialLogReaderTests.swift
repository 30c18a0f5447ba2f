import Foundation
import Testing

@testable import Gatehouse

/// A denial log written by hand in a temporary folder: `denials.jsonl` plus rotated files.
private struct LogFolder {
    let folder: String
    var path: String { folder + "/denials.jsonl" }

    init() throws {
        folder =
            FileManager.default.temporaryDirectory.appendingPathComponent("gh-denial-reader-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    /// Writes `lines` (each followed by a newline) to `denials.jsonl` or `denials.jsonl.N`.
    func write(_ lines: [String], rotation: Int? = nil, trailingNewline: Bool = true) throws {
        let name = rotation.map { "\(path).\($0)" } ?? path
        let text = lines.joined(separator: "\n") + (trailingNewline && !lines.isEmpty ? "\n" : "")
        try text.write(toFile: name, atomically: false, encoding: .utf8)
    }

    func append(_ lines: [String]) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(lines.map { $0 + "\n" }.joined().utf8))
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }
}

/// 2026-11-21T12:00:00.000Z in milliseconds.
private let base: Int64 = 1_795_262_400_000

/// One line in the gateway's field order (DenialRecord.jsonLine).
private func line(
    _ id: String, at offsetSeconds: Int64, reason: String = "missing_credentials", status: Int = 401,
    subject: String? = nil, keyID: String? = nil, route: String? = "api", ip: String = "203.0.113.7",
    method: String = "GET", path: String = "/api/x", detail: String = "no credentials"
) -> String {
    let time = base + offsetSeconds * 1000
    var json = JSONObjectWriter()
    json.field("ts", Timestamp.format(seconds: Int(time / 1000), milliseconds: Int(time % 1000)))
    json.field("request_id", id)
    json.field("client_ip", ip)
    json.field("method", method)
    json.field("path", path)
    json.field("route", route)
    json.field("status", status)
    json.field("reason", reason)
    json.field("auth_method", keyID != nil ? "api_key" : subject != nil ? "jwt" : nil)
    json.field("subject", subject)
    json.field("email", nil as String?)
    json.field("org", nil as String?)
    json.field("role", nil as String?)
    json.field("key_id", keyID)
    json.field("issuer", nil as String?)
    json.field("jti", nil as String?)
    json.field("token_sha256", nil as String?)
    json.field("required_scopes", nil as [String]?)
    json.field("granted_scopes", nil as [String]?)
    json.field("policy", nil as String?)
    json.field("detail", detail)
    return json.finish()
}

/// Twelve entries over three files, one minute apart: r0…r3 in `.2`, r4…r7 in `.1`, r8…r11 current.
private func standardLog() throws -> LogFolder {
    let log = try LogFolder()
    let entries = [
        line("r0", at: 0),
        line("r1", at: 60, reason: "insufficient_scope", status: 403, subject: "alice"),
        line("r2", at: 120, reason: "no_route", status: 404, route: nil, ip: "10.1.2.3"),
        line("r3", at: 180, reason: "invalid_signature", subject: "bob"),
        line("r4", at: 240, reason: "insufficient_scope", status: 403, subject: "alice", route: "admin"),
        line("r5", at: 300, reason: "unknown_api_key", keyID: "abcdefghijkl"),
        line("r6", at: 360, reason: "rate_limited", status: 429, subject: "carol", keyID: "mnopqrstuvwx"),
        line("r7", at: 420, reason: "insufficient_scope", status: 403, subject: "alice", ip: "10.9.9.9"),
        line("r8", at: 480, reason: "no_route", status: 404, route: nil),
        line("r9", at: 540, reason: "token_expired", subject: "bob", ip: "2001:db8::1"),
        line("r10", at: 600, reason: "insufficient_scope", status: 403, subject: "dave", route: "admin"),
        line("r11", at: 660, reason: "missing_credentials"),
    ]
    try log.write(Array(entries[0..<4]), rotation: 2)
    try log.write(Array(entries[4..<8]), rotation: 1)
    try log.write(Array(entries[8...]))
    return log
}

private func ids(
    _ reader: DenialLogReader, _ filter: DenialFilter = DenialFilter(), problems: inout [DenialLogProblem]
) throws -> [String] {
    var result: [String] = []
    var found: [DenialLogProblem] = []
    try reader.forEach(matching: filter, onProblem: { found.append($0) }) { result.append($0.requestID ?? "?") }
    problems += found
    return result
}

private func ids(_ reader: DenialLogReader, _ filter: DenialFilter = DenialFilter()) throws -> [String] {
    var problems: [DenialLogProblem] = []
    let result = try ids(reader, filter, problems: &problems)
    #expect(problems.isEmpty, "\(problems)")
    return result
}

@Suite("Denial log reader") struct DenialLogReaderTests {
    @Test("reads rotated files oldest first, then the current one")
    func orderAcrossFiles() throws {
        let log = try standardLog()
        defer { log.remove() }
        // A rotated file with a gap (no .3) and a higher index is still found, in order.
        try log.write([line("old", at: -60)], rotation: 4)
        // Neighbours that are not rotations are ignored.
        try "junk".write(toFile: log.path + ".bak", atomically: false, encoding: .utf8)
        try "junk".write(toFile: log.path + ".01", atomically: false, encoding: .utf8)
        let reader = DenialLogReader(path: log.path)
        #expect(reader.files() == [log.path + ".4", log.path + ".2", log.path + ".1", log.path])
        #expect(try ids(reader) == ["old"] + (0..<12).map { "r\($0)" })
    }

    @Test("parses every field, escapes, scope lists and unknown extra fields")
    func parsesFields() throws {
        let log = try LogFolder()
        defer { log.remove() }
        let record = DenialRecord(
            requestID: "req-1", clientIP: "203.0.113.7", method: "POST", path: "/mcp/github", route: "github-mcp",
            status: 403, reason: "insufficient_scope", identity: nil, authentication: nil,
            tokenFingerprint: "0123456789abcdef",
            requiredScopes: ["mcp:write"], grantedScopes: ["mcp:read", "x \"y\""], policy: nil,
            detail: "route github-mcp needs mcp:write for POST\n\"quoted\" é")
        let written = record.jsonLine(timestamp: "2026-11-21T12:00:00.123Z")
        let mcp =
            #"{"ts":"2026-11-21T12:00:01Z","request_id":"req-2","route":null,"status":401,"reason":"x","#
            + #""subject":"\u00e9\ud83d\ude00\/","mcp_method":"tools/call","mcp_tool":"search","jsonrpc_id":7,"#
            + #""future":{"a":[1,{"b":"}"}]},"flag":true}"#
        try log.write([written, mcp])
        var entries: [DenialEntry] = []
        try DenialLogReader(path: log.path).forEach(matching: DenialFilter(), onProblem: { Issue.record("\($0)") }) {
            entries.append($0)
        }
        #expect(entries.count == 2)
        let first = try #require(entries.first)
        #expect(first.timestamp == "2026-11-21T12:00:00.123Z")
        #expect(first.time == base + 123)
        #expect(first.requestID == "req-1")
        #expect(first.clientIP == "203.0.113.7")
        #expect(first.method == "POST")
        #expect(first.path == "/mcp/github")
        #expect(first.route == "github-mcp")
        #expect(first.status == 403)
        #expect(first.reason == "insufficient_scope")
        #expect(first.authMethod == nil)
        #expect(first.subject == nil)
        #expect(first.tokenSHA256 == "0123456789abcdef")
        #expect(first.requiredScopes == ["mcp:write"])
        #expect(first.grantedScopes == ["mcp:read", "x \"y\""])
        #expect(first.policy == nil)
        #expect(first.detail == "route github-mcp needs mcp:write for POST\n\"quoted\" é")
        #expect(first.extra.isEmpty)
        #expect(first.line == written)

        let second = try #require(entries.last)
        #expect(second.time == base + 1000)
        #expect(second.route == nil)
        #expect(second.subject == "é😀/")
        #expect(second.mcpMethod == "tools/call")
        #expect(second.mcpTool == "search")
        #expect(second.jsonrpcID == "7")
        #expect(second.extra == ["future": #"{"a":[1,{"b":"}"}]}"#, "flag": "true"])
        #expect(second.identity == "é😀/")
    }

    @Test("filters: reason, identity (subject or key id), route, ip, and combinations")
    func filters() throws {
        let log = try standardLog()
        defer { log.remove() }
        let reader = DenialLogReader(path: log.path)
        #expect(try ids(reader, DenialFilter(reason: "insufficient_scope")) == ["r1", "r4", "r7", "r10"])
        #expect(try ids(reader, DenialFilter(reason: "insufficient")) == [])
        #expect(try ids(reader, DenialFilter(identity: "alice")) == ["r1", "r4", "r7"])
        #expect(try ids(reader, DenialFilter(identity: "abcdefghijkl")) == ["r5"])
        #expect(try ids(reader, DenialFilter(identity: "mnopqrstuvwx")) == ["r6"])
        #expect(try ids(reader, DenialFilter(identity: "carol")) == ["r6"])
        #expect(try ids(reader, DenialFilter(identity: "anonymous")) == ["r0", "r2", "r8", "r11"])
        #expect(try ids(reader, DenialFilter(route: "admin")) == ["r4", "r10"])
        #expect(try ids(reader, DenialFilter(route: "none")) == ["r2", "r8"])
        #expect(try ids(reader, DenialFilter(ip: .parse("10.1.2.3"))) == ["r2"])
        #expect(try ids(reader, DenialFilter(ip: .parse("::ffff:10.1.2.3"))) == ["r2"])
        #expect(try ids(reader, DenialFilter(ip: .parse("10.0.0.0/8"))) == ["r2", "r7"])
        #expect(try ids(reader, DenialFilter(ip: .parse("2001:DB8::1"))) == ["r9"])
        #expect(try ids(reader, DenialFilter(ip: .parse("2001:db8::/32"))) == ["r9"])
        #expect(
            try ids(reader, DenialFilter(reason: "insufficient_scope", identity: "alice", route: "api")) == [
                "r1", "r7",
            ])
        #expect(
            try ids(reader, DenialFilter(reason: "insufficient_scope", identity: "alice", ip: .parse("10.0.0.0/8")))
                == ["r7"])
        #expect(throws: DenialFilterError.self) { try DenialIPFilter.parse("10.0.0.0/33") }
        #expect(throws: DenialFilterError.self) { try DenialIPFilter.parse("localhost") }
    }

    @Test("since: a duration back from now, or an RFC 3339 time")
    func since() throws {
        let log = try standardLog()
        defer { log.remove() }
        let reader = DenialLogReader(path: log.path)
        let now = base + 700_000  // 11m40s after r0
        #expect(try ids(reader, DenialFilter(since: DenialFilter.parseSince("2m", now: now))) == ["r10", "r11"])
        #expect(try ids(reader, DenialFilter(since: DenialFilter.parseSince("1h", now: now))).count == 12)
        #expect(try ids(reader, DenialFilter(since: DenialFilter.parseSince("0s", now: now))) == [])
        #expect(
            try ids(reader, DenialFilter(since: DenialFilter.parseSince("2026-11-21T12:09:00Z", now: now)))
                == ["r9", "r10", "r11"])
        // Inclusive, fractions and offsets: 13:09:00.000+01:00 is 12:09:00Z.
        #expect(
            try ids(reader, DenialFilter(since: DenialFilter.parseSince("2026-11-21T13:09:00.000+01:00", now: now)))
                == ["r9", "r10", "r11"])
        #expect(
            try ids(reader, DenialFilter(since: DenialFilter.parseSince("2026-11-21T12:08:59.999Z", now: now)))
                == ["r9", "r10", "r11"])
        #expect(try DenialFilter.parseSince("2026-11-21", now: now) == base - 12 * 3_600_000)
        #expect(try ids(reader, DenialFilter(since: DenialFilter.parseSince("2026-11-22", now: now))) == [])
        // With since and another filter together.
        #expect(
            try ids(reader, DenialFilter(since: DenialFilter.parseSince("5m", now: now), reason: "insufficient_scope"))
                == ["r7", "r10"])
        for bad in [
            "1x", "", "yesterday", "-1h", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-21T12:00Z",
            "2026-11-21T25:00:00Z", "2026-11-21T12:00:00",
        ] {
            #expect(throws: DenialFilterError.self, "\(bad)") { try DenialFilter.parseSince(bad, now: now) }
        }
    }

    @Test("since skips whole rotated files that end before it, without losing lines near the boundary")
    func sinceSkipsOldFiles() throws {
        let log = try LogFolder()
        defer { log.remove() }
        // A corrupt line inside the old file shows whether the file was read at all.
        try log.write([line("a", at: 0), "garbage", line("a1", at: 10)], rotation: 1)
        try log.write([line("b", at: 7200)])
        let reader = DenialLogReader(path: log.path)
        var problems: [DenialLogProblem] = []
        let since = base + 3_600_000
        #expect(try ids(reader, DenialFilter(since: since), problems: &problems) == ["b"])
        #expect(problems.isEmpty)
        #expect(try ids(reader, DenialFilter(), problems: &problems) == ["a", "a1", "b"])
        #expect(problems.count == 1)
        // The skip is judged from the last line; when that is unreadable, the file is read.
        try log.write([line("a", at: 0), "{\"ts\":"], rotation: 1)
        problems = []
        #expect(try ids(reader, DenialFilter(since: since), problems: &problems) == ["b"])
        #expect(problems.count == 1)
        try log.write([line("a", at: 0), line("a2", at: 3590)], rotation: 1)
        problems = []
        // Ending 10 s before `since` is within the reordering margin: read, not skipped.
        #expect(try ids(reader, DenialFilter(since: base + 3_600_000), problems: &problems) == ["b"])
        #expect(try ids(reader, DenialFilter(since: base + 3_590_000), problems: &problems) == ["a2", "b"])
        #expect(problems.isEmpty)
    }

    @Test("limit keeps the last N matching entries, across files")
    func limit() throws {
        let log = try standardLog()
        defer { log.remove() }
        let reader = DenialLogReader(path: log.path)
        func last(_ count: Int, _ filter: DenialFilter = DenialFilter()) throws -> [String] {
            try reader.last(count, matching: filter, onProblem: { Issue.record("\($0)") }).map { $0.requestID ?? "?" }
        }
        #expect(try last(3) == ["r9", "r10", "r11"])
        #expect(try last(6) == ["r6", "r7", "r8", "r9", "r10", "r11"])
        #expect(try last(1) == ["r11"])
        #expect(try last(0) == [])
        #expect(try last(100) == (0..<12).map { "r\($0)" })
        #expect(try last(3, DenialFilter(reason: "insufficient_scope")) == ["r4", "r7", "r10"])
        #expect(try last(2, DenialFilter(identity: "alice")) == ["r4", "r7"])
        // The ring wraps many times over a long log and still returns its newest lines in order.
        let many = (0..<5000).map { line("m\($0)", at: Int64($0)) }
        try log.write(many)
        #expect(try last(4) == ["m4996", "m4997", "m4998", "m4999"])
    }

    @Test("summary: total, time span, counts by reason, identity and route, top N")
    func summary() throws {
        let log = try standardLog()
        defer { log.remove() }
        let reader = DenialLogReader(path: log.path)
        let summary = try reader.summarize(matching: DenialFilter(), top: 10, onProblem: { Issue.record("\($0)") })
        #expect(summary.total == 12)
        #expect(summary.earliest == base)
        #expect(summary.latest == base + 660_000)
        #expect(DenialSummary.format(base + 660_000) == "2026-11-21T12:11:00.000Z")
        #expect(
            summary.reasons.top == [
                DenialCount(value: "insufficient_scope", count: 4), DenialCount(value: "missing_credentials", count: 2),
                DenialCount(value: "no_route", count: 2), DenialCount(value: "invalid_signature", count: 1),
                DenialCount(value: "rate_limited", count: 1), DenialCount(value: "token_expired", count: 1),
                DenialCount(value: "unknown_api_key", count: 1),
            ])
        #expect(summary.reasons.distinct == 7 && summary.reasons.others == 0)
        // The subject wins over the key id; the key id stands in when there is no subject.
        #expect(
            summary.identities.top == [
                DenialCount(value: "anonymous", count: 4), DenialCount(value: "alice", count: 3),
                DenialCount(value: "bob", count: 2), DenialCount(value: "abcdefghijkl", count: 1),
                DenialCount(value: "carol", count: 1), DenialCount(value: "dave", count: 1),
            ])
        #expect(
            summary.routes.top == [
                DenialCount(value: "api", count: 8), DenialCount(value: "admin", count: 2),
                DenialCount(value: "none", count: 2),
            ])

        let top2 = try reader.summarize(
            matching: DenialFilter(reason: "insufficient_scope"), top: 1, onProblem: { Issue.record("\($0)") })
        #expect(top2.total == 4)
        #expect(top2.earliest == base + 60_000 && top2.latest == base + 600_000)
        #expect(top2.identities.top == [DenialCount(value: "alice", count: 3)])
        #expect(top2.identities.distinct == 2 && top2.identities.others == 1)
        #expect(top2.routes.top == [DenialCount(value: "admin", count: 2)])  // a tie: name order
        #expect(top2.routes.others == 2)

        let empty = try reader.summarize(matching: DenialFilter(reason: "nope"), top: 5, onProblem: { _ in })
        #expect(empty.total == 0 && empty.earliest == nil && empty.reasons.top.isEmpty)
    }

    @Test("corrupt and truncated lines are reported with file and line number, and skipped")
    func corruptLines() throws {
        let log = try LogFolder()
        defer { log.remove() }
        let good = line("g1", at: 0)
        try log.write(
            [
                line("g0", at: 0),
                String(good.prefix(40)),  // cut short by a crash
                "not json at all",
                "",  // a blank line is not a problem
                #"{"ts":"yesterday","request_id":"bad-ts"}"#,
                #"{"ts":"2026-11-21T12:00:00.000Z","request_id":"x" "reason":"y"}"#,
                #"{"ts":"2026-11-21T12:00:00.000Z","request_id":"x"}{"#,
                line("g1", at: 1),
            ], rotation: 1)
        // The current file ends with a partial line (no newline): the writer died mid-line.
        try log.write([line("g2", at: 2), String(good.prefix(100))], trailingNewline: false)
        var problems: [DenialLogProblem] = []
        let reader = DenialLogReader(path: log.path)
        #expect(try ids(reader, problems: &problems) == ["g0", "g1", "g2"])
        #expect(problems.map(\.file) == Array(repeating: log.path + ".1", count: 5) + [log.path])
        #expect(problems.map(\.line) == [2, 3, 5, 6, 7, 2])
        #expect(problems[0].message.contains("truncated"))
        #expect(problems[2].message.contains("ts"))
        #expect(problems[3].message.contains("column"))
        #expect(problems[0].description.hasPrefix(log.path + ".1:2: "))
        #expect(problems[0].description.hasSuffix("line skipped"))

        // A truncated line is still reported when a filter's pre-filter skips it unparsed.
        problems = []
        #expect(try ids(reader, DenialFilter(reason: "no_route"), problems: &problems) == [])
        #expect(problems.map(\.line) == [2, 3, 7, 2])

        // Summary and limit skip them the same way.
        let summary = try reader.summarize(matching: DenialFilter(), top: 3, onProblem: { _ in })
        #expect(summary.total == 3)
        #expect(try reader.last(2, matching: DenialFilter(), onProblem: { _ in }).map(\.requestID) == ["g1", "g2"])
    }

    @Test("lines longer than a read chunk, and lines split across chunks, are read whole")
    func longLines() throws {
        let log = try LogFolder()
        defer { log.remove() }
        let long = String(repeating: "x", count: 3 * DenialLogReader.chunkBytes / 2)
        let lines = (0..<3000).map { line("n\($0)", at: Int64($0), detail: $0 == 1500 ? long : "d\($0)") }
        try log.write(lines)
        var details: [Int] = []
        try DenialLogReader(path: log.path).forEach(matching: DenialFilter(), onProblem: { Issue.record("\($0)") }) {
            details.append($0.detail?.count ?? 0)
        }
        #expect(details.count == 3000)
        #expect(details[1500] == long.count)
    }

    @Test("a missing log has no files and reads as empty")
    func missingLog() throws {
        let log = try LogFolder()
        defer { log.remove() }
        let reader = DenialLogReader(path: log.path)
        #expect(reader.files().isEmpty)
        #expect(try ids(reader) == [])
        #expect(try reader.summarize(matching: DenialFilter(), top: 3, onProblem: { _ in }).total == 0)
    }

    @Test("follow: backlog, appended lines, partial lines, rotation and truncation")
    func follow() throws {
        let log = try standardLog()
        defer { log.remove() }
        let reader = DenialLogReader(path: log.path)
        var problems: [DenialLogProblem] = []
        let (backlog, follower) = try reader.follow(
            matching: DenialFilter(), backlog: 2, onProblem: { problems.append($0) })
        #expect(backlog.map(\.requestID) == ["r10", "r11"])
        var seen: [String] = []
        func poll() throws {
            try follower.poll(onProblem: { problems.append($0) }) { seen.append($0.requestID ?? "?") }
        }
        try poll()
        #expect(seen.isEmpty)

        try log.append([line("f1", at: 700)])
        try poll()
        #expect(seen == ["f1"])

        // Half a line now, the rest later: shown once complete, never as a corrupt line.
        let next = line("f2", at: 710)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log.path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(next.prefix(30).utf8))
        try poll()
        #expect(seen == ["f1"])
        try handle.write(contentsOf: Data((next.dropFirst(30) + "\n").utf8))
        try handle.close()
        try poll()
        #expect(seen == ["f1", "f2"])

        // Rotation: lines written to the old file before the rename are read, then the new file's.
        try log.append([line("f3", at: 720)])
        try FileManager.default.moveItem(atPath: log.path + ".2", toPath: log.path + ".3")
        try FileManager.default.moveItem(atPath: log.path + ".1", toPath: log.path + ".2")
        try FileManager.default.moveItem(atPath: log.path, toPath: log.path + ".1")
        try poll()  // the new file does not exist yet
        #expect(seen == ["f1", "f2", "f3"])
        try log.write([line("f4", at: 730)])
        try poll()
        #expect(seen == ["f1", "f2", "f3", "f4"])

        // Truncation in place (logrotate copytruncate): read again from the start.
        try log.write([])
        try poll()
        try log.write([line("f5", at: 740)])
        try poll()
        #expect(seen == ["f1", "f2", "f3", "f4", "f5"])
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("follow: filters apply, and a log created later is picked up")
    func followLateLog() throws {
        let log = try LogFolder()
        defer { log.remove() }
        let (backlog, follower) = try DenialLogReader(path: log.path).follow(
            matching: DenialFilter(reason: "rate_limited"), backlog: 10, onProblem: { Issue.record("\($0)") })
        #expect(backlog.isEmpty)
        var seen: [String] = []
        try follower.poll(onProblem: { Issue.record("\($0)") }) { seen.append($0.requestID ?? "?") }
        try log.write([line("a", at: 0), line("b", at: 1, reason: "rate_limited", status: 429)])
        try follower.poll(onProblem: { Issue.record("\($0)") }) { seen.append($0.requestID ?? "?") }
        #expect(seen == ["b"])
    }
}
