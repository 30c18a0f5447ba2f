import Foundation
import Testing

/// Checks the test harness itself against TestUpstream directly (no gateway), so gateway
/// test failures can be trusted to be about the gateway.
@Suite("Harness")
struct HarnessTests {
    @Test("SHA-256 matches the FIPS 180-4 vectors, fed in any chunking")
    func sha256KnownVectors() {
        #expect(
            SHA256.hexDigest(of: Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            SHA256.hexDigest(of: Array("abc".utf8))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        )
        #expect(
            SHA256.hexDigest(of: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
        // Odd-sized updates cross block boundaries at every offset.
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        var hasher = SHA256()
        var offset = 0
        while offset < million.count {
            let n = min(997, million.count - offset)
            hasher.update(million[offset..<offset + n])
            offset += n
        }
        #expect(hasher.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("The deterministic pattern does not depend on chunking")
    func patternIsChunkIndependent() {
        var whole = DeterministicPattern()
        var pieces = DeterministicPattern()
        let expected = whole.next(10_000)
        var actual: [UInt8] = []
        for size in [1, 3, 8, 13, 64, 5, 100, 7, 9799] {
            actual += pieces.next(size)
        }
        #expect(actual == expected)
        #expect(SHA256.hexDigest(of: expected) == DeterministicPattern.sha256Hex(bytes: 10_000))
    }

    @Test("Echo round trip through curl, under a rewritten prefix")
    func echoRoundTrip() async throws {
        try await TestUpstream.with { upstream in
            let body = Array("hello, upstream".utf8)
            let response = try await CurlClient.request(
                method: "POST",
                url: upstream.baseURL + "/some/prefix/echo?q=1&r=%20",
                headers: [("X-First", "1"), ("x-second", "two"), ("X-Empty", "")],
                body: .bytes(body),
                timeout: .seconds(10)
            )
            #expect(response.succeeded, "\(response.curlError ?? "")")
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json")
            #expect(response.bodyKept)
            let echo = try JSONDecoder().decode(EchoReply.self, from: Data(response.body))
            #expect(echo.method == "POST")
            #expect(echo.uri == "/some/prefix/echo?q=1&r=%20")
            #expect(echo.bodyBytes == body.count)
            #expect(echo.bodySHA256 == SHA256.hexDigest(of: body))
            #expect(echo.header("X-EMPTY") == "")
            let names = echo.headers.map { $0[0] }
            let first = try #require(names.firstIndex(of: "X-First"))
            let second = try #require(names.firstIndex(of: "x-second"))
            #expect(first < second, "header order and case are preserved")

            let recorded = upstream.received()
            #expect(recorded.count == 1)
            let request = try #require(recorded.first)
            #expect(request.method == "POST")
            #expect(request.uri == "/some/prefix/echo?q=1&r=%20")
            #expect(request.bodyComplete)
            #expect(request.bodyBytes == body.count)
            #expect(request.bodySHA256 == echo.bodySHA256)
            #expect(request.header("x-FIRST") == "1")
            upstream.clearReceived()
            #expect(upstream.received().isEmpty)
        }
    }

    @Test("Raw client: single exchange, pipelining and early stop")
    func rawClient() async throws {
        try await TestUpstream.with { upstream in
            let single = try await RawHTTPClient.exchange(
                port: upstream.port,
                bytes: "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                readTimeout: .seconds(5)
            )
            #expect(single.status == 200)
            #expect(single.closedByPeer)
            #expect(single.header("CONTENT-LENGTH") == String(single.body.count))
            let echo = try JSONDecoder().decode(EchoReply.self, from: Data(single.body))
            #expect(echo.headers == [["Host", "x"], ["Connection", "close"]])

            let pipelined = try await RawHTTPClient.exchange(
                port: upstream.port,
                bytes: "GET /a/echo HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /sse?events=2&interval_ms=10 HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "HEAD /status/404 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                readTimeout: .seconds(5)
            )
            #expect(pipelined.closedByPeer)
            let responses = pipelined.responses(headResponses: [2])
            try #require(responses.count == 3)
            #expect(responses.map(\.status) == [200, 200, 404])
            #expect(responses[1].framing == .chunked)
            #expect(responses[1].bodyString == "data: event 1\n\ndata: event 2\n\n")
            #expect(responses[2].body.isEmpty)
            #expect(responses.allSatisfy { $0.complete })

            // Keep-alive server: stop once the response is complete instead of waiting.
            let early = try await RawHTTPClient.exchange(
                port: upstream.port,
                bytes: "GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n",
                readTimeout: .seconds(5),
                stopAfterResponses: 1
            )
            #expect(early.status == 204)
            #expect(!early.closedByPeer)
            #expect(early.elapsed < .seconds(2))
            #expect(early.first?.framing == ParsedResponse.Framing.none)

            let continued = try await RawHTTPClient.exchange(
                port: upstream.port,
                bytes: "POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
                    + "Connection: close\r\n\r\nhello",
                readTimeout: .seconds(5)
            )
            #expect(continued.status == 100, "the first response is the interim one")
            #expect(continued.responses().map(\.status) == [100, 200])
            let uploadReply = try #require(continued.responses().last)
            #expect(uploadReply.bodyString.contains(SHA256.hexDigest(of: Array("hello".utf8))))

            let timedOut = try await RawHTTPClient.exchange(
                port: upstream.port,
                bytes: "GET /status/418 HTTP/1.1\r\nHost: x\r\n\r\n",
                readTimeout: .milliseconds(300)
            )
            #expect(timedOut.status == 418)
            #expect(timedOut.bodyString == "status 418\n")
            #expect(!timedOut.closedByPeer)
        }
    }

    @Test("SSE events arrive spaced by the interval")
    func sseArrivalSpacing() async throws {
        try await TestUpstream.with { upstream in
            let response = try await CurlClient.request(
                url: upstream.baseURL + "/sse?events=5&interval_ms=100",
                timeout: .seconds(10)
            )
            #expect(response.succeeded)
            #expect(response.header("Content-Type") == "text/event-stream")
            #expect(response.header("Content-Length") == nil)
            #expect(response.header("Transfer-Encoding") == "chunked")
            #expect(response.bodyString == (1...5).map { "data: event \($0)\n\n" }.joined())
            try #require(response.chunkArrivals.count == 5, "each event is its own write: \(response.chunkSizes)")
            for gap in response.chunkGaps {
                #expect(gap >= .milliseconds(50), "events must not be batched: \(response.chunkGaps)")
            }
        }
    }

    @Test("5 MB download and upload match the pattern digest", arguments: [false, true])
    func largeBodies(chunked: Bool) async throws {
        try await TestUpstream.with { upstream in
            let size = 5 * 1024 * 1024
            let expected = TestUpstream.downloadPattern(bytes: size).sha256Hex

            let download = try await CurlClient.request(
                url: upstream.baseURL + "/download?bytes=\(size)" + (chunked ? "&chunked=1" : ""),
                timeout: .seconds(30)
            )
            #expect(download.succeeded, "\(download.curlError ?? "")")
            #expect(download.bodyBytes == size)
            #expect(download.bodySHA256 == expected)
            #expect(!download.bodyKept)
            #expect(download.header("Content-Length") == (chunked ? nil : String(size)))

            let upload = try await CurlClient.request(
                method: "PUT",
                url: upstream.baseURL + "/upload",
                body: .pattern(bytes: size, chunked: chunked),
                timeout: .seconds(30)
            )
            #expect(upload.succeeded, "\(upload.curlError ?? "")")
            #expect(upload.uploadedBytes == size)
            let reply = try JSONDecoder().decode(UploadReply.self, from: Data(upload.body))
            #expect(reply.bytes == size)
            #expect(reply.sha256 == expected)
            let recorded = try #require(upstream.received().last)
            #expect(recorded.method == "PUT")
            #expect(recorded.bodySHA256 == expected)
            #expect(recorded.header("Transfer-Encoding") == (chunked ? "chunked" : nil))
            #expect(recorded.header("Expect") == nil)
        }
    }

    @Test("A download to a stalled reader stays bounded by backpressure")
    func downloadBackpressure() async throws {
        try await TestUpstream.with { upstream in
            var options = CurlClient.Options()
            options.receiveBufferSize = 16 * 1024
            options.delayPerChunk = .milliseconds(200)
            let response = try await CurlClient.request(
                url: upstream.baseURL + "/download?bytes=\(500 * 1024 * 1024)",
                timeout: .milliseconds(1500),
                options: options
            )
            #expect(response.timedOut, "\(response.curlError ?? "success")")
            #expect(response.finishedAt - response.startedAt < .seconds(3))
            #expect(response.bodyBytes < 1024 * 1024)
            // Unpaced, the upstream would have produced ~100+ MB in this time.
            #expect(upstream.downloadBytesSent() < 16 * 1024 * 1024, "sent \(upstream.downloadBytesSent())")
            #expect(await eventually { upstream.openConnections() == 0 })
        }
    }

    @Test("drop-mid-stream surfaces as a curl error")
    func dropMidStream() async throws {
        try await TestUpstream.with { upstream in
            let response = try await CurlClient.request(
                url: upstream.baseURL + "/drop-mid-stream",
                timeout: .seconds(10)
            )
            #expect(response.status == 200)
            #expect(response.curlCode == 18, "CURLE_PARTIAL_FILE, got \(response.curlError ?? "success")")
            #expect(response.bodyBytes == 1000)
        }
    }

    @Test("Status, hop-by-hop and slow headers")
    func statusHopByHopAndSlowHeaders() async throws {
        try await TestUpstream.with { upstream in
            let noContent = try await CurlClient.request(url: upstream.baseURL + "/x/status/204")
            #expect(noContent.status == 204)
            #expect(noContent.bodyBytes == 0)
            let unavailable = try await CurlClient.request(url: upstream.baseURL + "/status/503")
            #expect(unavailable.status == 503)
            #expect(unavailable.bodyString == "status 503\n")

            let hop = try await RawHTTPClient.exchange(
                port: upstream.port,
                bytes: "GET /hop-by-hop HTTP/1.1\r\nHost: x\r\n\r\n",
                readTimeout: .seconds(5)
            )
            #expect(hop.status == 200)
            #expect(hop.closedByPeer, "Connection: close must end the connection")
            #expect(hop.header("Connection") == "close, X-Hop-Secret")
            for name in ["X-Hop-Secret", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade", "X-Kept"] {
                #expect(hop.header(name) != nil, "\(name)")
            }
            #expect(hop.bodyString == "hop-by-hop\n")

            let slow = try await CurlClient.request(url: upstream.baseURL + "/slow-headers?delay_ms=300")
            #expect(slow.status == 200)
            let headersAt = try #require(slow.headersAt)
            #expect(headersAt - slow.startedAt >= .milliseconds(250))
        }
    }

    @Test("Long-lived streams are counted and released when the client leaves")
    func openStreamsTracking() async throws {
        try await TestUpstream.with { upstream in
            let forever = try await CurlClient.request(
                url: upstream.baseURL + "/sse-forever?interval_ms=50",
                timeout: .seconds(10),
                options: {
                    var options = CurlClient.Options()
                    options.abortAfterBytes = 3 * "data: event 1\n\n".utf8.count
                    return options
                }()
            )
            #expect(forever.abortedByClient)
            #expect(forever.curlCode == 23)
            #expect(await eventually { upstream.openStreams() == 0 })

            async let hanging = CurlClient.request(
                url: upstream.baseURL + "/headers-then-hang",
                timeout: .milliseconds(800)
            )
            #expect(await eventually { upstream.openStreams() == 1 })
            let hung = try await hanging
            #expect(hung.status == 200)
            #expect(hung.bodyString == "x")
            #expect(hung.curlCode == 28, "CURLE_OPERATION_TIMEDOUT")
            #expect(hung.timedOut)
            #expect(await eventually { upstream.openStreams() == 0 })
            #expect(await eventually { upstream.openConnections() == 0 })
            #expect(upstream.connectionsAccepted() == 2)
        }
    }

    @Test("Slow writer: a request dribbled in slices is still served")
    func slowWriter() async throws {
        try await TestUpstream.with { upstream in
            let result = try await RawHTTPClient.slowWrite(
                port: upstream.port,
                slices: ["GET /ec", "ho HTTP/1.1\r\nHo", "st: x\r\nConnection: close\r\n", "\r\n"],
                delay: .milliseconds(50),
                readTimeout: .seconds(5)
            )
            #expect(result.slicesSent == 4)
            #expect(result.closedByPeer)
            #expect(result.response.status == 200)
            let closedAfter = try #require(result.peerClosedAfter)
            #expect(closedAfter >= .milliseconds(150))
            #expect(upstream.received().first?.uri == "/echo")
        }
    }

    @Test("Resident memory is readable")
    func residentMemory() {
        #expect(ProcessMemory.residentBytes() > 1024 * 1024)
        #expect(ProcessMemory.peakResidentBytes() >= ProcessMemory.residentBytes() / 2)
    }
}
