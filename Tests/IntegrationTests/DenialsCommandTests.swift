import Foundation
import Gatehouse
import Testing

/// `gatehouse denials` (SPEC §1) as an operator runs it, against a log written here: the
/// table, `--json`, `--summary`, a bad `--since`, and `--follow` seeing a new line.
@Suite("denials command") struct DenialsCommandTests {
    /// A config whose `[logs] denials` is in a fresh folder, and that log's path.
    struct Setup {
        let folder: TempFolder
        let config: String
        let log: String

        init(denials: String? = nil) throws {
            folder = try TempFolder("denials-cli")
            log = folder.file("denials.jsonl")
            config = try folder.write(
                "proxy.conf",
                """
                [logs]
                access = "off"
                denials = "\(denials ?? log)"

                [[routes]]
                name = "api"
                path = "/api"
                upstream = "http://127.0.0.1:1/"
                auth = "none"
                """)
        }

        func write(_ lines: [String], rotation: Int? = nil) throws {
            try folder.write(
                rotation.map { "denials.jsonl.\($0)" } ?? "denials.jsonl", lines.map { $0 + "\n" }.joined())
        }

        func append(_ lines: [String]) throws {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(lines.map { $0 + "\n" }.joined().utf8))
        }

        func run(_ arguments: [String]) async throws -> GatehouseProcess.Result {
            try await GatehouseProcess.run(["denials", "--config", config] + arguments)
        }
    }

    /// One line as the gateway writes it, `ago` seconds before now.
    static func line(
        _ id: String, ago: Int64, reason: String, status: Int, subject: String? = nil, route: String? = "api",
        path: String = "/api/items", detail: String = "refused"
    ) -> String {
        let time = WallClock.seconds() - ago
        var json = JSONObjectWriter()
        json.field("ts", Timestamp.format(seconds: Int(time), milliseconds: 250))
        json.field("request_id", id)
        json.field("client_ip", "203.0.113.7")
        json.field("method", "GET")
        json.field("path", path)
        json.field("route", route)
        json.field("status", status)
        json.field("reason", reason)
        json.field("auth_method", subject == nil ? nil : "jwt")
        json.field("subject", subject)
        for name in ["email", "org", "role", "key_id", "issuer", "jti", "token_sha256"] {
            json.field(name, nil as String?)
        }
        json.field("required_scopes", subject == nil ? nil : ["items:write"])
        json.field("granted_scopes", subject == nil ? nil : ["items:read"])
        json.field("policy", nil as String?)
        json.field("detail", detail)
        return json.finish()
    }

    /// Three hours of history over a rotated file and the current one, plus one corrupt line.
    static func standardLines() -> (rotated: [String], current: [String]) {
        (
            [
                line("old-1", ago: 3 * 3600, reason: "missing_credentials", status: 401),
                line("old-2", ago: 2 * 3600, reason: "insufficient_scope", status: 403, subject: "alice"),
            ],
            [
                line("new-1", ago: 1800, reason: "no_route", status: 404, route: nil, path: "/nope"),
                "{\"ts\":\"2026-11-21T12:00:00.000Z\",\"request_id\":",  // cut short by a crash
                line(
                    "new-2", ago: 300, reason: "insufficient_scope", status: 403, subject: "alice",
                    detail: "route api needs items:write \u{1B}[31mred\u{1B}[0m"),
            ]
        )
    }

    /// The setup and the lines written (timestamps are relative to now, so made once).
    static func standardSetup() throws -> (Setup, rotated: [String], current: [String]) {
        let setup = try Setup()
        let lines = standardLines()
        try setup.write(lines.rotated, rotation: 1)
        try setup.write(lines.current)
        return (setup, lines.rotated, lines.current)
    }

    @Test("the default table: a header, aligned rows oldest first, unreadable lines reported")
    func table() async throws {
        let (setup, _, _) = try Self.standardSetup()
        defer { setup.folder.remove() }
        let result = try await setup.run([])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").map(String.init)
        #expect(rows.count == 5, "\(result.stdout)")
        let header = try #require(rows.first)
        for column in ["TIME", "STATUS", "REASON", "IDENTITY", "ROUTE", "REQUEST", "DETAIL"] {
            #expect(header.contains(column))
        }
        let reasons = ["missing_credentials", "insufficient_scope", "no_route", "insufficient_scope"]
        let reasonColumn = try #require(header.range(of: "REASON")).lowerBound.utf16Offset(in: header)
        let requestColumn = try #require(header.range(of: "REQUEST")).lowerBound.utf16Offset(in: header)
        for (row, reason) in zip(rows.dropFirst(), reasons) {
            #expect(row.range(of: reason)?.lowerBound.utf16Offset(in: row) == reasonColumn, "\(row)")
            #expect(row.range(of: "GET /")?.lowerBound.utf16Offset(in: row) == requestColumn, "\(row)")
        }
        #expect(rows[2].contains("alice"))
        #expect(rows[3].contains("/nope"))
        // Client-controlled text cannot drive the terminal.
        #expect(!result.stdout.contains("\u{1B}"))
        #expect(rows[4].contains("red"))
        #expect(result.stderr.contains("denials.jsonl:2:"), "\(result.stderr)")

        let filtered = try await setup.run(["--reason", "insufficient_scope", "--identity", "alice", "--limit", "1"])
        #expect(filtered.status == 0)
        #expect(filtered.stdout.split(separator: "\n").count == 2)
        #expect(filtered.stdout.contains("route api needs items:write"))

        let none = try await setup.run(["--route", "admin"])
        #expect(none.status == 0)
        #expect(none.stdout.isEmpty)
        #expect(none.stderr.contains("no denials match"))
    }

    @Test("--json prints the matching lines as they are in the log")
    func json() async throws {
        let (setup, rotated, current) = try Self.standardSetup()
        defer { setup.folder.remove() }
        let lines = (rotated: rotated, current: current)
        let all = try await setup.run(["--json"])
        #expect(all.status == 0)
        #expect(
            all.stdout
                == [lines.rotated[0], lines.rotated[1], lines.current[0], lines.current[2]].map { $0 + "\n" }.joined())
        for line in all.stdout.split(separator: "\n") {
            #expect(throws: Never.self) { try JSONSerialization.jsonObject(with: Data(line.utf8)) }
        }
        let recent = try await setup.run(["--json", "--since", "1h", "--reason", "insufficient_scope"])
        #expect(recent.status == 0)
        #expect(recent.stdout == lines.current[2] + "\n")
        let unrouted = try await setup.run(["--json", "--route", "none"])
        #expect(unrouted.stdout == lines.current[0] + "\n")
        let last = try await setup.run(["--json", "--limit", "2"])
        #expect(last.stdout == lines.current[0] + "\n" + lines.current[2] + "\n")
    }

    @Test("--summary counts by reason, identity and route, as text or one JSON line")
    func summary() async throws {
        let (setup, _, _) = try Self.standardSetup()
        defer { setup.folder.remove() }
        let text = try await setup.run(["--summary"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("4 denials from "), "\(text.stdout)")
        for expected in ["REASON", "IDENTITY", "ROUTE", "insufficient_scope", "anonymous", "alice", "none"] {
            #expect(text.stdout.contains(expected), "missing \(expected) in:\n\(text.stdout)")
        }
        let json = try await setup.run(["--summary", "--json", "--top", "1"])
        #expect(json.status == 0)
        let lines = json.stdout.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["total"] as? Int == 4)
        let reasons = try #require(object["by_reason"] as? [String: Any])
        let top = try #require(reasons["top"] as? [[String: Any]])
        #expect(top.count == 1)
        #expect(top.first?["value"] as? String == "insufficient_scope")
        #expect(top.first?["count"] as? Int == 2)
        #expect(reasons["distinct"] as? Int == 3)
        #expect(reasons["others"] as? Int == 2)
        let routes = try #require(object["by_route"] as? [String: Any])
        #expect((routes["top"] as? [[String: Any]])?.first?["value"] as? String == "api")
    }

    @Test("user errors exit 1: a bad --since, a bad --ip, the log turned off; a missing log is not an error")
    func errors() async throws {
        let (setup, _, _) = try Self.standardSetup()
        defer { setup.folder.remove() }
        for arguments in [["--since", "1 hour"], ["--since", "2026-13-01T00:00:00Z"], ["--ip", "nope"]] {
            let result = try await setup.run(arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stdout.isEmpty)
            #expect(result.stderr.contains(arguments[0]), "\(result.stderr)")
        }
        let combined = try await setup.run(["--summary", "--follow"])
        #expect(combined.status == 1)

        let off = try Setup(denials: "off")
        defer { off.folder.remove() }
        let disabled = try await off.run([])
        #expect(disabled.status == 1)
        #expect(disabled.stderr.contains("off"), "\(disabled.stderr)")

        let empty = try Setup()
        defer { empty.folder.remove() }
        let missing = try await empty.run([])
        #expect(missing.status == 0)
        #expect(missing.stdout.isEmpty)
        #expect(missing.stderr.contains("no denials logged yet at \(empty.log)"), "\(missing.stderr)")
    }

    @Test(
        "--follow prints matching lines appended after it started, and stops on SIGINT with exit 0",
        arguments: [true, false])
    func follow(json: Bool) async throws {
        let (setup, _, _) = try Self.standardSetup()
        defer { setup.folder.remove() }
        let running = try GatehouseProcess.start(
            ["denials", "--config", setup.config, "--follow", "--reason", "rate_limited"] + (json ? ["--json"] : []))
        let ready = await eventually(timeout: .seconds(20)) { running.stderrSoFar().contains("following") }
        #expect(ready, "\(running.stderrSoFar())")
        let wanted = Self.line("live-1", ago: 0, reason: "rate_limited", status: 429, subject: "bob")
        try setup.append([Self.line("live-0", ago: 0, reason: "no_route", status: 404, route: nil), wanted])
        let seen = await eventually(timeout: .seconds(10)) {
            ((try? String(contentsOf: running.stdoutFile, encoding: .utf8)) ?? "").contains("bob")
        }
        #expect(seen)
        let result = try await running.stop(signal: SIGINT)
        #expect(result.status == 0, "\(result.stderr)")
        if json {
            #expect(result.stdout == wanted + "\n")
        } else {
            let rows = result.stdout.split(separator: "\n")
            #expect(rows.count == 2, "\(result.stdout)")
            #expect(rows.first?.hasPrefix("TIME") == true)
            #expect(rows.last?.contains("rate_limited") == true)
            #expect(!result.stdout.contains("live-0") && !result.stdout.contains("no_route"))
        }
    }
}
