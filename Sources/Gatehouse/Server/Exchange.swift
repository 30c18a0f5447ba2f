import NIOCore
import NIOHTTP1

/// The state of one request on a client connection, from its head to the access log.
/// Event-loop confined (owned by `ProxyHandler`).
final class Exchange {
    // What the rest of the exchange needs from the request head, kept instead of the head
    // itself: an event stream can stay open for hours and should not hold its headers.
    let version: HTTPVersion
    let isHEADRequest: Bool
    /// The request announced a body (Content-Length > 0 or chunked).
    let requestBodyExpected: Bool
    let facts: RequestFacts
    let runtime: Runtime
    let startedAt = NIODeadline.now()

    var method: String
    var path = ""
    var route: String?
    var status = 0
    /// Boxed: a `Denial` is several hundred bytes inline, and most exchanges (every open
    /// stream among them) never have one.
    var denial: Denial? {
        get { deniedWith?.denial }
        set { deniedWith = newValue.map(DenialBox.init) }
    }
    private var deniedWith: DenialBox?
    var identity: Identity?
    /// Added to the upstream's response head (the rate-limit fields).
    var extraResponseHeaders: [(name: String, value: String)] = []
    var keepAlive: Bool
    var hasRequestBody = false
    /// The response is a Server-Sent-Event stream (counted in `gatehouse_open_streams`).
    var isEventStream = false

    var transfer: UpstreamTransfer?
    var upstreamStarted: NIODeadline?
    var upstreamHeadAt: NIODeadline?
    /// The upstream's response head is due by then (`upstream_response_timeout`).
    var responseDeadline: NIODeadline?
    var idleTimeout: Duration = .seconds(300)
    var lastActivity = NIODeadline.now()

    var requestEnded = false
    var responseStarted = false
    var responseEnded = false
    var upstreamFinished = false
    var endWritten = false
    var logged = false
    var logNote: String?

    var bytesIn = 0
    var bytesOut = 0

    init(head: HTTPRequestHead, facts: RequestFacts, runtime: Runtime) {
        self.version = head.version
        self.isHEADRequest = head.method == .HEAD
        self.requestBodyExpected = ProxyHandler.bodyFraming(head.headers).mayHaveBytes
        self.facts = facts
        self.runtime = runtime
        self.method = head.method.rawValue
        self.keepAlive = head.isKeepAlive
    }

    func touch() {
        lastActivity = NIODeadline.now()
    }

    /// The exchange is over (or abandoned): no deadline of its own applies any more.
    func clearDeadlines() {
        responseDeadline = nil
    }

    /// Stops the upstream side, if any is still running.
    func abandon() {
        clearDeadlines()
        if !upstreamFinished {
            upstreamFinished = true
            transfer?.cancel()
        }
    }

    func accessLogEntry(now: NIODeadline) -> AccessLogEntry {
        let upstreamMilliseconds: Double? =
            if let started = upstreamStarted, let head = upstreamHeadAt {
                Double((head - started).nanoseconds) / 1_000_000
            } else {
                nil
            }
        return AccessLogEntry(
            requestID: facts.requestID,
            clientIP: facts.client.ip,
            method: method,
            path: path,
            route: route,
            status: status,
            subject: identity?.subject ?? denial?.identity?.subject,
            keyID: identity?.keyID ?? denial?.identity?.keyID ?? denial?.authentication?.keyID,
            durationMilliseconds: Double((now - startedAt).nanoseconds) / 1_000_000,
            upstreamMilliseconds: upstreamMilliseconds,
            bytesIn: bytesIn,
            bytesOut: bytesOut
        )
    }
}

private final class DenialBox {
    let denial: Denial
    init(_ denial: Denial) { self.denial = denial }
}

extension UpstreamRequest.Body {
    /// Whether body bytes may still follow the head.
    var mayHaveBytes: Bool {
        switch self {
        case .none: false
        case .length(let length): length > 0
        case .chunked: true
        }
    }
}
