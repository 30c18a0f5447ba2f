import Foundation
import Gatehouse
import Testing

/// Requests the gateway answers itself (SPEC §7): status, JSON body, extra headers, and the
/// upstream never reached. Raw sockets where curl would tidy the request up first.
@Suite("Refusals") struct RefusalTests {
    private static func rawGET(_ target: String, port: Int, extraHeaders: String = "") async throws -> RawResponse {
        try await RawHTTPClient.exchange(
            port: port,
            bytes: "GET \(target) HTTP/1.1\r\nHost: gw\r\n\(extraHeaders)Connection: close\r\n\r\n",
            readTimeout: .seconds(5)
        )
    }

    @Test(
        "400 invalid_path / malformed_request, nothing forwarded",
        arguments: [
            ("/api/..%2f..%2fetc/passwd", "invalid_path"),
            ("/api/%2e%2e/%2e%2e/x", "invalid_path"),
            ("/api/a%00b", "invalid_path"),
            ("/api/a%0d%0aX-Injected:%20yes", "invalid_path"),
            ("/api/..;/admin", "invalid_path"),
            ("/api/%2e%2e%3bx/y", "invalid_path"),
            ("/api/a\\b", "invalid_path"),
            ("/api/%zz", "invalid_path"),
            ("/../api", "invalid_path"),
            ("http://127.0.0.1/api/x", "malformed_request"),
            ("*", "malformed_request"),
            ("api/x", "malformed_request"),
        ]
    )
    func badTargets(target: String, reason: String) async throws {
        try await GatewayFixture.with { gw in
            let raw = try await Self.rawGET(target, port: gw.port)
            #expect(raw.first?.status == 400, "\(target)")
            #expect(raw.first?.bodyString.contains(#""reason":"\#(reason)""#) == true, "\(raw.first?.bodyString ?? "")")
            #expect(raw.first?.header("Cache-Control") == "no-store")
            #expect(gw.upstream.received().isEmpty, "\(target) reached the upstream")
        }
    }

    @Test("404 no_route on unknown paths and segment-prefix lookalikes")
    func noRoute() async throws {
        try await GatewayFixture.with { gw in
            for target in ["/nothing", "/apix", "/mcp/githubx/y", "/healthz", "/readyz"] {
                let response = try await CurlClient.request(url: gw.url(target))
                #expect(response.status == 404, "\(target)")
                let body = response.bodyString
                #expect(body.contains(#""error":"not_found""#) && body.contains(#""reason":"no_route""#))
                #expect(response.header("X-Request-Id").map { body.contains($0) } == true)
            }
            #expect(gw.upstream.received().isEmpty)
        }
    }

    @Test("405 with Allow for a method the route does not list")
    func methodNotAllowed() async throws {
        try await GatewayFixture.with { gw in
            let response = try await CurlClient.request(method: "DELETE", url: gw.url("/limited/x"))
            #expect(response.status == 405)
            #expect(response.header("Allow") == "GET, POST, HEAD")
            #expect(response.bodyString.contains(#""reason":"method_not_allowed""#))
            #expect(gw.upstream.received().isEmpty)
            let status = try await CurlClient.request(method: "HEAD", url: gw.url("/limited/x")).status
            #expect(status == 200)
        }
    }

    @Test("413 body_too_large for a declared and for a streamed (chunked) body")
    func bodyTooLarge() async throws {
        try await GatewayFixture.with(configure: { $0.server.maxBodyBytes = 64 * 1024 }) { gw in
            let declared = try await CurlClient.request(
                method: "POST",
                url: gw.url("/api/upload"),
                body: .pattern(bytes: 65 * 1024)
            )
            #expect(declared.status == 413)
            #expect(declared.bodyString.contains(#""reason":"body_too_large""#))
            #expect(gw.upstream.received().isEmpty)

            let streamed = try await CurlClient.request(
                method: "POST",
                url: gw.url("/api/upload"),
                body: .pattern(bytes: 1024 * 1024, chunked: true)
            )
            // The upload had started upstream; the gateway cut it at the limit.
            #expect(streamed.status == 413 || !streamed.succeeded)
            #expect(gw.upstream.received().allSatisfy { $0.bodyBytes <= 64 * 1024 + 65536 && !$0.bodyComplete })
            let exact = try await CurlClient.request(
                method: "POST", url: gw.url("/api/upload"), body: .pattern(bytes: 64 * 1024))
            #expect(exact.status == 200)
        }
    }

    @Test("413 headers_too_large past max_header_bytes; the process keeps serving")
    func headersTooLarge() async throws {
        try await GatewayFixture.with(configure: { $0.server.maxHeaderBytes = 2048 }) { gw in
            let big = String(repeating: "a", count: 3000)
            let raw = try await Self.rawGET("/api/x", port: gw.port, extraHeaders: "X-Big: \(big)\r\n")
            #expect(raw.first?.status == 413)
            #expect(raw.first?.bodyString.contains(#""reason":"headers_too_large""#) == true)
            let huge = String(repeating: "b", count: 100_000)
            let raw2 = try await Self.rawGET("/api/x", port: gw.port, extraHeaders: "X-Huge: \(huge)\r\n")
            #expect(raw2.first?.status == 413)
            #expect(gw.upstream.received().isEmpty)
            let status = try await CurlClient.request(url: gw.url("/api/x")).status
            #expect(status == 200)
        }
    }

    @Test("unparseable requests get 400 malformed_request and a closed connection")
    func garbage() async throws {
        try await GatewayFixture.with { gw in
            let raw = try await RawHTTPClient.exchange(
                port: gw.port,
                bytes: "NOT HTTP AT ALL\r\n\r\n",
                readTimeout: .seconds(5)
            )
            #expect(raw.first?.status == 400)
            #expect(raw.closedByPeer)
            #expect(gw.upstream.received().isEmpty)
        }
    }

    @Test("slow-loris: a head that does not complete within header_timeout is cut off")
    func slowLoris() async throws {
        try await GatewayFixture.with(configure: { $0.server.headerTimeout = .milliseconds(500) }) { gw in
            let slices = ["GET /api/x HTTP/1.1\r\n"] + (0..<20).map { "X-Drip-\($0): 1\r\n" }
            let result = try await RawHTTPClient.slowWrite(
                port: gw.port,
                slices: slices,
                delay: .milliseconds(100),
                readTimeout: .seconds(5)
            )
            #expect(result.closedByPeer)
            #expect(result.slicesSent < slices.count)
            if let after = result.peerClosedAfter { #expect(after < .seconds(2)) }
            #expect(gw.upstream.received().isEmpty)
        }
    }

    @Test("pipelined requests are answered in order on one connection")
    func pipelining() async throws {
        try await GatewayFixture.with { gw in
            let requests =
                "GET /api/one HTTP/1.1\r\nHost: x\r\n\r\n" + "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
                + "POST /api/three HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                + "GET /api/four HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let raw = try await RawHTTPClient.exchange(port: gw.port, bytes: requests, readTimeout: .seconds(5))
            let statuses = raw.responses().map(\.status)
            #expect(statuses == [200, 404, 200, 200])
            #expect(gw.upstream.received().map(\.uri) == ["/one", "/three", "/four"])
            #expect(raw.closedByPeer)
        }
    }

    @Test("upstream connections are kept alive and reused")
    func upstreamKeepAlive() async throws {
        try await GatewayFixture.with { gw in
            for index in 0..<20 {
                let status = try await CurlClient.request(url: gw.url("/api/n\(index)")).status
                #expect(status == 200)
            }
            #expect(gw.upstream.connectionsAccepted() <= 2)
        }
    }
}
