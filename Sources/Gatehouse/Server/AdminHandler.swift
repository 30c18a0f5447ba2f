import NIOCore
import NIOHTTP1

/// What the admin listener reports; each check answers from state, never from I/O.
public struct Readiness: Sendable {
    public var checks: @Sendable () -> [(name: String, ready: Bool)]

    public init(checks: @escaping @Sendable () -> [(name: String, ready: Bool)]) {
        self.checks = checks
    }
}

/// `/healthz` and `/readyz` on the admin listener (SPEC §8). These paths exist only here:
/// on the public port they are ordinary paths routed like any other.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let readiness: Readiness
    private let metricsText: @Sendable () -> String
    private var current: HTTPRequestHead?

    init(readiness: Readiness, metricsText: @escaping @Sendable () -> String) {
        self.readiness = readiness
        self.metricsText = metricsText
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            current = head
        case .body:
            break
        case .end:
            guard let head = current else { return }
            current = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let (status, body): (HTTPResponseStatus, String)
        var contentType = "application/json"
        switch (head.method, path) {
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            (status, body) = (.ok, metricsText())
            contentType = "text/plain; version=0.0.4; charset=utf-8"
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            (status, body) = (.ok, #"{"status":"ok"}"#)
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            let checks = readiness.checks()
            let ready = checks.allSatisfy(\.ready)
            var json = JSONObjectWriter()
            json.field("status", ready ? "ready" : "not_ready")
            json.field("not_ready", checks.filter { !$0.ready }.map(\.name))
            (status, body) = (ready ? .ok : .serviceUnavailable, json.finish())
        case (_, "/healthz"), (_, "/readyz"), (_, "/metrics"):
            (status, body) = (.methodNotAllowed, #"{"error":"method_not_allowed"}"#)
        default:
            (status, body) = (.notFound, #"{"error":"not_found"}"#)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if head.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let closeAfter: EventLoopPromise<Void>? = head.isKeepAlive ? nil : context.eventLoop.makePromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: closeAfter)
        if let closeAfter {
            let channel = context.channel
            closeAfter.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
