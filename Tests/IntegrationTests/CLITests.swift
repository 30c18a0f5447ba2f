import Foundation
import Gatehouse
import Testing

/// The `gatehouse` binary as an operator runs it: exit codes, messages, signals.
@Suite("CLI") struct CLITests {
    @Test("check accepts the shipped example")
    func checkExample() async throws {
        let example = GatehouseProcess.repositoryRoot.appendingPathComponent("proxy.conf.example").path
        let result = try await GatehouseProcess.run(["check", "--config", example])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("OK"))
    }

    @Test("check reports every error with key path and line, exit 1")
    func checkReportsAllErrors() async throws {
        let path = try GatehouseProcess.writeConfig(
            """
            [server]
            listen = "127.0.0.1:99999"
            max_body_bytes = "10 parsecs"
            [logz]
            level = "info"

            [[routes]]
            name = "a"
            path = "/a"
            upstream = "ftp://127.0.0.1/x"
            auth = "none"
            scopes = ["mcp:read"]

            [[routes]]
            name = "a"
            path = "/a"
            upstrem = "http://127.0.0.1:1"
            auth = "none"
            """
        )
        let result = try await GatehouseProcess.run(["check", "--config", path])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        for expected in [
            "server.listen", "server.max_body_bytes", "logz", "did you mean", "routes[0].upstream",
            "routes[0].scopes", "auth = \"none\"", "routes[1].name", "routes[1].upstrem",
        ] {
            #expect(result.stderr.contains(expected), "missing \(expected) in:\n\(result.stderr)")
        }
        #expect(result.stderr.contains("proxy.conf:2:"), "no line number in:\n\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack"))
    }

    @Test("a missing config file is a user error")
    func missingConfig() async throws {
        let result = try await GatehouseProcess.run(["check", "--config", "/nonexistent/proxy.conf"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("/nonexistent/proxy.conf"))
    }

    @Test("serve refuses a bad config with exit 1 and no stack trace")
    func serveBadConfig() async throws {
        let path = try GatehouseProcess.writeConfig("[server]\nlisten = \"nope\"\n")
        let result = try await GatehouseProcess.run(["serve", "--config", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("server.listen"))
        #expect(result.stderr.contains("routes"))
    }

    @Test("unknown commands and options are user errors (exit 1)")
    func usageErrors() async throws {
        #expect(try await GatehouseProcess.run(["frobnicate"]).status == 1)
        #expect(try await GatehouseProcess.run(["check", "--nope"]).status == 1)
        #expect(try await GatehouseProcess.run(["--version"]).status == 0)
    }

    @Test("serve: proxies, reloads on SIGHUP (bad config refused, good one applied), stops on SIGTERM")
    func serveLifecycle() async throws {
        try await TestUpstream.with { upstream in
            let port = try await GatewayFixture.closedPort()
            let adminPort = try await GatewayFixture.closedPort()
            func config(route: String) -> String {
                """
                [server]
                listen = "127.0.0.1:\(port)"
                [admin]
                listen = "127.0.0.1:\(adminPort)"
                [logs]
                access = "off"
                denials = "off"
                [[routes]]
                name = "r"
                path = "\(route)"
                upstream = "http://127.0.0.1:\(upstream.port)/"
                auth = "none"
                """
            }
            let path = try GatehouseProcess.writeConfig(config(route: "/one"))
            let running = try GatehouseProcess.start(["serve", "--config", path])
            let up = await eventually(timeout: .seconds(10)) {
                (try? await CurlClient.request(url: "http://127.0.0.1:\(port)/one/x", timeout: .seconds(2)))?.status
                    == 200
            }
            #expect(up, "gateway did not come up: \(running.stderrSoFar())")

            let health = try await CurlClient.request(url: "http://127.0.0.1:\(adminPort)/healthz")
            #expect(health.status == 200)
            let ready = try await CurlClient.request(url: "http://127.0.0.1:\(adminPort)/readyz")
            #expect(ready.status == 200)

            // A broken config is refused; the old one keeps serving.
            try "[[routes]]\nname = 1\n".write(toFile: path, atomically: true, encoding: .utf8)
            kill(running.pid, SIGHUP)
            #expect(await eventually { running.stderrSoFar().contains("reload refused") })
            let stillOne = try await CurlClient.request(url: "http://127.0.0.1:\(port)/one/x")
            #expect(stillOne.status == 200)

            // A good one is applied without a restart.
            try config(route: "/two").write(toFile: path, atomically: true, encoding: .utf8)
            kill(running.pid, SIGHUP)
            let switched = await eventually {
                (try? await CurlClient.request(url: "http://127.0.0.1:\(port)/two/x"))?.status == 200
            }
            #expect(switched)
            let oldGone = try await CurlClient.request(url: "http://127.0.0.1:\(port)/one/x")
            #expect(oldGone.status == 404)

            let result = try await running.stop(signal: SIGTERM)
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    @Test("serve on a port already in use exits 1 naming the key")
    func portInUse() async throws {
        try await GatewayFixture.with { gw in
            let path = try GatehouseProcess.writeConfig(
                """
                [server]
                listen = "127.0.0.1:\(gw.port)"
                [admin]
                listen = "off"
                [[routes]]
                name = "r"
                path = "/"
                upstream = "http://127.0.0.1:1/"
                auth = "none"
                """
            )
            let result = try await GatehouseProcess.run(["serve", "--config", path])
            #expect(result.status == 1)
            #expect(result.stderr.contains("server.listen"))
        }
    }
}

@Suite("Admin and access log") struct AdminAndAccessLogTests {
    @Test("admin listener answers /healthz and /readyz; other paths 404")
    func adminEndpoints() async throws {
        try await GatewayFixture.with { gw in
            let health = try await CurlClient.request(url: "http://127.0.0.1:\(gw.adminPort)/healthz")
            #expect(health.status == 200)
            #expect(health.bodyString.contains("ok"))
            let ready = try await CurlClient.request(url: "http://127.0.0.1:\(gw.adminPort)/readyz")
            #expect(ready.status == 200)
            let other = try await CurlClient.request(url: "http://127.0.0.1:\(gw.adminPort)/api/x")
            #expect(other.status == 404)
            #expect(gw.upstream.received().isEmpty)
        }
    }

    @Test("every request, refused or proxied, writes one JSON access line")
    func accessLogLines() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gh-log-\(UUID().uuidString)")
        let path = directory.appendingPathComponent("access.jsonl").path
        try await GatewayFixture.with(configure: { $0.logs.access = .file(path) }) { gw in
            let ok = try await CurlClient.request(
                url: gw.url("/api/x?secret=query"), headers: [("X-Request-Id", "ok-1")])
            let missing = try await CurlClient.request(url: gw.url("/nothing"), headers: [("X-Request-Id", "nf-1")])
            #expect(ok.status == 200 && missing.status == 404)
            let written = await eventually(timeout: .seconds(3)) {
                ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").count >= 2
            }
            #expect(written)
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let objects = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        let okLine = try #require(objects.first { $0["request_id"] as? String == "ok-1" })
        #expect(okLine["status"] as? Int == 200)
        #expect(okLine["route"] as? String == "api")
        #expect(okLine["path"] as? String == "/api/x")
        #expect(okLine["client_ip"] as? String == "127.0.0.1")
        for key in ["ts", "method", "subject", "key_id", "duration_ms", "upstream_ms", "bytes_in", "bytes_out"] {
            #expect(okLine.keys.contains(key), "missing \(key)")
        }
        let notFound = try #require(objects.first { $0["request_id"] as? String == "nf-1" })
        #expect(notFound["status"] as? Int == 404)
        #expect(notFound["route"] is NSNull)
        #expect(!lines.joined().contains("secret=query"))
    }
}
