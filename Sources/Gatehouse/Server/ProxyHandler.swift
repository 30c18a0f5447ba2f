import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Synchronization

/// Shared by every connection of the public listener.
final class GatewayServices: Sendable {
    let runtimes: RuntimeStore
    let forwarder: Forwarder
    let accessLog: AccessLog
    let denialLog: DenialLog
    let metrics: GatewayMetrics
    /// Requests between their head and their access-log line: what a graceful shutdown
    /// waits for.
    let inFlight = Atomic<Int>(0)
    /// Open client connections, so a shutdown can tell each to finish and close.
    let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    init(
        runtimes: RuntimeStore,
        forwarder: Forwarder,
        accessLog: AccessLog,
        denialLog: DenialLog,
        metrics: GatewayMetrics
    ) {
        self.runtimes = runtimes
        self.forwarder = forwarder
        self.accessLog = accessLog
        self.denialLog = denialLog
        self.metrics = metrics
    }
}

/// One client connection: turns each request into a gate decision, then either answers
/// it (denial) or bridges it to an upstream transfer, streaming both bodies with
/// backpressure. Knows no auth rules; all of that is in `Gate`.
///
/// Lives on the channel's event loop only; `HTTPServerPipelineHandler` in front of it
/// guarantees one request at a time even when the client pipelines.
final class ProxyHandler: ChannelDuplexHandler, UpstreamEventSink {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let services: GatewayServices
    private let scheme: String
    private var context: ChannelHandlerContext?
    private var peer: IPAddress?

    private enum State {
        /// Waiting for the next request head.
        case idle
        /// A request is going to (or coming back from) an upstream.
        case proxying(Exchange)
        /// We answered already; swallow what is left of the request.
        case draining(Exchange)
    }

    private var state = State.idle
    /// While idle: the request head must have arrived by then.
    private var headerDeadline: NIODeadline?
    /// The connection's one timer (see "Timers") and when it fires.
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var readsPaused = false
    private var readPending = false

    init(services: GatewayServices, scheme: String) {
        self.services = services
        self.scheme = scheme
    }

    // MARK: Channel lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let channel = context.channel
        services.connections.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
        if let address = context.channel.remoteAddress?.ipAddress { peer = IPAddress.parse(address) }
        if context.channel.isActive { armHeaderTimeout(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if peer == nil, let address = context.channel.remoteAddress?.ipAddress { peer = IPAddress.parse(address) }
        armHeaderTimeout(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        let channel = context.channel
        services.connections.withLockedValue { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) }
        switch state {
        case .proxying(let exchange), .draining(let exchange):
            exchange.abandon()
            if exchange.status == 0 { exchange.status = 499 }  // client closed before the answer
            logAccess(exchange)
        case .idle:
            break
        }
        state = .idle
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            headerDeadline = nil
            receiveHead(head, context: context)
        case .body(let buffer):
            receiveBody(buffer, context: context)
        case .end:
            receiveEnd(context: context)
        }
    }

    private func receiveHead(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let runtime = services.runtimes.runtime
        let gate = Gate(runtime: runtime)
        let headers = head.headers.map { (name: $0.name, value: $0.value) }
        let request = IncomingRequest(
            method: head.method.rawValue,
            target: head.uri,
            headers: headers,
            peer: peer,
            scheme: scheme,
            body: Self.bodyFraming(head.headers)
        )
        let facts = gate.facts(for: request)
        let exchange = Exchange(head: head, facts: facts, runtime: runtime)
        services.inFlight.add(1, ordering: .relaxed)
        exchange.path = Gate.rawPath(head.uri)

        let settings = runtime.config.server
        if Self.headBytes(head) > settings.maxHeaderBytes {
            refuse(
                exchange,
                Denial(reason: .headersTooLarge, path: exchange.path, detail: "request head over max_header_bytes"),
                context: context
            )
            return
        }
        if case .length(let length) = request.body, length > settings.maxBodyBytes {
            refuse(
                exchange,
                Denial(
                    reason: .bodyTooLarge, path: exchange.path, detail: "Content-Length \(length) over max_body_bytes"),
                context: context
            )
            return
        }

        switch gate.decide(request, facts: facts) {
        case .deny(let denial):
            refuse(exchange, denial, context: context)
        case .keysUnavailable(let route, let path, _):
            exchange.route = route
            exchange.path = path
            answerUnavailable(
                exchange, ErrorResponse(status: 503, error: "keys_unavailable", reason: "keys_unavailable"),
                context: context)
        case .forward(let plan):
            exchange.path = plan.path
            exchange.route = plan.route.name
            exchange.identity = plan.identity
            exchange.extraResponseHeaders = plan.responseHeaders
            exchange.hasRequestBody = plan.upstream.body != .none
            state = .proxying(exchange)
            exchange.upstreamStarted = NIODeadline.now()
            exchange.transfer = services.forwarder.start(plan.upstream, on: context.eventLoop, sink: self)
            if !exchange.hasRequestBody { exchange.transfer?.finishBody() }
            scheduleResponseTimeout(exchange, after: settings.upstreamResponseTimeout, context: context)
            exchange.idleTimeout = settings.streamIdleTimeout
            scheduleIdleCheck(exchange, context: context)
        }
    }

    private func receiveBody(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard case .proxying(let exchange) = state else { return }  // draining: discard
        exchange.bytesIn += buffer.readableBytes
        exchange.touch()
        if Int64(exchange.bytesIn) > exchange.runtime.config.server.maxBodyBytes {
            let denial = Denial(
                reason: .bodyTooLarge,
                route: exchange.route,
                path: exchange.path,
                detail: "request body over max_body_bytes"
            )
            exchange.abandon()
            if exchange.responseStarted {
                context.close(promise: nil)
            } else {
                refuse(exchange, denial, context: context)
            }
            return
        }
        guard let transfer = exchange.transfer, !exchange.upstreamFinished else { return }
        if !transfer.sendBody(buffer) { readsPaused = true }
    }

    private func receiveEnd(context: ChannelHandlerContext) {
        switch state {
        case .idle:
            return
        case .draining(let exchange):
            exchange.requestEnded = true
            finish(exchange, context: context)
        case .proxying(let exchange):
            exchange.requestEnded = true
            if exchange.hasRequestBody, !exchange.upstreamFinished { exchange.transfer?.finishBody() }
            if exchange.responseEnded { finish(exchange, context: context) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard case .idle = state, let parserError = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        // The request could not even be parsed: answer once, then close (the byte
        // stream can no longer be trusted to find the next request).
        let reason: DenialReason = parserError == .headerOverflow ? .headersTooLarge : .malformedRequest
        let facts = RequestFacts(
            requestID: RequestID.generate(),
            client: ClientAddress.resolve(peer: peer, forwardedFor: [], trustedProxies: [])
        )
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "")
        let exchange = Exchange(head: head, facts: facts, runtime: services.runtimes.runtime)
        services.inFlight.add(1, ordering: .relaxed)
        exchange.keepAlive = false
        exchange.requestEnded = true
        exchange.method = "-"
        let denial = Denial(reason: reason, path: "", detail: "unparseable request: \(parserError)")
        exchange.status = denial.reason.status
        exchange.responseEnded = true
        recordDenial(denial, for: exchange)
        logAccess(exchange)
        state = .draining(exchange)
        let written = context.eventLoop.makePromise(of: Void.self)
        writeError(ErrorResponse(denial: denial), for: exchange, context: context, endPromise: written)
        let channel = context.channel
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: Outbound: hold client reads while the upload queue is full

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    private func resumeReads(context: ChannelHandlerContext) {
        readsPaused = false
        if readPending {
            readPending = false
            context.read()
        }
    }

    // MARK: Upstream events

    func upstream(_ transfer: UpstreamTransfer, event: UpstreamEvent) {
        guard let context, case .proxying(let exchange) = state, exchange.transfer === transfer else { return }
        switch event {
        case .head(let status, let headers):
            exchange.responseDeadline = nil
            exchange.responseStarted = true
            exchange.status = status
            let headAt = NIODeadline.now()
            exchange.upstreamHeadAt = headAt
            exchange.touch()
            if let started = exchange.upstreamStarted, let route = exchange.route {
                services.metrics.upstreamResponded(route: route, after: .nanoseconds((headAt - started).nanoseconds))
            }
            if headers.contains(where: {
                $0.name.equalsASCIICaseInsensitive("content-type")
                    && $0.value.hasASCIICaseInsensitivePrefix("text/event-stream")
            }) {
                exchange.isEventStream = true
                services.metrics.streamOpened()
            }
            var fields = HTTPHeaders(headers.map { ($0.name, $0.value) })
            fields.replaceOrAdd(name: "X-Request-Id", value: exchange.facts.requestID)
            for (name, value) in exchange.extraResponseHeaders { fields.replaceOrAdd(name: name, value: value) }
            if exchange.version.major == 1 && exchange.version.minor == 0
                && !fields.contains(name: "content-length")
            {
                exchange.keepAlive = false  // an HTTP/1.0 body without length ends with the connection
            }
            if !exchange.keepAlive { fields.replaceOrAdd(name: "Connection", value: "close") }
            let head = HTTPResponseHead(
                version: exchange.version,
                status: HTTPResponseStatus(statusCode: status),
                headers: fields
            )
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .body(let buffer):
            let count = buffer.readableBytes
            exchange.bytesOut += count
            exchange.touch()
            // Written bytes are reported back so that a paused libcurl resumes; in a
            // transfer's final batch there is nothing left to resume (most small responses).
            var written: EventLoopPromise<Void>?
            if !transfer.deliveringFinalBatch {
                written = context.eventLoop.makePromise(of: Void.self)
                written?.futureResult.whenComplete { _ in transfer.responseBytesWritten(count) }
            }
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: written)
        case .end:
            exchange.upstreamFinished = true
            if exchange.requestEnded {
                finish(exchange, context: context)
            } else {
                // The upstream answered before the client finished sending: end the
                // response and stop serving this connection rather than read on.
                exchange.keepAlive = false
                endResponseEarly(exchange, with: nil, context: context)
            }
        case .failed(let failure):
            exchange.upstreamFinished = true
            exchange.responseDeadline = nil
            if exchange.responseStarted {
                // Never fabricate a status after the head went out: deliver what did
                // arrive (it may still be unflushed in this same batch), then cut the
                // connection so the client sees the response end early.
                exchange.logNote = "\(failure)"
                logAccess(exchange)
                state = .idle
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer()))))
                    .whenComplete { _ in channel.close(promise: nil) }
            } else {
                answerUpstreamFailure(exchange, failure, context: context)
            }
        case .uploadDrained:
            resumeReads(context: context)
        }
    }

    func upstreamBatchDelivered(_ transfer: UpstreamTransfer) {
        // Head and body chunks are written without flushing as they arrive; one flush per
        // hop sends them together, and still sends every SSE event as soon as it came.
        context?.flush()
    }

    private func answerUpstreamFailure(_ exchange: Exchange, _ failure: UpstreamFailure, context: ChannelHandlerContext)
    {
        exchange.abandon()
        let response = ErrorResponse(upstream: failure)
        exchange.status = response.status
        if exchange.requestEnded {
            finish(exchange, with: response, context: context)
        } else {
            exchange.keepAlive = false
            endResponseEarly(exchange, with: response, context: context)
        }
    }

    /// A 503 the gateway answers itself before any upstream was involved.
    private func answerUnavailable(_ exchange: Exchange, _ response: ErrorResponse, context: ChannelHandlerContext) {
        exchange.status = response.status
        let bodyPending = exchange.requestBodyExpected
        if bodyPending {
            exchange.keepAlive = false
            endResponseEarly(exchange, with: response, context: context)
        } else {
            exchange.responseEnded = true
            state = .draining(exchange)
            writeError(response, for: exchange, context: context, endPromise: nil)
        }
    }

    // MARK: Answers
    //
    // Writing a response's `.end` lets `HTTPServerPipelineHandler` deliver the next
    // pipelined request synchronously, re-entering this handler. So every function
    // below settles `state` (and logs) first and writes the end last.

    private func refuse(_ exchange: Exchange, _ denial: Denial, context: ChannelHandlerContext) {
        recordDenial(denial, for: exchange)
        exchange.status = denial.reason.status
        exchange.route = denial.route ?? exchange.route
        exchange.path = denial.path
        exchange.denial = denial
        if exchange.transfer != nil { exchange.abandon() }
        let bodyPending =
            !exchange.requestEnded && (exchange.bytesIn > 0 || exchange.requestBodyExpected)
        if bodyPending {
            // Answer now, without reading a body nobody wants.
            exchange.keepAlive = false
            endResponseEarly(exchange, with: ErrorResponse(denial: denial), context: context)
        } else {
            // The request's `.end` follows at once; `receiveEnd` then finishes the exchange.
            exchange.responseEnded = true
            state = .draining(exchange)
            writeError(ErrorResponse(denial: denial), for: exchange, context: context, endPromise: nil)
        }
    }

    /// Both halves are done: log, get ready for the next request (or close), and only
    /// then write the end of the response.
    private func finish(_ exchange: Exchange, with response: ErrorResponse? = nil, context: ChannelHandlerContext) {
        exchange.clearDeadlines()
        exchange.responseEnded = true
        logAccess(exchange)
        state = .idle
        resumeReads(context: context)
        let keepAlive = exchange.keepAlive
        if keepAlive { armHeaderTimeout(context: context) }
        if let response {
            writeError(response, for: exchange, context: context, endPromise: nil)
        } else if !exchange.endWritten {
            exchange.endWritten = true
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        if !keepAlive { context.close(promise: nil) }
    }

    /// The response is complete while the request body is still arriving: end the
    /// response, then close. The write side is shut first and the connection lingers
    /// briefly, discarding input, so that the client reads the answer instead of a reset.
    private func endResponseEarly(_ exchange: Exchange, with response: ErrorResponse?, context: ChannelHandlerContext) {
        exchange.clearDeadlines()
        exchange.responseEnded = true
        state = .draining(exchange)
        logAccess(exchange)
        let written = context.eventLoop.makePromise(of: Void.self)
        if let response {
            writeError(response, for: exchange, context: context, endPromise: written)
        } else if !exchange.endWritten {
            exchange.endWritten = true
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        } else {
            written.succeed()
        }
        let channel = context.channel
        written.futureResult.whenComplete { _ in
            channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        }
        channel.eventLoop.scheduleTask(in: Self.lingerTime) { channel.close(promise: nil) }
    }

    static let lingerTime = TimeAmount.seconds(2)

    private func writeError(
        _ response: ErrorResponse,
        for exchange: Exchange,
        context: ChannelHandlerContext,
        endPromise: EventLoopPromise<Void>?
    ) {
        let body = response.body(requestID: exchange.facts.requestID, allocator: context.channel.allocator)
        let head = response.head(
            version: exchange.version,
            requestID: exchange.facts.requestID,
            keepAlive: exchange.keepAlive,
            bodyLength: body.readableBytes
        )
        exchange.bytesOut += body.readableBytes
        exchange.endWritten = true
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !exchange.isHEADRequest { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: endPromise)
    }

    /// Every 4xx Gatehouse produces gets one denial line, written before the response.
    private func recordDenial(_ denial: Denial, for exchange: Exchange) {
        services.metrics.denied(reason: denial.logReason)
        guard services.denialLog.isEnabled else { return }
        services.denialLog.record(
            DenialRecord(
                requestID: exchange.facts.requestID,
                clientIP: exchange.facts.client.ip,
                method: exchange.method,
                path: denial.path,
                route: denial.route ?? exchange.route,
                status: denial.reason.status,
                reason: denial.logReason,
                identity: denial.identity,
                authentication: denial.authentication,
                tokenFingerprint: denial.tokenFingerprint,
                requiredScopes: denial.requiredScopes,
                grantedScopes: denial.grantedScopes,
                policy: denial.policy,
                detail: denial.detail
            )
        )
    }

    /// Called exactly once per exchange: it also ends the exchange's in-flight count.
    private func logAccess(_ exchange: Exchange) {
        guard !exchange.logged else { return }
        exchange.logged = true
        services.inFlight.subtract(1, ordering: .relaxed)
        services.metrics.requestCompleted(route: exchange.route, status: exchange.status)
        if exchange.isEventStream { services.metrics.streamClosed() }
        guard services.accessLog.isEnabled else { return }
        services.accessLog.record(exchange.accessLogEntry(now: NIODeadline.now()))
    }

    // MARK: Timers
    //
    // One NIO timer per connection, re-armed lazily. The three deadlines (a request head
    // within `header_timeout`, a response head within `upstream_response_timeout`, no
    // silence longer than `stream_idle_timeout`) are plain fields; the timer only has to
    // fire no later than the earliest of them, and when it fires it acts on what is due
    // and re-arms for the rest. Scheduling and cancelling a NIO task per deadline per
    // request cost a heap insert and a linear-scan removal each, which with thousands of
    // open streams on a loop grew with the number of streams.

    /// Slow-loris guard: a request head must arrive within `header_timeout` of the
    /// connection opening or the previous response ending; otherwise the connection goes.
    private func armHeaderTimeout(context: ChannelHandlerContext) {
        let deadline = NIODeadline.now() + .init(services.runtimes.runtime.config.server.headerTimeout)
        headerDeadline = deadline
        wakeUp(by: deadline, context: context)
    }

    private func scheduleResponseTimeout(_ exchange: Exchange, after timeout: Duration, context: ChannelHandlerContext)
    {
        let deadline = NIODeadline.now() + .init(timeout)
        exchange.responseDeadline = deadline
        wakeUp(by: deadline, context: context)
    }

    /// `stream_idle_timeout`: no bytes either way for that long ends the exchange.
    private func scheduleIdleCheck(_ exchange: Exchange, context: ChannelHandlerContext) {
        wakeUp(by: exchange.lastActivity + .init(exchange.idleTimeout), context: context)
    }

    /// Makes sure the connection's timer fires at `deadline` or earlier.
    private func wakeUp(by deadline: NIODeadline, context: ChannelHandlerContext) {
        if let armedFor = timerDeadline, armedFor <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) { loopBound.value.deadlinesDue() }
    }

    private func deadlinesDue() {
        timer = nil
        timerDeadline = nil
        guard let context else { return }
        let now = NIODeadline.now()
        switch state {
        case .idle:
            guard let deadline = headerDeadline else { return }
            if deadline <= now {
                context.close(promise: nil)
            } else {
                wakeUp(by: deadline, context: context)
            }
        case .proxying(let exchange):
            if !exchange.responseStarted, let deadline = exchange.responseDeadline, deadline <= now {
                exchange.upstreamFinished = true
                answerUpstreamFailure(
                    exchange, .timedOut("no response head within upstream_response_timeout"), context: context)
                return
            }
            let idleDeadline = exchange.lastActivity + .init(exchange.idleTimeout)
            if idleDeadline <= now {
                exchange.abandon()
                if exchange.responseStarted {
                    exchange.logNote = "stream idle timeout"
                    logAccess(exchange)
                    state = .idle
                    context.close(promise: nil)
                } else {
                    answerUpstreamFailure(exchange, .timedOut("stream idle timeout"), context: context)
                }
                return
            }
            var next = idleDeadline
            if !exchange.responseStarted, let deadline = exchange.responseDeadline { next = min(next, deadline) }
            wakeUp(by: next, context: context)
        case .draining:
            break  // the response is out; the connection closes on its own schedule
        }
    }

    // MARK: Helpers

    static func bodyFraming(_ headers: HTTPHeaders) -> UpstreamRequest.Body {
        if headers.contains(name: "transfer-encoding") { return .chunked }
        if let value = headers.first(name: "content-length"), let length = Int64(value) {
            return length > 0 ? .length(length) : .length(0)
        }
        return .none
    }

    /// Request line plus header fields as they were on the wire (approximately: CRLFs
    /// and separators counted, whitespace normalised by the parser not).
    static func headBytes(_ head: HTTPRequestHead) -> Int {
        var total = head.method.rawValue.utf8.count + head.uri.utf8.count + 12
        for field in head.headers { total += field.name.utf8.count + field.value.utf8.count + 4 }
        return total
    }
}
