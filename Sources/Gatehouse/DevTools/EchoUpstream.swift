import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny upstream for trying the gateway without any other service: `gatehouse echo`
/// (and, later, `gatehouse dev`) start it. Any path answers a JSON description of the
/// request it received — so a user sees exactly which headers the gateway injected or
/// stripped — and a path ending in `/sse` streams Server-Sent Events
/// (`?events=N&interval_ms=M`, default 5 events one second apart).
public final class EchoUpstream: Sendable {
    private let channel: any Channel
    public var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) {
        self.channel = channel
    }

    public static func start(host: String, port: Int, group: any EventLoopGroup) async throws -> EchoUpstream {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: host, port: port)
            .get()
        return EchoUpstream(channel: channel)
    }

    public func stop() async {
        try? await channel.close()
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var head: HTTPRequestHead?
    private var bodyBytes = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            guard let head else { return }
            self.head = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            if path.hasSuffix("/sse") {
                streamEvents(head, context: context)
            } else {
                echo(head, context: context)
            }
        }
    }

    private func echo(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        var json = JSONObjectWriter()
        json.field("method", head.method.rawValue)
        json.field("uri", head.uri)
        json.field("headers", head.headers.map { "\($0.name): \($0.value)" })
        json.field("body_bytes", bodyBytes)
        let body = json.finish() + "\n"
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil
        )
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func streamEvents(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let query = QueryParameters(head.uri)
        let events = min(query.int("events") ?? 5, 10_000)
        let interval = TimeAmount.milliseconds(Int64(min(query.int("interval_ms") ?? 1000, 60_000)))
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-cache")
        context.writeAndFlush(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))),
            promise: nil
        )
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        @Sendable func send(_ index: Int) {
            let (handler, context) = loopBound.value
            guard context.channel.isActive else { return }
            if index >= events {
                context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            let event = "id: \(index + 1)\ndata: {\"event\":\(index + 1),\"of\":\(events)}\n\n"
            context.writeAndFlush(
                handler.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: event)))),
                promise: nil
            )
            context.eventLoop.scheduleTask(in: interval) { send(index + 1) }
        }
        send(0)
    }
}

/// `?a=1&b=2` lookup for the dev tools; not used on the gateway's request path.
struct QueryParameters {
    private var values: [String: String] = [:]

    init(_ uri: String) {
        guard let question = uri.firstIndex(of: "?") else { return }
        for pair in uri[uri.index(after: question)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if let key = parts.first { values[String(key)] = parts.count > 1 ? String(parts[1]) : "" }
        }
    }

    func int(_ key: String) -> Int? { values[key].flatMap { Int($0) } }
}
