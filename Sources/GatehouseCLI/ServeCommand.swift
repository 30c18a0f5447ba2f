import ArgumentParser
import Gatehouse
import Logging

#if canImport(Glibc)
    import Glibc
#endif

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway.",
        discussion:
            "SIGHUP reloads the config (an invalid one is refused and the old one keeps serving); SIGTERM/SIGINT stop it."
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        guard let loaded = loadConfigReportingIssues(options.config) else { throw ExitStatus.userError }
        let config = loaded.config
        var logger = Logger(label: "gatehouse")
        logger.logLevel = Logger.Level(rawValue: config.logs.level.rawValue) ?? .info

        let server: GatewayServer
        do {
            server = try GatewayServer(config: config, logger: logger)
        } catch {
            printError("cannot start: \(error)")
            throw ExitStatus.userError
        }
        do {
            try await server.start()
        } catch let error as ServerStartError {
            printError(error.description)
            await server.shutdown()
            throw ExitStatus.userError
        }

        for await signal in SignalWaiter.signals([SIGTERM, SIGINT, SIGHUP]) {
            if signal == SIGHUP {
                reload(server: server, logger: logger)
                continue
            }
            logger.info("shutting down", metadata: ["signal": "\(signal)"])
            break
        }
        await server.shutdown()
    }

    private func reload(server: GatewayServer, logger: Logger) {
        do {
            let result = try ConfigLoader.load(path: options.config)
            let old = server.runtimes.runtime.config
            if result.config.server.listen != old.server.listen || result.config.admin.listen != old.admin.listen {
                logger.warning("listen addresses changed: they take effect only after a restart")
            }
            server.runtimes.replace(with: Runtime(config: result.config))
            logger.info("config reloaded", metadata: ["routes": "\(result.config.routes.count)"])
        } catch {
            logger.error(
                "config reload refused; the previous config keeps serving",
                metadata: ["errors": "\(error.issues.map(\.description).joined(separator: "; "))"]
            )
        }
    }
}
