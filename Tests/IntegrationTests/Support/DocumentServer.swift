import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A tiny HTTP/1.1 server on 127.0.0.1 serving one mutable document (a JWKS, say) at
/// every path, with switches to answer 500 or to drop connections without answering.
/// Counts the requests it got, whatever it answered.
final class DocumentServer: Sendable {
    enum Mode: Sendable, Equatable {
        /// 200 with the current document.
        case serve
        /// 500 with a small text body.
        case fail500
        /// Close the connection once the request arrived, without any response.
        case close
    }

    fileprivate struct State {
        var document: String
        var contentType = "application/json"
        var mode: Mode
        var requests = 0
    }

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let box: StateBox
    let port: Int

    /// The URL of the document (any path works).
    var url: String { "http://127.0.0.1:\(port)/.well-known/jwks.json" }

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel, box: StateBox, port: Int) {
        self.group = group
        self.channel = channel
        self.box = box
        self.port = port
    }

    static func with<T: Sendable>(
        document: String,
        mode: Mode = .serve,
        _ body: (DocumentServer) async throws -> T
    ) async throws -> T {
        let server = try await start(document: document, mode: mode)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    static func start(document: String, mode: Mode = .serve) async throws -> DocumentServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Shared by every connection's handler and the test.
        let box = StateBox(State(document: document, mode: mode))
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(DocumentHandler(box: box))
                    }
                }
                .bind(host: "127.0.0.1", port: 0)
                .get()
            guard let port = channel.localAddress?.port else { throw UpstreamError.noLocalPort }
            return DocumentServer(group: group, channel: channel, box: box, port: port)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    func setDocument(_ document: String) {
        box.value.withLock { $0.document = document }
    }

    func setMode(_ mode: Mode) {
        box.value.withLock { $0.mode = mode }
    }

    /// Requests received so far (answered or not).
    func requestCount() -> Int {
        box.value.withLock { $0.requests }
    }
}

private final class StateBox: Sendable {
    let value: Mutex<DocumentServer.State>

    init(_ state: DocumentServer.State) {
        value = Mutex(state)
    }
}

private final class DocumentHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let box: StateBox

    init(box: StateBox) {
        self.box = box
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        let (mode, document, contentType) = box.value.withLock { state in
            state.requests += 1
            return (state.mode, state.document, state.contentType)
        }
        switch mode {
        case .close:
            context.close(promise: nil)
        case .serve, .fail500:
            let body = mode == .serve ? document : "internal error\n"
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: mode == .serve ? contentType : "text/plain")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            headers.add(name: "Connection", value: "close")
            let head = HTTPResponseHead(
                version: .http1_1, status: mode == .serve ? .ok : .internalServerError, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
