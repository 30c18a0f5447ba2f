import Foundation
import Gatehouse
import Testing

/// Upstream failures and client misbehaviour: the gateway answers with the right status
/// (or cuts the connection), never loses the process, and never leaks an upstream transfer.
@Suite("Failures") struct FailureTests {
    @Test("refused upstream connection → 502 upstream_unavailable", arguments: GatewayFixture.upstreamThreadModes)
    func upstreamRefused(upstreamThreads: Int) async throws {
        try await GatewayFixture.with(upstreamThreads: upstreamThreads) { gw in
            let response = try await CurlClient.request(url: gw.url("/dead/x"))
            #expect(response.status == 502)
            #expect(response.header("Content-Type") == "application/json")
            #expect(response.bodyString.contains(#""error":"upstream_unavailable""#))
            #expect(response.bodyString.contains(#""request_id":""#))
            // The process is still serving.
            let status = try await CurlClient.request(url: gw.url("/api/x")).status
            #expect(status == 200)
        }
    }

    @Test("unresolvable upstream host → 502")
    func upstreamDNSFailure() async throws {
        try await GatewayFixture.with(configure: { config in
            config.routes.append(
                RouteConfig(
                    name: "nxdomain",
                    path: "/nx",
                    upstream: UpstreamURL(scheme: "http", host: "gatehouse-test.invalid", port: 80, basePath: ""),
                    auth: .none
                )
            )
        }) { gw in
            let response = try await CurlClient.request(url: gw.url("/nx"))
            #expect(response.status == 502)
        }
    }

    @Test(
        "no response head within upstream_response_timeout → 504 upstream_timeout",
        arguments: GatewayFixture.upstreamThreadModes)
    func upstreamTimeout(upstreamThreads: Int) async throws {
        try await GatewayFixture.with(
            upstreamThreads: upstreamThreads, configure: { $0.server.upstreamResponseTimeout = .milliseconds(300) }
        ) { gw in
            let started = ContinuousClock.now
            let response = try await CurlClient.request(url: gw.url("/api/slow-headers?delay_ms=3000"))
            #expect(response.status == 504)
            #expect(response.bodyString.contains(#""error":"upstream_timeout""#))
            #expect(ContinuousClock.now - started < .seconds(2.5))
        }
    }

    @Test(
        "upstream dropping mid-stream closes the client connection, no fabricated status",
        arguments: GatewayFixture.upstreamThreadModes)
    func midStreamDrop(upstreamThreads: Int) async throws {
        try await GatewayFixture.with(upstreamThreads: upstreamThreads) { gw in
            let response = try await CurlClient.request(url: gw.url("/api/drop-mid-stream"))
            #expect(response.status == 200)
            #expect(response.bodyBytes == 1000)
            #expect(!response.succeeded)  // curl saw the connection end before Content-Length
            let status = try await CurlClient.request(url: gw.url("/api/x")).status
            #expect(status == 200)
        }
    }

    @Test("stream_idle_timeout ends a stream on which nothing moves", arguments: GatewayFixture.upstreamThreadModes)
    func streamIdleTimeout(upstreamThreads: Int) async throws {
        try await GatewayFixture.with(
            upstreamThreads: upstreamThreads, configure: { $0.server.streamIdleTimeout = .milliseconds(400) }
        ) { gw in
            let started = ContinuousClock.now
            let response = try await CurlClient.request(url: gw.url("/api/headers-then-hang"), timeout: .seconds(10))
            #expect(response.status == 200)
            #expect(!response.succeeded)
            #expect(!response.timedOut)
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(await eventually { gw.upstream.openStreams() == 0 })
        }
    }

    @Test("a client that goes away cancels the upstream transfer", arguments: GatewayFixture.upstreamThreadModes)
    func clientDisconnectCancelsUpstream(upstreamThreads: Int) async throws {
        try await GatewayFixture.with(upstreamThreads: upstreamThreads) { gw in
            var options = CurlClient.Options()
            options.abortAfterBytes = 1
            let response = try await CurlClient.request(
                url: gw.url("/api/sse-forever?interval_ms=100"), options: options)
            #expect(response.abortedByClient)
            #expect(await eventually { gw.upstream.openStreams() == 0 }, "upstream stream still open")
        }
    }

    @Test("hop-by-hop request headers and those named in Connection never reach upstream")
    func hopByHopRequestHeaders() async throws {
        try await GatewayFixture.with { gw in
            let request =
                "GET /api/echo HTTP/1.1\r\nHost: gw.test\r\nConnection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\n"
                + "Keep-Alive: timeout=9\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\nUpgrade: websocket\r\n"
                + "X-User-Id: spoofed\r\nx_user_role: admin\r\nX-USER-SCOPES: admin:users\r\nAuthorization: Bearer t\r\n"
                + "X-Kept: yes\r\n\r\n"
            let raw = try await RawHTTPClient.exchange(
                port: gw.port,
                bytes: request,
                readTimeout: .seconds(5),
                stopAfterResponses: 1
            )
            #expect(raw.first?.status == 200)
            let seen = try #require(gw.upstream.received().last)
            for name in [
                "X-Secret-Hop", "Keep-Alive", "TE", "Proxy-Authorization", "Upgrade", "X-User-Id", "x_user_role",
                "X-User-Scopes", "Authorization",
            ] {
                #expect(seen.header(name) == nil, "\(name) reached the upstream")
            }
            #expect(seen.header("Connection")?.lowercased().contains("x-secret-hop") != true)
            #expect(seen.header("X-Kept") == "yes")
            #expect(seen.header("X-Forwarded-Host") == "gw.test")
        }
    }

    @Test("hop-by-hop response headers never reach the client")
    func hopByHopResponseHeaders() async throws {
        try await GatewayFixture.with { gw in
            let response = try await CurlClient.request(url: gw.url("/api/hop-by-hop"))
            #expect(response.status == 200)
            for name in ["X-Hop-Secret", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"] {
                #expect(response.header(name) == nil, "\(name) reached the client")
            }
            #expect(response.header("X-Kept") == "yes")
            // The upstream's `Connection: close` is about its own connection, not ours.
            #expect(response.header("Connection") == nil)
        }
    }

    @Test("X-Forwarded-For from an untrusted peer is replaced, from a trusted one extended")
    func forwardedForTrust() async throws {
        try await GatewayFixture.with(configure: { $0.server.trustedProxies = [] }) { gw in
            _ = try await CurlClient.request(
                url: gw.url("/api/x"),
                headers: [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Host", "evil"), ("X-Forwarded-Proto", "https")]
            )
            let seen = try #require(gw.upstream.received().last)
            #expect(seen.header("X-Forwarded-For") == "127.0.0.1")
            #expect(seen.header("X-Forwarded-Proto") == "http")
            #expect(seen.header("X-Forwarded-Host") == "127.0.0.1:\(gw.port)")
        }
        try await GatewayFixture.with { gw in  // default trusted_proxies = 127.0.0.1/32
            _ = try await CurlClient.request(url: gw.url("/api/x"), headers: [("X-Forwarded-For", "203.0.113.7")])
            #expect(gw.upstream.received().last?.header("X-Forwarded-For") == "203.0.113.7, 127.0.0.1")
        }
    }
}
