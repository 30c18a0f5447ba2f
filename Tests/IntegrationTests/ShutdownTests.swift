import Foundation
import Gatehouse
import Testing

/// SIGTERM on the real binary: stop accepting at once, let in-flight requests finish
/// within `shutdown_grace`, cut what is left, exit 0.
@Suite("Shutdown") struct ShutdownTests {
    private func startGateway(
        upstream: TestUpstream,
        grace: String,
        denials: String = "off"
    ) async throws -> (GatehouseProcess.Running, Int) {
        let port = try await GatewayFixture.closedPort()
        let path = try GatehouseProcess.writeOpenRouteConfig(
            port: port, upstreamPort: upstream.port, serverLines: ["shutdown_grace = \"\(grace)\""], denials: denials)
        let running = try GatehouseProcess.start(["serve", "--config", path])
        let up = await eventually(timeout: .seconds(10)) {
            (try? await CurlClient.request(url: "http://127.0.0.1:\(port)/x", timeout: .seconds(2)))?.status == 200
        }
        #expect(up, "gateway did not come up: \(running.stderrSoFar())")
        return (running, port)
    }

    @Test("an open SSE stream finishes within the grace period; new connections are refused")
    func streamFinishesDuringGrace() async throws {
        try await TestUpstream.with { upstream in
            let (running, port) = try await startGateway(upstream: upstream, grace: "10s")
            async let stream = CurlClient.request(url: "http://127.0.0.1:\(port)/sse?events=6&interval_ms=250")
            #expect(await eventually { upstream.received().contains { $0.uri.hasPrefix("/sse") } })
            kill(running.pid, SIGTERM)
            try await Task.sleep(for: .milliseconds(200))
            let late = try await CurlClient.request(url: "http://127.0.0.1:\(port)/x", timeout: .seconds(3))
            #expect(late.status == 0, "a new connection was accepted after SIGTERM")
            let finished = try await stream
            #expect(finished.status == 200)
            #expect(finished.succeeded)
            #expect(finished.bodyString.components(separatedBy: "data: event").count == 7)
            let result = try await running.stop(signal: SIGTERM, timeout: .seconds(15))
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    @Test("a stream longer than the grace period is cut at the deadline; exit 0")
    func streamCutAfterGrace() async throws {
        try await TestUpstream.with { upstream in
            let (running, port) = try await startGateway(upstream: upstream, grace: "500ms")
            async let stream = CurlClient.request(
                url: "http://127.0.0.1:\(port)/sse-forever?interval_ms=100", timeout: .seconds(20))
            #expect(await eventually { upstream.openStreams() == 1 })
            let stoppedAt = ContinuousClock.now
            kill(running.pid, SIGTERM)
            let cut = try await stream
            #expect(!cut.succeeded)
            #expect(ContinuousClock.now - stoppedAt < .seconds(5))
            let result = try await running.stop(signal: SIGTERM, timeout: .seconds(15))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(await eventually { upstream.openStreams() == 0 })
        }
    }

    @Test("SIGTERM with an SSE stream and a slow upload open: both finish, exit 0, every denial on disk")
    func streamAndSlowUpload() async throws {
        let folder = try TempFolder("shutdown")
        let denials = folder.file("denials.jsonl")
        try await TestUpstream.with { upstream in
            let (running, port) = try await startGateway(upstream: upstream, grace: "20s", denials: denials)
            for index in 0..<25 {
                let refused = try await CurlClient.request(url: "http://127.0.0.1:\(port)/%2e%2e/\(index)/..;")
                #expect(refused.status == 400)
            }
            var slow = CurlClient.Options()
            slow.uploadBufferSize = 16 * 1024
            slow.uploadDelayPerChunk = .milliseconds(20)
            let size = 1024 * 1024
            async let upload = CurlClient.request(
                method: "POST",
                url: "http://127.0.0.1:\(port)/upload",
                body: .pattern(bytes: size),
                timeout: .seconds(30),
                options: slow
            )
            async let stream = CurlClient.request(url: "http://127.0.0.1:\(port)/sse?events=8&interval_ms=150")
            #expect(await eventually { upstream.received().count >= 2 })
            kill(running.pid, SIGTERM)
            let uploaded = try await upload
            #expect(uploaded.status == 200, "\(uploaded.curlError ?? "")")
            let reply = try JSONDecoder().decode(UploadReply.self, from: Data(uploaded.body))
            #expect(reply.bytes == size)
            #expect(reply.sha256 == DeterministicPattern.sha256Hex(bytes: size))
            let streamed = try await stream
            #expect(streamed.succeeded)
            let result = try await running.stop(signal: SIGTERM, timeout: .seconds(25))
            #expect(result.status == 0, "\(result.stderr)")
            let lines = try String(contentsOfFile: denials, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 25)
        }
    }
}
