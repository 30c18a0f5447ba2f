import Foundation
import Gatehouse
import Testing

/// The gateway as a client and an upstream see it: real sockets on 127.0.0.1, real libcurl.
@Suite("Forwarding") struct ForwardingTests {
    @Test(
        "method, rewritten path, raw query and body reach the upstream", arguments: GatewayFixture.upstreamThreadModes)
    func forwardsRequest(upstreamThreads: Int) async throws {
        try await GatewayFixture.with(upstreamThreads: upstreamThreads) { gw in
            let body = Array("hello upstream".utf8)
            let response = try await CurlClient.request(
                method: "PUT",
                url: gw.url("/mcp/github/repos/x?b=2&a=%20&z"),
                headers: [
                    ("Content-Type", "text/plain"),
                    ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ],
                body: .bytes(body)
            )
            #expect(response.status == 200)
            let seen = try #require(gw.upstream.received().last)
            #expect(seen.method == "PUT")
            #expect(seen.uri == "/mcp/repos/x?b=2&a=%20&z")
            #expect(seen.bodyBytes == body.count)
            #expect(seen.bodySHA256 == SHA256.hexDigest(of: body))
            #expect(seen.header("Content-Type") == "text/plain")
            #expect(seen.header("traceparent") == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            #expect(seen.header("X-Forwarded-For") == "127.0.0.1")
            #expect(seen.header("X-Forwarded-Proto") == "http")
            #expect(seen.header("X-Forwarded-Host") == "127.0.0.1:\(gw.port)")
            let requestID = try #require(response.header("X-Request-Id"))
            #expect(seen.header("X-Request-Id") == requestID)
        }
    }

    @Test("the normalised path is what the upstream receives")
    func normalisedPathForwarded() async throws {
        try await GatewayFixture.with { gw in
            let raw = try await RawHTTPClient.exchange(
                port: gw.port,
                bytes: "GET /api//a/./b/../%63%7e?q=%2F HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                readTimeout: .seconds(5)
            )
            #expect(raw.first?.status == 200)
            #expect(gw.upstream.received().last?.uri == "/a/c~?q=%2F")
        }
    }

    @Test("a client X-Request-Id that is well formed is kept end to end")
    func requestIDPassthrough() async throws {
        try await GatewayFixture.with { gw in
            let response = try await CurlClient.request(
                url: gw.url("/api/x"), headers: [("X-Request-Id", "req-42.a:b_c")])
            #expect(response.header("X-Request-Id") == "req-42.a:b_c")
            #expect(gw.upstream.received().last?.header("X-Request-Id") == "req-42.a:b_c")
        }
    }

    @Test("Server-Sent Events reach the client event by event", arguments: GatewayFixture.upstreamThreadModes)
    func sseIsStreamedIncrementally(upstreamThreads: Int) async throws {
        try await GatewayFixture.with(upstreamThreads: upstreamThreads) { gw in
            let response = try await CurlClient.request(url: gw.url("/api/sse?events=5&interval_ms=200"))
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "text/event-stream")
            #expect(response.bodyString.components(separatedBy: "data: event").count == 6)
            // Each event must arrive on its own, ~200 ms after the previous one: a buffering
            // proxy would deliver them together at the end.
            let gaps = response.chunkGaps
            #expect(response.chunkArrivals.count >= 5)
            let spaced = gaps.filter { $0 >= .milliseconds(120) }.count
            #expect(spaced >= 4, "gaps: \(gaps)")
            if let headersAt = response.headersAt, let first = response.chunkArrivals.first {
                #expect(first - headersAt < .milliseconds(150))
            }
        }
    }

    @Test("50 MB upload streams through with matching SHA-256 and flat memory")
    func largeUpload() async throws {
        try await GatewayFixture.with(configure: { $0.server.maxBodyBytes = 64 * 1024 * 1024 }) { gw in
            let size = 50 * 1024 * 1024
            let before = ProcessMemory.residentBytes()
            let response = try await CurlClient.request(
                method: "POST",
                url: gw.url("/api/upload"),
                body: .pattern(bytes: size),
                timeout: .seconds(120)
            )
            let growth = ProcessMemory.residentBytes() - before
            #expect(response.status == 200)
            let reply = try JSONDecoder().decode(UploadReply.self, from: Data(response.body))
            #expect(reply.bytes == size)
            #expect(reply.sha256 == DeterministicPattern.sha256Hex(bytes: size))
            // Bounded memory, measured where the gateway holds body bytes (process RSS is
            // shared with every test running in parallel, so it is only reported).
            #expect(ForwardingStatistics.peakQueuedRequestBytes <= 1024 * 1024)
            print(
                "50 MB upload: peak queued \(ForwardingStatistics.peakQueuedRequestBytes) bytes; RSS grew \(growth) bytes"
            )
        }
    }

    @Test("50 MB download streams through with matching SHA-256 and flat memory", arguments: [false, true])
    func largeDownload(chunked: Bool) async throws {
        try await GatewayFixture.with { gw in
            let size = 50 * 1024 * 1024
            let before = ProcessMemory.residentBytes()
            let response = try await CurlClient.request(
                url: gw.url("/api/download?bytes=\(size)\(chunked ? "&chunked=1" : "")"),
                timeout: .seconds(120)
            )
            let growth = ProcessMemory.residentBytes() - before
            #expect(response.status == 200)
            #expect(response.bodyBytes == size)
            #expect(response.bodySHA256 == TestUpstream.downloadPattern(bytes: size).sha256Hex)
            #expect(ForwardingStatistics.peakQueuedResponseBytes <= 1024 * 1024)
            print(
                "50 MB download: peak queued \(ForwardingStatistics.peakQueuedResponseBytes) bytes; RSS grew \(growth) bytes"
            )
            if chunked {
                #expect(response.header("Content-Length") == nil)
            } else {
                #expect(response.header("Content-Length") == String(size))
            }
        }
    }

    @Test(
        "a slow client slows the upstream read instead of filling memory", arguments: GatewayFixture.upstreamThreadModes
    )
    func backpressureOnSlowClient(upstreamThreads: Int) async throws {
        try await GatewayFixture.with(upstreamThreads: upstreamThreads) { gw in
            var options = CurlClient.Options()
            options.receiveBufferSize = 16 * 1024
            options.delayPerChunk = .milliseconds(2)
            options.abortAfterBytes = 2 * 1024 * 1024
            let response = try await CurlClient.request(
                url: gw.url("/api/download?bytes=\(200 * 1024 * 1024)"),
                timeout: .seconds(60),
                options: options
            )
            #expect(response.abortedByClient)
            // The upstream may only have run ahead by socket buffers plus the gateway's
            // bounded queue, nowhere near the 200 MB it would send to a fast reader.
            let sent = gw.upstream.downloadBytesSent()
            #expect(sent < 24 * 1024 * 1024, "upstream sent \(sent) bytes to a client that read ~2 MB")
        }
    }

    @Test("chunked request bodies are forwarded", arguments: GatewayFixture.upstreamThreadModes)
    func chunkedUpload(upstreamThreads: Int) async throws {
        try await GatewayFixture.with(upstreamThreads: upstreamThreads) { gw in
            let size = 3 * 1024 * 1024 + 17
            let response = try await CurlClient.request(
                method: "POST",
                url: gw.url("/api/upload"),
                body: .pattern(bytes: size, chunked: true)
            )
            #expect(response.status == 200)
            let reply = try JSONDecoder().decode(UploadReply.self, from: Data(response.body))
            #expect(reply.bytes == size)
            #expect(reply.sha256 == DeterministicPattern.sha256Hex(bytes: size))
        }
    }

    @Test("upstream status codes and bodiless responses pass through", arguments: [201, 204, 304, 404, 418, 500, 503])
    func statusPassthrough(status: Int) async throws {
        try await GatewayFixture.with { gw in
            let response = try await CurlClient.request(url: gw.url("/api/status/\(status)"))
            #expect(response.status == status)
            if status == 204 || status == 304 { #expect(response.bodyBytes == 0) }
        }
    }

    @Test("HEAD gets the upstream's head and no body")
    func headRequest() async throws {
        try await GatewayFixture.with { gw in
            let raw = try await RawHTTPClient.exchange(
                port: gw.port,
                bytes:
                    "HEAD /api/download?bytes=1000 HTTP/1.1\r\nHost: x\r\n\r\nGET /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                readTimeout: .seconds(5)
            )
            let responses = raw.responses(headResponses: [0])
            #expect(responses.count == 2)
            #expect(responses.first?.status == 200)
            #expect(responses.first?.header("Content-Length") == "1000")
            #expect(responses.first?.body.isEmpty == true)
            #expect(responses.last?.status == 200)
            #expect(gw.upstream.received().first?.method == "HEAD")
        }
    }
}
