import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One request as the upstream saw it. Recorded when the head arrives and completed when
/// the body ends (or the connection dies first, leaving `bodyComplete == false`).
struct RecordedRequest: Sendable {
    /// Sequential per accepted TCP connection (starting at 1), so tests can tell whether
    /// the gateway reused an upstream connection.
    let connectionID: Int
    let method: String
    /// The request target exactly as received (no normalisation).
    let uri: String
    /// Header fields in wire order, names case-preserved.
    let headers: [(String, String)]
    var bodyBytes: Int
    var bodySHA256: String
    var bodyComplete: Bool
    /// When the request head was decoded.
    let arrivedAt: ContinuousClock.Instant

    /// First value of a header, name compared case-insensitively.
    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
}

/// An in-process HTTP/1.1 origin server on 127.0.0.1 with endpoints that exercise the
/// gateway's streaming, framing and failure paths. Routes match on the last path
/// segment(s), so any prefix a gateway route adds or rewrites does not matter:
///
/// - `…/echo` and anything unmatched: 200 JSON describing the request (see `EchoReply`).
/// - `…/sse?events=N&interval_ms=M`: N `data: event i\n\n` events (i = 1…N), the first
///   right after the headers, then one every M ms, chunked, then the end.
/// - `…/sse-forever[?interval_ms=M]`: an event every M ms (default 1000) until the client
///   goes away; counted by `openStreams()`.
/// - `…/download?bytes=N[&chunked=1]`: N bytes of `DeterministicPattern`, 64 KiB writes
///   paced by channel writability so the upstream itself never buffers much.
/// - `…/upload`: 200 JSON `{"bytes":N,"sha256":"…"}` of the streamed request body.
/// - `…/slow-headers?delay_ms=M`: the response head only after M ms.
/// - `…/drop-mid-stream`: `Content-Length: 1000000`, 1000 bytes, then close.
/// - `…/status/NNN`: that status with a small body (none for 1xx/204/304).
/// - `…/hop-by-hop`: a response carrying hop-by-hop headers, then close.
/// - `…/close-when-idle?delay_ms=M`: an ordinary keep-alive 200, then the connection is
///   closed M ms later while idle (an origin's keep-alive timeout).
/// - `…/headers-then-hang`: 200, one chunk `x`, then silence until the client goes away;
///   also counted by `openStreams()`.
///
/// Requests carrying `Expect: 100-continue` get an immediate `100 Continue`.
///
/// Request bodies are always hashed incrementally and never buffered. A client half-close
/// (FIN) is treated as a disconnect, which is what lets `openStreams()` observe a gateway
/// dropping its upstream connection.
final class TestUpstream: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: any Channel
    private let state: UpstreamState
    private let stopped = Mutex(false)

    let port: Int

    var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(group: MultiThreadedEventLoopGroup, serverChannel: any Channel, state: UpstreamState, port: Int) {
        self.group = group
        self.serverChannel = serverChannel
        self.state = state
        self.port = port
    }

    static func start() async throws -> TestUpstream {
        // A private single-thread loop keeps the upstream's timing independent of whatever
        // the gateway does on the shared singleton group, and lets stop() close every
        // connection (including hanging streams) by shutting the group down.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let state = UpstreamState()
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    let connectionID = state.connectionOpened()
                    channel.closeFuture.whenComplete { _ in state.connectionClosed() }
                    return channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.configureHTTPServerPipeline(withErrorHandling: true)
                        try sync.addHandler(UpstreamHandler(state: state, connectionID: connectionID))
                    }
                }
                .bind(host: "127.0.0.1", port: 0)
                .get()
            guard let port = channel.localAddress?.port else {
                throw UpstreamError.noLocalPort
            }
            return TestUpstream(group: group, serverChannel: channel, state: state, port: port)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Starts an upstream, runs `body`, and stops the upstream whether or not `body` threw.
    static func with<T: Sendable>(_ body: (TestUpstream) async throws -> T) async throws -> T {
        let upstream = try await start()
        do {
            let result = try await body(upstream)
            try await upstream.stop()
            return result
        } catch {
            try? await upstream.stop()
            throw error
        }
    }

    /// Closes the listener and every open connection. Safe to call more than once.
    func stop() async throws {
        let alreadyStopped = stopped.withLock { value in
            defer { value = true }
            return value
        }
        guard !alreadyStopped else { return }
        try? await serverChannel.close()
        try await group.shutdownGracefully()
    }

    func received() -> [RecordedRequest] { state.received() }

    func clearReceived() { state.clearReceived() }

    /// `sse-forever` and `headers-then-hang` responses whose client connection is still open.
    func openStreams() -> Int { state.openStreams() }

    /// TCP connections accepted so far.
    func connectionsAccepted() -> Int { state.connectionsAccepted() }

    /// TCP connections currently open.
    func openConnections() -> Int { state.openConnections() }

    /// Download body bytes handed to NIO so far, across all `/download` responses. Writes
    /// are paced by writability, so with a stalled reader this stays within socket buffers
    /// plus ~128 KiB of whatever is actually consumed: the measure of end-to-end backpressure.
    func downloadBytesSent() -> Int { state.downloadBytesSent() }

    /// SHA-256 of the `/download?bytes=N` body (and of `CurlClient.Body.pattern(bytes: N)`).
    static func downloadPattern(bytes: Int) -> PatternDigest {
        PatternDigest(bytes: bytes, sha256Hex: DeterministicPattern.sha256Hex(bytes: bytes))
    }
}

/// Swift has no single-element labelled tuples, so `downloadPattern` returns this instead;
/// call sites read `.sha256Hex` either way.
struct PatternDigest: Sendable, Equatable {
    let bytes: Int
    let sha256Hex: String
}

/// The JSON body of `/echo`, for tests that decode it with `JSONDecoder`.
struct EchoReply: Decodable, Sendable {
    let method: String
    let uri: String
    let headers: [[String]]
    let bodyBytes: Int
    let bodySHA256: String

    enum CodingKeys: String, CodingKey {
        case method, uri, headers
        case bodyBytes = "body_bytes"
        case bodySHA256 = "body_sha256"
    }

    func header(_ name: String) -> String? {
        headers.first { $0.count == 2 && $0[0].lowercased() == name.lowercased() }?[1]
    }
}

/// The JSON body of `/upload`.
struct UploadReply: Decodable, Sendable {
    let bytes: Int
    let sha256: String
}

enum UpstreamError: Error {
    case noLocalPort
}

/// State shared by all connection handlers and the test. Every access is a short critical
/// section, so a Mutex is enough.
private final class UpstreamState: Sendable {
    private struct Storage {
        var requests: [RecordedRequest] = []
        /// Maps a request token to its index in `requests`; cleared with it, so a request
        /// that finishes after `clearReceived()` is silently dropped.
        var indexByToken: [Int: Int] = [:]
        var nextToken = 0
        var openStreams = 0
        var connectionsAccepted = 0
        var openConnections = 0
        var downloadBytesSent = 0
    }

    private let storage = Mutex(Storage())

    func connectionOpened() -> Int {
        storage.withLock {
            $0.connectionsAccepted += 1
            $0.openConnections += 1
            return $0.connectionsAccepted
        }
    }

    func connectionClosed() {
        storage.withLock { $0.openConnections -= 1 }
    }

    func begin(_ request: RecordedRequest) -> Int {
        storage.withLock {
            $0.nextToken += 1
            $0.indexByToken[$0.nextToken] = $0.requests.count
            $0.requests.append(request)
            return $0.nextToken
        }
    }

    func finish(token: Int, bodyBytes: Int, sha256: String, complete: Bool) {
        storage.withLock {
            guard let index = $0.indexByToken[token] else { return }
            $0.requests[index].bodyBytes = bodyBytes
            $0.requests[index].bodySHA256 = sha256
            $0.requests[index].bodyComplete = complete
        }
    }

    func received() -> [RecordedRequest] { storage.withLock { $0.requests } }

    func clearReceived() {
        storage.withLock {
            $0.requests.removeAll()
            $0.indexByToken.removeAll()
        }
    }

    func streamOpened() { storage.withLock { $0.openStreams += 1 } }
    func streamClosed() { storage.withLock { $0.openStreams -= 1 } }
    func openStreams() -> Int { storage.withLock { $0.openStreams } }
    func connectionsAccepted() -> Int { storage.withLock { $0.connectionsAccepted } }
    func openConnections() -> Int { storage.withLock { $0.openConnections } }
    func downloadSent(_ bytes: Int) { storage.withLock { $0.downloadBytesSent += bytes } }
    func downloadBytesSent() -> Int { storage.withLock { $0.downloadBytesSent } }
}

private enum Route {
    case echo
    case sse(events: Int, intervalMs: Int)
    case sseForever(intervalMs: Int)
    case download(bytes: Int, chunked: Bool)
    case upload
    case slowHeaders(delayMs: Int)
    case dropMidStream
    case status(Int)
    case hopByHop
    case closeWhenIdle(delayMs: Int)
    case headersThenHang

    init(uri: String) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let segments = parts[0].split(separator: "/")
        var query: [Substring: Substring] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[kv[0]] = kv.count == 2 ? kv[1] : ""
            }
        }
        func int(_ name: Substring, _ fallback: Int) -> Int {
            query[name].flatMap { Int($0) } ?? fallback
        }
        let last = segments.last ?? ""
        if segments.count >= 2, segments[segments.count - 2] == "status", let code = Int(last),
            (100...999).contains(code)
        {
            self = .status(code)
            return
        }
        switch last {
        case "sse": self = .sse(events: int("events", 5), intervalMs: int("interval_ms", 100))
        case "sse-forever": self = .sseForever(intervalMs: max(1, int("interval_ms", 1000)))
        case "download": self = .download(bytes: int("bytes", 0), chunked: int("chunked", 0) != 0)
        case "upload": self = .upload
        case "slow-headers": self = .slowHeaders(delayMs: int("delay_ms", 1000))
        case "drop-mid-stream": self = .dropMidStream
        case "hop-by-hop": self = .hopByHop
        case "close-when-idle": self = .closeWhenIdle(delayMs: int("delay_ms", 100))
        case "headers-then-hang": self = .headersThenHang
        default: self = .echo
        }
    }
}

/// Per-connection handler. NIO's pipeline handler serialises pipelined requests, so there is
/// at most one request (and one response) in flight here at a time. All state is touched
/// only on the channel's event loop.
private final class UpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let downloadChunk = 64 * 1024
    /// Chunks written per event-loop tick before yielding, so a fast reader cannot make one
    /// download monopolise the loop.
    private static let chunksPerTick = 16

    private let state: UpstreamState
    private let connectionID: Int

    private struct InFlight {
        let token: Int
        let head: HTTPRequestHead
        let route: Route
        var hasher = SHA256()
        var bodyBytes = 0
    }

    private var inFlight: InFlight?
    private var keepAlive = true
    private var timer: Scheduled<Void>?
    private var streamCounted = false
    private var download: (pattern: DeterministicPattern, remaining: Int)?
    private var active = true

    init(state: UpstreamState, connectionID: Int) {
        self.state = state
        self.connectionID = connectionID
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let record = RecordedRequest(
                connectionID: connectionID,
                method: head.method.rawValue,
                uri: head.uri,
                headers: head.headers.map { ($0.name, $0.value) },
                bodyBytes: 0,
                bodySHA256: SHA256().finalizeHex(),
                bodyComplete: false,
                arrivedAt: .now
            )
            let token = state.begin(record)
            inFlight = InFlight(token: token, head: head, route: Route(uri: head.uri))
            // Streaming responses without Content-Length need chunked framing, which
            // HTTP/1.0 lacks, so 1.0 connections always end with the response.
            keepAlive = head.isKeepAlive && head.version.isAtLeast11
            // Behave like common origins and invite the body at once, so a gateway that
            // forwards Expect is not stalled until the client gives up waiting.
            if head.version.isAtLeast11,
                head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
            {
                let interim = HTTPResponseHead(version: .http1_1, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
            }
        case .body(let buffer):
            buffer.withUnsafeReadableBytes { inFlight?.hasher.update($0) }
            inFlight?.bodyBytes += buffer.readableBytes
        case .end:
            guard let request = inFlight else { return }
            let sha = request.hasher.finalizeHex()
            state.finish(token: request.token, bodyBytes: request.bodyBytes, sha256: sha, complete: true)
            inFlight = nil
            respond(context: context, request: request, bodySHA256: sha)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        timer?.cancel()
        timer = nil
        download = nil
        if let request = inFlight {
            state.finish(
                token: request.token,
                bodyBytes: request.bodyBytes,
                sha256: request.hasher.finalizeHex(),
                complete: false
            )
            inFlight = nil
        }
        if streamCounted {
            streamCounted = false
            state.streamClosed()
        }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, download != nil {
            pumpDownload(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Resets and parse errors end the connection; there is nothing to recover.
        context.close(promise: nil)
    }

    // MARK: Responses

    private func respond(context: ChannelHandlerContext, request: InFlight, bodySHA256: String) {
        let head = request.head
        switch request.route {
        case .echo:
            var json = "{\"method\":\(JSONText.quote(head.method.rawValue)),\"uri\":\(JSONText.quote(head.uri))"
            json += ",\"headers\":["
            json += head.headers.map { "[\(JSONText.quote($0.name)),\(JSONText.quote($0.value))]" }
                .joined(separator: ",")
            json += "],\"body_bytes\":\(request.bodyBytes),\"body_sha256\":\"\(bodySHA256)\"}"
            sendSimple(context: context, head: head, status: .ok, contentType: "application/json", body: json)

        case .upload:
            let json = "{\"bytes\":\(request.bodyBytes),\"sha256\":\"\(bodySHA256)\"}"
            sendSimple(context: context, head: head, status: .ok, contentType: "application/json", body: json)

        case .status(let code):
            let status = HTTPResponseStatus(statusCode: code)
            let bodyless = code < 200 || code == 204 || code == 304
            sendSimple(
                context: context,
                head: head,
                status: status,
                contentType: bodyless ? nil : "text/plain",
                body: bodyless ? nil : "status \(code)\n"
            )

        case .slowHeaders(let delayMs):
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(delayMs))) {
                self.timer = nil
                guard self.active else { return }
                self.sendSimple(context: context, head: head, status: .ok, contentType: "text/plain", body: "slow\n")
            }

        case .hopByHop:
            let headers: [(String, String)] = [
                ("Connection", "close, X-Hop-Secret"),
                ("X-Hop-Secret", "1"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Authenticate", "x"),
                ("Trailer", "X"),
                ("Upgrade", "h2c"),
                ("X-Kept", "yes"),
            ]
            // The response announces Connection: close, so the connection must end with it.
            keepAlive = false
            sendSimple(
                context: context,
                head: head,
                status: .ok,
                contentType: "text/plain",
                body: "hop-by-hop\n",
                extraHeaders: headers,
                announceClose: false
            )

        case .closeWhenIdle(let delayMs):
            sendSimple(context: context, head: head, status: .ok, contentType: "text/plain", body: "closing soon\n")
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(delayMs))) {
                context.close(promise: nil)
            }

        case .dropMidStream:
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/octet-stream")
            headers.add(name: "Content-Length", value: "1000000")
            context.write(wrapOutboundOut(.head(responseHead(head, .ok, headers))), promise: nil)
            var pattern = DeterministicPattern()
            let chunk = context.channel.allocator.buffer(bytes: pattern.next(1000))
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk)))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }

        case .sse(let events, let intervalMs):
            startEventStream(context: context, head: head, counted: false)
            sendEvent(context: context, number: 1, last: events, intervalMs: intervalMs)

        case .sseForever(let intervalMs):
            startEventStream(context: context, head: head, counted: true)
            sendEvent(context: context, number: 1, last: nil, intervalMs: intervalMs)

        case .headersThenHang:
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain")
            context.write(wrapOutboundOut(.head(responseHead(head, .ok, headers))), promise: nil)
            let chunk = context.channel.allocator.buffer(string: "x")
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            countStream()

        case .download(let bytes, let chunked):
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/octet-stream")
            if !chunked {
                headers.add(name: "Content-Length", value: String(bytes))
            }
            if !keepAlive {
                headers.add(name: "Connection", value: "close")
            }
            context.writeAndFlush(wrapOutboundOut(.head(responseHead(head, .ok, headers))), promise: nil)
            download = (DeterministicPattern(), bytes)
            pumpDownload(context: context)
        }
    }

    private func responseHead(
        _ request: HTTPRequestHead,
        _ status: HTTPResponseStatus,
        _ headers: HTTPHeaders
    ) -> HTTPResponseHead {
        let version: HTTPVersion = request.version.isAtLeast11 ? .http1_1 : .http1_0
        return HTTPResponseHead(version: version, status: status, headers: headers)
    }

    /// A complete response with Content-Length. `announceClose` adds `Connection: close`
    /// when this response ends the connection.
    private func sendSimple(
        context: ChannelHandlerContext,
        head: HTTPRequestHead,
        status: HTTPResponseStatus,
        contentType: String?,
        body: String?,
        extraHeaders: [(String, String)] = [],
        announceClose: Bool = true
    ) {
        var headers = HTTPHeaders()
        for (name, value) in extraHeaders {
            headers.add(name: name, value: value)
        }
        if let contentType {
            headers.add(name: "Content-Type", value: contentType)
        }
        if let body {
            headers.add(name: "Content-Length", value: String(body.utf8.count))
        }
        if announceClose && !keepAlive {
            headers.add(name: "Connection", value: "close")
        }
        context.write(wrapOutboundOut(.head(responseHead(head, status, headers))), promise: nil)
        // NIO's encoder already omits bodies on HEAD responses but fails the write, so skip it.
        if let body, head.method != .HEAD {
            let buffer = context.channel.allocator.buffer(string: body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        finish(context: context)
    }

    /// Ends the response, closing the connection afterwards when keep-alive is off.
    private func finish(context: ChannelHandlerContext) {
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func startEventStream(context: ChannelHandlerContext, head: HTTPRequestHead, counted: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-cache")
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        }
        context.writeAndFlush(wrapOutboundOut(.head(responseHead(head, .ok, headers))), promise: nil)
        if counted {
            countStream()
        }
    }

    private func countStream() {
        guard !streamCounted else { return }
        streamCounted = true
        state.streamOpened()
    }

    /// Writes event `number`, then schedules the next one; `last == nil` means forever.
    private func sendEvent(context: ChannelHandlerContext, number: Int, last: Int?, intervalMs: Int) {
        guard active else { return }
        if let last, number > last {
            finish(context: context)
            return
        }
        let event = context.channel.allocator.buffer(string: "data: event \(number)\n\n")
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(event))), promise: nil)
        if let last, number == last {
            finish(context: context)
            return
        }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(intervalMs))) {
            self.timer = nil
            self.sendEvent(context: context, number: number + 1, last: last, intervalMs: intervalMs)
        }
    }

    /// Writes download chunks while the channel is writable; channelWritabilityChanged
    /// resumes it. This bounds what the upstream buffers to about the high-water mark plus
    /// one chunk, so the gateway's own backpressure is what a test observes.
    private func pumpDownload(context: ChannelHandlerContext) {
        var written = 0
        while active, context.channel.isWritable, var current = download, current.remaining > 0 {
            if written == Self.chunksPerTick {
                context.eventLoop.assumeIsolated().execute { self.pumpDownload(context: context) }
                return
            }
            let n = min(Self.downloadChunk, current.remaining)
            var buffer = context.channel.allocator.buffer(capacity: n)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: n) { space in
                // Sound: writeWithUnsafeMutableBytes guarantees at least `n` writable bytes.
                current.pattern.fill(UnsafeMutableRawBufferPointer(rebasing: space[0..<n]))
                return n
            }
            current.remaining -= n
            download = current
            state.downloadSent(n)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            written += 1
        }
        if active, let current = download, current.remaining == 0 {
            download = nil
            finish(context: context)
        }
    }
}

extension HTTPVersion {
    fileprivate var isAtLeast11: Bool { major > 1 || (major == 1 && minor >= 1) }
}

/// Minimal JSON string quoting; the replies are built by hand to keep header order.
enum JSONText {
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }
}
