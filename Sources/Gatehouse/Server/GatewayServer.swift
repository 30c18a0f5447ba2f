import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The gateway process minus the CLI: public listener, admin listener, forwarder, logs.
public final class GatewayServer: Sendable {
    public let runtimes: RuntimeStore
    private let group: MultiThreadedEventLoopGroup
    private let forwarder: Forwarder
    private let accessLog: AccessLog
    private let logger: Logger
    private let channels: BoundChannels

    /// Where the listeners actually bound (port 0 in the config picks a free port).
    public var publicPort: Int { channels.value.publicChannel?.localAddress?.port ?? 0 }
    public var adminPort: Int? { channels.value.adminChannel?.localAddress?.port }

    public init(config: GatewayConfig, logger: Logger = Logger(label: "gatehouse")) throws {
        let loops = config.server.eventLoops > 0 ? config.server.eventLoops : System.coreCount
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
        self.forwarder = try Forwarder(threads: config.server.upstreamThreads)
        self.accessLog = try AccessLog(config.logs.access)
        self.runtimes = RuntimeStore(Runtime(config: config))
        self.logger = logger
        self.channels = BoundChannels()
    }

    /// Binds both listeners. Throws (with the address in the message) when a port is taken.
    public func start() async throws {
        let config = runtimes.runtime.config
        let services = GatewayServices(runtimes: runtimes, forwarder: forwarder, accessLog: accessLog)
        let limits = {
            var limits = NIOHTTPDecoderLimitConfiguration()
            // The decoder refuses (413) heads past this before buffering more.
            limits.maxHeaderListSize = config.server.maxHeaderBytes
            limits.maxHeaderFieldSize = config.server.maxHeaderBytes
            return limits
        }()
        let publicChannel = try await bind(config.server.listen, what: "server.listen") { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                    withErrorHandling: false,
                    withEncoderConfiguration: .init(),
                    withDecoderLimitConfiguration: limits
                )
                try channel.pipeline.syncOperations.addHandler(ProxyHandler(services: services, scheme: "http"))
            }
        }
        channels.set { $0.publicChannel = publicChannel }
        logger.info(
            "gatehouse listening", metadata: ["address": "\(config.server.listen)", "routes": "\(config.routes.count)"])

        if let adminAddress = config.admin.listen {
            let readiness = Readiness { [runtimes] in
                [("config", !runtimes.runtime.config.routes.isEmpty)]
            }
            let adminChannel = try await bind(adminAddress, what: "admin.listen") { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(readiness: readiness))
                }
            }
            channels.set { $0.adminChannel = adminChannel }
            logger.info("admin listening", metadata: ["address": "\(adminAddress)"])
        }
    }

    private func bind(
        _ address: ListenAddress,
        what key: String,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) async throws -> any Channel {
        do {
            return try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 4)
                .childChannelInitializer(initializer)
                .bind(host: address.host, port: address.port)
                .get()
        } catch {
            throw ServerStartError(key: key, address: address, underlying: error)
        }
    }

    /// Waits until the public listener closes.
    public func waitUntilClosed() async throws {
        try await channels.value.publicChannel?.closeFuture.get()
    }

    /// Stops accepting, aborts upstream transfers, flushes logs, stops threads.
    public func shutdown() async {
        let (publicChannel, adminChannel) = channels.value.pair
        try? await publicChannel?.close()
        try? await adminChannel?.close()
        forwarder.shutdown()
        accessLog.close()
        try? await group.shutdownGracefully()
    }
}

public struct ServerStartError: Error, CustomStringConvertible {
    public var key: String
    public var address: ListenAddress
    public var underlying: any Error

    public var description: String { "\(key): cannot listen on \(address): \(underlying)" }
}

/// The bound channels, set once at start and read by the accessors above.
final class BoundChannels: Sendable {
    struct Value {
        var publicChannel: (any Channel)?
        var adminChannel: (any Channel)?
        var pair: ((any Channel)?, (any Channel)?) { (publicChannel, adminChannel) }
    }

    private let box = NIOLockedValueBox(Value())

    var value: Value { box.withLockedValue { $0 } }

    func set(_ update: (inout Value) -> Void) {
        box.withLockedValue { update(&$0) }
    }
}
