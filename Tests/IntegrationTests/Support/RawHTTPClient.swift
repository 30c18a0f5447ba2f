import NIOCore
import NIOPosix
import Synchronization

/// One HTTP/1.x response parsed from raw bytes.
struct ParsedResponse: Sendable {
    enum Framing: Sendable, Equatable {
        /// 1xx, 204, 304 or a response to HEAD.
        case none
        case contentLength(Int)
        case chunked
        /// Neither header: the body runs until the connection closes.
        case untilClose
    }

    let version: String
    let status: Int
    let reason: String
    /// Header fields in wire order, names case-preserved.
    let headers: [(String, String)]
    /// De-chunked body.
    let body: [UInt8]
    /// Trailer fields of a chunked body.
    let trailers: [(String, String)]
    let framing: Framing
    /// False when the bytes ran out before the framing said the body ends (or, for
    /// `.untilClose`, when the peer never closed).
    let complete: Bool

    var bodyString: String { String(decoding: body, as: UTF8.self) }

    /// First value of a header, name compared case-insensitively.
    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
}

/// Everything a raw exchange read, with the first response parsed out.
struct RawResponse: Sendable {
    /// Every byte received, unmodified.
    let raw: [UInt8]
    /// True when the peer ended the connection (FIN or reset); false when the read timeout
    /// (or `stopAfterResponses`) ended the exchange and we closed it.
    let closedByPeer: Bool
    /// Connect-to-end time.
    let elapsed: Duration
    /// A socket error seen while reading, e.g. a connection reset.
    let readError: String?
    /// False when writing the request failed (the peer had already closed).
    let writeSucceeded: Bool
    /// The first response in `raw`, including a 1xx interim one; nil when none parses.
    let first: ParsedResponse?

    init(
        raw: [UInt8],
        closedByPeer: Bool,
        elapsed: Duration,
        readError: String?,
        writeSucceeded: Bool,
        firstIsHead: Bool
    ) {
        self.raw = raw
        self.closedByPeer = closedByPeer
        self.elapsed = elapsed
        self.readError = readError
        self.writeSucceeded = writeSucceeded
        self.first =
            HTTPResponseParser.parse(raw, from: 0, bodyless: firstIsHead, peerClosed: closedByPeer)?.response
    }

    /// 0 when nothing parsed.
    var status: Int { first?.status ?? 0 }
    var headers: [(String, String)] { first?.headers ?? [] }
    var body: [UInt8] { first?.body ?? [] }
    var bodyString: String { String(decoding: body, as: UTF8.self) }
    var rawString: String { String(decoding: raw, as: UTF8.self) }

    func header(_ name: String) -> String? { first?.header(name) }
    func headerValues(_ name: String) -> [String] { first?.headerValues(name) ?? [] }

    /// All responses in `raw`, in order (pipelining, 1xx interim responses). Parsing stops at
    /// the first one that is malformed or cut short; that one is included with
    /// `complete == false` when its head parsed. `headResponses` lists the indexes of
    /// responses that answer HEAD requests, which carry no body whatever their headers say.
    func responses(headResponses: Set<Int> = []) -> [ParsedResponse] {
        var result: [ParsedResponse] = []
        var offset = 0
        while offset < raw.count {
            guard
                let parsed = HTTPResponseParser.parse(
                    raw,
                    from: offset,
                    bodyless: headResponses.contains(result.count),
                    peerClosed: closedByPeer
                )
            else { break }
            result.append(parsed.response)
            guard parsed.response.complete else { break }
            offset = parsed.end
        }
        return result
    }
}

/// What `RawHTTPClient.slowWrite` observed.
struct SlowWriteResult: Sendable {
    /// Slices written before the peer closed or a write failed.
    let slicesSent: Int
    let closedByPeer: Bool
    /// Connect-to-peer-close time, when the peer closed.
    let peerClosedAfter: Duration?
    let response: RawResponse
}

/// A byte-exact TCP client for protocol-level tests: it writes exactly what it is given and
/// reports exactly what came back, with no HTTP library smoothing anything over.
enum RawHTTPClient {
    /// Writes `bytes`, then reads until the peer closes, `readTimeout` passes, or (when
    /// `stopAfterResponses` is set) that many complete responses have arrived.
    /// `halfCloseAfterWrite` sends a FIN after the bytes.
    static func exchange(
        host: String = "127.0.0.1",
        port: Int,
        bytes: [UInt8],
        readTimeout: Duration,
        halfCloseAfterWrite: Bool = false,
        stopAfterResponses: Int? = nil
    ) async throws -> RawResponse {
        let connection = try await RawConnection.connect(host: host, port: port, stopAfterResponses: stopAfterResponses)
        var writeSucceeded = true
        do {
            try await connection.channel.writeAndFlush(connection.channel.allocator.buffer(bytes: bytes))
            if halfCloseAfterWrite {
                try await connection.channel.close(mode: .output)
            }
        } catch {
            // Early rejections close before the request is fully written; the response they
            // sent is still what the test wants to see.
            writeSucceeded = false
        }
        return await connection.finish(readTimeout: readTimeout, writeSucceeded: writeSucceeded, sent: bytes)
    }

    static func exchange(
        host: String = "127.0.0.1",
        port: Int,
        bytes: String,
        readTimeout: Duration,
        halfCloseAfterWrite: Bool = false,
        stopAfterResponses: Int? = nil
    ) async throws -> RawResponse {
        try await exchange(
            host: host,
            port: port,
            bytes: Array(bytes.utf8),
            readTimeout: readTimeout,
            halfCloseAfterWrite: halfCloseAfterWrite,
            stopAfterResponses: stopAfterResponses
        )
    }

    /// Connects, writes `slices` with `delay` between them (stopping early if the peer
    /// closes), then reads until the peer closes or `readTimeout` passes after the last
    /// slice. Models slowloris-style clients and slow uploads.
    static func slowWrite(
        host: String = "127.0.0.1",
        port: Int,
        slices: [[UInt8]],
        delay: Duration,
        readTimeout: Duration
    ) async throws -> SlowWriteResult {
        let connection = try await RawConnection.connect(host: host, port: port, stopAfterResponses: nil)
        var sent = 0
        var writeSucceeded = true
        for (index, slice) in slices.enumerated() {
            if connection.sink.isClosed { break }
            do {
                try await connection.channel.writeAndFlush(connection.channel.allocator.buffer(bytes: slice))
            } catch {
                writeSucceeded = false
                break
            }
            sent += 1
            if index < slices.count - 1 {
                // Sleep in short steps so a server-side close ends the wait promptly.
                let wakeAt = ContinuousClock.now + delay
                while ContinuousClock.now < wakeAt, !connection.sink.isClosed {
                    try await Task.sleep(for: min(.milliseconds(20), wakeAt - .now))
                }
            }
        }
        let response = await connection.finish(
            readTimeout: readTimeout,
            writeSucceeded: writeSucceeded,
            sent: slices.first ?? []
        )
        let closedAt = connection.sink.closedAt
        return SlowWriteResult(
            slicesSent: sent,
            closedByPeer: response.closedByPeer,
            peerClosedAfter: response.closedByPeer ? closedAt.map { $0 - connection.connectedAt } : nil,
            response: response
        )
    }

    static func slowWrite(
        host: String = "127.0.0.1",
        port: Int,
        slices: [String],
        delay: Duration,
        readTimeout: Duration
    ) async throws -> SlowWriteResult {
        try await slowWrite(
            host: host,
            port: port,
            slices: slices.map { Array($0.utf8) },
            delay: delay,
            readTimeout: readTimeout
        )
    }
}

/// A connected channel plus what its handler has collected.
private struct RawConnection {
    let channel: any Channel
    let sink: RawSink
    let connectedAt: ContinuousClock.Instant

    static func connect(host: String, port: Int, stopAfterResponses: Int?) async throws -> RawConnection {
        let sink = RawSink()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        RawCollector(sink: sink, stopAfterResponses: stopAfterResponses)
                    )
                }
            }
            .connect(host: host, port: port)
            .get()
        return RawConnection(channel: channel, sink: sink, connectedAt: .now)
    }

    /// Waits for the peer to close or for `readTimeout`, whichever is first, and closes.
    func finish(readTimeout: Duration, writeSucceeded: Bool, sent: [UInt8]) async -> RawResponse {
        let sink = self.sink
        let channel = self.channel
        let timeout = channel.eventLoop.scheduleTask(in: TimeAmount(readTimeout)) {
            // Runs on the channel's loop, so the handler sees the flag before it sees the
            // resulting channelInactive.
            sink.markLocalClose()
            channel.close(promise: nil)
        }
        // closeFuture only ever succeeds.
        try? await channel.closeFuture.get()
        timeout.cancel()
        let snapshot = sink.snapshot()
        return RawResponse(
            raw: snapshot.bytes,
            closedByPeer: snapshot.closedByPeer,
            elapsed: (snapshot.closedAt ?? .now) - connectedAt,
            readError: snapshot.error,
            writeSucceeded: writeSucceeded,
            firstIsHead: sent.starts(with: Array("HEAD ".utf8))
        )
    }
}

/// Bytes and close state shared between the channel handler (event loop) and the test task.
private final class RawSink: Sendable {
    struct State {
        var bytes: [UInt8] = []
        var localClose = false
        var closed = false
        var closedByPeer = false
        var closedAt: ContinuousClock.Instant?
        var error: String?
    }

    private let state = Mutex(State())

    func append(_ bytes: ByteBufferView) { state.withLock { $0.bytes.append(contentsOf: bytes) } }

    func markLocalClose() { state.withLock { $0.localClose = true } }

    func markClosed() {
        state.withLock {
            $0.closed = true
            $0.closedByPeer = !$0.localClose
            $0.closedAt = .now
        }
    }

    func record(error: any Error) {
        state.withLock { $0.error = $0.error ?? String(describing: error) }
    }

    var isClosed: Bool { state.withLock { $0.closed } }
    var closedAt: ContinuousClock.Instant? { state.withLock { $0.closedAt } }

    func completeResponses() -> Int {
        state.withLock { HTTPResponseParser.countComplete($0.bytes) }
    }

    func snapshot() -> State { state.withLock { $0 } }
}

private final class RawCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let sink: RawSink
    private let stopAfterResponses: Int?

    init(sink: RawSink, stopAfterResponses: Int?) {
        self.sink = sink
        self.stopAfterResponses = stopAfterResponses
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sink.append(unwrapInboundIn(data).readableBytesView)
        if let wanted = stopAfterResponses, sink.completeResponses() >= wanted {
            sink.markLocalClose()
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        sink.markClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset is the peer closing too; keep the reason for the test's diagnostics.
        sink.record(error: error)
        context.close(promise: nil)
    }
}

/// A small, strict HTTP/1.x response parser (CRLF line endings only, no obs-fold), so a
/// gateway emitting sloppy framing fails tests instead of being papered over.
enum HTTPResponseParser {
    /// Parses the response starting at `start`. Returns nil when the head is incomplete or
    /// malformed. `end` is where the next response would start.
    static func parse(
        _ bytes: [UInt8],
        from start: Int,
        bodyless: Bool,
        peerClosed: Bool
    ) -> (response: ParsedResponse, end: Int)? {
        guard let head = parseHead(bytes, from: start) else { return nil }
        let framing = framing(status: head.status, headers: head.headers, bodyless: bodyless)
        let body = locateBody(bytes, from: head.bodyStart, framing: framing, peerClosed: peerClosed)
        var content: [UInt8] = []
        var trailers: [(String, String)] = []
        switch framing {
        case .none:
            break
        case .contentLength, .untilClose:
            content = Array(bytes[head.bodyStart..<body.end])
        case .chunked:
            let decoded = dechunk(bytes, from: head.bodyStart)
            content = decoded.body
            trailers = decoded.trailers
        }
        let response = ParsedResponse(
            version: head.version,
            status: head.status,
            reason: head.reason,
            headers: head.headers,
            body: content,
            trailers: trailers,
            framing: framing,
            complete: body.complete
        )
        return (response, body.end)
    }

    /// How many complete responses `bytes` holds, without copying bodies.
    static func countComplete(_ bytes: [UInt8]) -> Int {
        var count = 0
        var offset = 0
        while offset < bytes.count, let head = parseHead(bytes, from: offset) {
            let framing = framing(status: head.status, headers: head.headers, bodyless: false)
            let body = locateBody(bytes, from: head.bodyStart, framing: framing, peerClosed: false)
            guard body.complete else { break }
            count += 1
            offset = body.end
        }
        return count
    }

    private struct Head {
        let version: String
        let status: Int
        let reason: String
        let headers: [(String, String)]
        let bodyStart: Int
    }

    private static func parseHead(_ bytes: [UInt8], from start: Int) -> Head? {
        guard let headEnd = find([13, 10, 13, 10], in: bytes, from: start) else { return nil }
        let text = String(decoding: bytes[start..<headEnd], as: UTF8.self)
        var lines = text.crlfLines()
        guard !lines.isEmpty else { return nil }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), parts[1].count == 3, let status = Int(parts[1]) else {
            return nil
        }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingOWS()
            headers.append((name, value))
        }
        return Head(
            version: String(parts[0]),
            status: status,
            reason: parts.count == 3 ? String(parts[2]) : "",
            headers: headers,
            bodyStart: headEnd + 4
        )
    }

    private static func framing(status: Int, headers: [(String, String)], bodyless: Bool) -> ParsedResponse.Framing {
        if bodyless || (100..<200).contains(status) || status == 204 || status == 304 {
            return .none
        }
        let transferCodings = headers.filter { $0.0.lowercased() == "transfer-encoding" }
            .flatMap { $0.1.split(separator: ",") }
            .map { $0.trimmingOWS().lowercased() }
        if transferCodings.last == "chunked" {
            return .chunked
        }
        if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }) {
            return .contentLength(length)
        }
        return .untilClose
    }

    private static func locateBody(
        _ bytes: [UInt8],
        from start: Int,
        framing: ParsedResponse.Framing,
        peerClosed: Bool
    ) -> (end: Int, complete: Bool) {
        switch framing {
        case .none:
            return (start, true)
        case .contentLength(let length):
            let available = bytes.count - start
            return available >= length ? (start + length, true) : (bytes.count, false)
        case .untilClose:
            return (bytes.count, peerClosed)
        case .chunked:
            var offset = start
            while true {
                guard let lineEnd = find([13, 10], in: bytes, from: offset) else { return (bytes.count, false) }
                let sizeText = String(decoding: bytes[offset..<lineEnd], as: UTF8.self)
                    .split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0]
                    .trimmingOWS()
                guard let size = Int(sizeText, radix: 16), size >= 0 else { return (bytes.count, false) }
                if size == 0 {
                    // Trailer section ends with an empty line.
                    guard let trailerEnd = findEmptyLine(in: bytes, from: lineEnd + 2) else {
                        return (bytes.count, false)
                    }
                    return (trailerEnd, true)
                }
                let dataEnd = lineEnd + 2 + size
                guard dataEnd + 2 <= bytes.count, bytes[dataEnd] == 13, bytes[dataEnd + 1] == 10 else {
                    return (bytes.count, false)
                }
                offset = dataEnd + 2
            }
        }
    }

    private static func dechunk(_ bytes: [UInt8], from start: Int) -> (body: [UInt8], trailers: [(String, String)]) {
        var body: [UInt8] = []
        var trailers: [(String, String)] = []
        var offset = start
        while let lineEnd = find([13, 10], in: bytes, from: offset) {
            let sizeText = String(decoding: bytes[offset..<lineEnd], as: UTF8.self)
                .split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0]
                .trimmingOWS()
            guard let size = Int(sizeText, radix: 16), size >= 0 else { break }
            if size == 0 {
                var lineStart = lineEnd + 2
                while let end = find([13, 10], in: bytes, from: lineStart), end > lineStart {
                    let line = String(decoding: bytes[lineStart..<end], as: UTF8.self)
                    if let colon = line.firstIndex(of: ":") {
                        trailers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingOWS()))
                    }
                    lineStart = end + 2
                }
                break
            }
            let dataStart = lineEnd + 2
            let dataEnd = min(dataStart + size, bytes.count)
            body.append(contentsOf: bytes[dataStart..<dataEnd])
            offset = dataEnd + 2
            if offset > bytes.count { break }
        }
        return (body, trailers)
    }

    /// Index just past the empty line that ends a trailer section starting at `start`.
    private static func findEmptyLine(in bytes: [UInt8], from start: Int) -> Int? {
        var lineStart = start
        while let end = find([13, 10], in: bytes, from: lineStart) {
            if end == lineStart { return end + 2 }
            lineStart = end + 2
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard start >= 0, bytes.count - start >= needle.count else { return nil }
        var i = start
        let last = bytes.count - needle.count
        while i <= last {
            if bytes[i] == needle[0] {
                var matched = true
                for j in 1..<needle.count where bytes[i + j] != needle[j] {
                    matched = false
                    break
                }
                if matched { return i }
            }
            i += 1
        }
        return nil
    }
}

extension StringProtocol {
    /// Strips HTTP optional whitespace (spaces and tabs) from both ends.
    fileprivate func trimmingOWS() -> String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}

extension String {
    /// Splits on CRLF only; a bare LF stays inside the line so malformed heads are visible.
    fileprivate func crlfLines() -> [String] {
        var lines: [String] = []
        var current: [UInt8] = []
        var previousWasCR = false
        for byte in utf8 {
            if previousWasCR && byte == 10 {
                current.removeLast()
                lines.append(String(decoding: current, as: UTF8.self))
                current.removeAll()
                previousWasCR = false
                continue
            }
            current.append(byte)
            previousWasCR = byte == 13
        }
        lines.append(String(decoding: current, as: UTF8.self))
        return lines
    }
}
