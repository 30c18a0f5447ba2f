import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The gateway process minus the CLI: public listener, admin listener, forwarder, logs.
public final class GatewayServer: Sendable {
    public let runtimes: RuntimeStore
    private let group: MultiThreadedEventLoopGroup
    private let forwarder: Forwarder
    private let accessLog: AccessLog
    private let denialLog: DenialLog
    private let logger: Logger
    private let channels: BoundChannels
    private let services: GatewayServices
    private let tlsContext: NIOSSLContext?
    public let metrics: GatewayMetrics
    /// Shared by every runtime: it follows the key store, not the config.
    private let apiKeys: APIKeyVerifier
    private let keyStoreWatcher: KeyStoreWatcher
    private let refresher: NIOLockedValueBox<JWKSRefresher>

    /// Where the listeners actually bound (port 0 in the config picks a free port).
    public var publicPort: Int { channels.value.publicChannel?.localAddress?.port ?? 0 }
    public var adminPort: Int? { channels.value.adminChannel?.localAddress?.port }

    /// Opens the key store and loads every key. Throws `ConfigErrors` for a key file or
    /// store that cannot be used (a user error), other errors for the machine's own faults.
    public init(config: GatewayConfig, logger: Logger = Logger(label: "gatehouse")) throws {
        let apiKeys = APIKeyVerifier(prefix: config.apiKeys.prefix)
        do {
            self.keyStoreWatcher = try KeyStoreWatcher(storePath: config.apiKeys.store, verifier: apiKeys) { message in
                logger.error("key store problem; the last loaded keys stay in use", metadata: ["error": "\(message)"])
            }
        } catch {
            throw ConfigErrors(issues: [
                ConfigIssue(
                    severity: .error,
                    keyPath: "api_keys.store",
                    line: nil,
                    message: "cannot open the key store \(config.apiKeys.store): \(error)",
                    sourcePath: config.sourcePath
                )
            ])
        }
        self.apiKeys = apiKeys
        self.tlsContext = try config.server.tls.map { files throws(ConfigErrors) in
            try TLSSetup.makeContext(files, sourcePath: config.sourcePath)
        }
        let metrics = GatewayMetrics()
        self.metrics = metrics
        let setup = try CredentialSetup.build(config, apiKeys: apiKeys)
        for warning in setup.warnings { logger.warning("\(warning)") }
        self.refresher = NIOLockedValueBox(Self.makeRefresher(setup.jwksSources, logger: logger, metrics: metrics))
        self.accessLog = try AccessLog(config.logs.access)
        self.denialLog = try DenialLog(
            path: config.logs.denials,
            maxBytes: config.logs.denialsMaxBytes,
            keep: config.logs.denialsKeep
        )
        // Threads last, after everything that can fail on a user's input (log paths).
        let loops = config.server.eventLoops > 0 ? config.server.eventLoops : System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
        do {
            self.forwarder = try Forwarder(
                threads: config.server.upstreamThreads, eventLoops: Array(group.makeIterator()))
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
        self.runtimes = RuntimeStore(Runtime(config: config, authenticator: setup.authenticator))
        self.logger = logger
        self.channels = BoundChannels()
        self.services = GatewayServices(
            runtimes: runtimes,
            forwarder: forwarder,
            accessLog: accessLog,
            denialLog: denialLog,
            metrics: metrics
        )
    }

    private static func makeRefresher(
        _ sources: [(issuer: String, url: String, refresh: Duration, keys: IssuerKeys)],
        logger: Logger,
        metrics: GatewayMetrics
    ) -> JWKSRefresher {
        let refresher = JWKSRefresher(
            sources: sources.map { source in
                JWKSRefresher.Source(issuer: source.issuer, url: source.url, refresh: source.refresh) { body in
                    do {
                        let set = try KeyLoading.parseJWKS(body, source: source.url)
                        guard !set.keys.isEmpty else { return .failure(JWKSInstallError("no usable signing key")) }
                        source.keys.replaceJWKS(set.keys)
                        return .success(set.keys.count)
                    } catch {
                        return .failure(JWKSInstallError("\(error)"))
                    }
                }
            },
            logger: logger,
            onFailure: { issuer in metrics.jwksFetchFailed(issuer: issuer) }
        )
        for source in sources {
            let issuer = source.issuer
            source.keys.setUnknownKidHandler { [weak refresher] in refresher?.unknownKeySeen(issuer: issuer) }
        }
        return refresher
    }

    /// Applies a new config without a restart (SIGHUP): a new runtime is built beside the
    /// old one and swapped in whole; in-flight requests finish on the old one. Throws, and
    /// changes nothing, when the new config's keys cannot be loaded.
    public func reload(_ config: GatewayConfig) throws(ConfigErrors) -> [ConfigIssue] {
        let old = runtimes.runtime
        let setup = try CredentialSetup.build(config, apiKeys: apiKeys)
        // Keep fetched JWKS keys for issuers whose URL did not change, so a reload never
        // makes the gateway unready while it refetches.
        if let oldAuthenticator = old.authenticator {
            for source in setup.jwksSources {
                guard old.config.issuers.contains(where: { $0.issuer == source.issuer && $0.jwksURL == source.url }),
                    let previous = oldAuthenticator.issuerKeys.first(where: { $0.issuer == source.issuer })?.keys,
                    previous.hasLoadedKeys
                else { continue }
                source.keys.replaceJWKS(Array(previous.allKeys.dropFirst(previous.staticKeys.count)))
            }
        }
        let newRefresher = Self.makeRefresher(setup.jwksSources, logger: logger, metrics: metrics)
        runtimes.replace(with: Runtime(config: config, authenticator: setup.authenticator, previous: old))
        let oldRefresher = refresher.withLockedValue { current in
            defer { current = newRefresher }
            return current
        }
        oldRefresher.stop()
        newRefresher.start()
        var warnings = setup.warnings
        if config.apiKeys.store != old.config.apiKeys.store || config.apiKeys.prefix != old.config.apiKeys.prefix {
            warnings.append(
                ConfigIssue(
                    severity: .warning,
                    keyPath: "api_keys",
                    line: nil,
                    message: "a changed key store or prefix takes effect only after a restart",
                    sourcePath: config.sourcePath
                )
            )
        }
        return warnings
    }

    /// Binds both listeners. Throws (with the address in the message) when a port is taken.
    public func start() async throws {
        keyStoreWatcher.start()
        refresher.withLockedValue { $0 }.start()
        // Full buckets and expired lock-outs are dropped once a minute to bound memory.
        let runtimes = self.runtimes
        _ = group.next().scheduleRepeatedTask(initialDelay: .seconds(60), delay: .seconds(60)) { _ in
            let runtime = runtimes.runtime
            let now = MonotonicClock.seconds()
            runtime.rateLimiter.sweep(now: now)
            runtime.authFailures.sweep(now: now)
        }
        let config = runtimes.runtime.config
        let services = self.services
        let limits = {
            var limits = NIOHTTPDecoderLimitConfiguration()
            // The decoder refuses (413) heads past this before buffering more.
            limits.maxHeaderListSize = config.server.maxHeaderBytes
            limits.maxHeaderFieldSize = config.server.maxHeaderBytes
            return limits
        }()
        let tlsContext = self.tlsContext
        let scheme = tlsContext == nil ? "http" : "https"
        let publicChannel = try await bind(config.server.listen, what: "server.listen") { channel in
            channel.eventLoop.makeCompletedFuture {
                if let tlsContext {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                }
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                    withPipeliningAssistance: false,
                    withErrorHandling: false,
                    withEncoderConfiguration: .init(),
                    withDecoderLimitConfiguration: limits
                )
                // The pipelining assistant goes in by hand so that the read keeper sits below it.
                try channel.pipeline.syncOperations.addHandlers(
                    ReadInterestKeeper(),
                    HTTPServerPipelineHandler(),
                    ProxyHandler(services: services, scheme: scheme)
                )
            }
        }
        channels.set { $0.publicChannel = publicChannel }
        logger.info(
            "gatehouse listening",
            metadata: [
                "address": "\(Self.describe(publicChannel.localAddress, or: config.server.listen))",
                "routes": "\(config.routes.count)",
                "scheme": "\(scheme)",
                "allocator": "\(MemoryAllocator.provider() ?? "unknown")",
            ]
        )

        if let adminAddress = config.admin.listen {
            let readiness = Readiness { [runtimes, keyStoreWatcher] in
                let runtime = runtimes.runtime
                var checks: [(name: String, ready: Bool)] = [("config", !runtime.config.routes.isEmpty)]
                checks.append(("key_store", keyStoreWatcher.failures == 0))
                for issuer in runtime.authenticator?.issuersWithoutKeys ?? [] {
                    checks.append(("jwks:\(issuer)", false))
                }
                return checks
            }
            let metricsText: @Sendable () -> String = { [metrics, keyStoreWatcher] in
                metrics.observeKeyStoreReloads(total: keyStoreWatcher.reloads)
                return metrics.render()
            }
            let adminChannel = try await bind(adminAddress, what: "admin.listen") { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        AdminHandler(readiness: readiness, metricsText: metricsText)
                    )
                }
            }
            channels.set { $0.adminChannel = adminChannel }
            logger.info(
                "admin listening",
                metadata: ["address": "\(Self.describe(adminChannel.localAddress, or: adminAddress))"])
        }
    }

    /// The address a listener really bound (port 0 in the config picks a free one).
    private static func describe(_ bound: SocketAddress?, or configured: ListenAddress) -> String {
        guard let bound, let ip = bound.ipAddress, let port = bound.port else { return configured.description }
        return ListenAddress(host: ip, port: port).description
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
                // Each connection keeps its receive buffer between reads, so an idle event
                // stream holds one for hours. NIO starts at 2 KiB; with 1 KiB a larger
                // request head (a big RS256 token and many headers) takes a second read,
                // after which the adaptive allocator grows the buffer for that connection.
                .childChannelOption(
                    .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536)
                )
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

    /// Reopens the log files (after logrotate moved them; SIGHUP).
    public func reopenLogs() {
        do {
            try accessLog.reopen()
            try denialLog.reopen()
        } catch {
            logger.error("cannot reopen a log file", metadata: ["error": "\(error)"])
        }
    }

    /// Requests currently between their head and their log line.
    public var requestsInFlight: Int { services.inFlight.load(ordering: .relaxed) }

    /// Graceful stop (SIGTERM/SIGINT): the listeners close at once; every connection is
    /// told to finish its current request and close (idle ones close now); requests in
    /// flight — open streams included — get up to `shutdown_grace`; whatever is left is
    /// then aborted; logs are flushed and the threads stopped.
    public func shutdown() async {
        let (publicChannel, adminChannel) = channels.value.pair
        try? await publicChannel?.close()
        try? await adminChannel?.close()
        let open = services.connections.withLockedValue { Array($0.values) }
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        let grace = runtimes.runtime.config.server.shutdownGrace
        let deadline = ContinuousClock.now + grace
        while requestsInFlight > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if requestsInFlight > 0 {
            logger.warning(
                "shutdown grace elapsed; aborting requests still in flight",
                metadata: ["requests": "\(requestsInFlight)"])
        }
        forwarder.shutdown()
        for channel in services.connections.withLockedValue({ Array($0.values) }) { try? await channel.close() }
        refresher.withLockedValue { $0 }.stop()
        keyStoreWatcher.stop()
        accessLog.close()
        denialLog.close()
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
