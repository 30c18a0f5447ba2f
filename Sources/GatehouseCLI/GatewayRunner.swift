import Gatehouse
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The part `serve` and `dev` share: start the server, then live by signals — SIGHUP
/// reloads the config file, SIGTERM/SIGINT stop.
enum GatewayRunner {
    /// Builds the server, reporting unusable keys or stores as user errors.
    static func makeServer(_ config: GatewayConfig, logger: Logger) throws -> GatewayServer {
        do {
            return try GatewayServer(config: config, logger: logger)
        } catch let errors as ConfigErrors {
            for issue in errors.issues { printError(issue.description) }
            throw ExitStatus.userError
        } catch {
            printError("cannot start: \(error)")
            throw ExitStatus.internalError
        }
    }

    static func start(_ server: GatewayServer, hint: String = "") async throws {
        OpenFileLimit.raiseToHardLimit()
        do {
            try await server.start()
        } catch let error as ServerStartError {
            printError(error.description + hint)
            await server.shutdown()
            throw ExitStatus.userError
        }
    }

    static func runUntilStopped(_ server: GatewayServer, configPath: String, logger: Logger) async {
        for await signal in SignalWaiter.signals([SIGTERM, SIGINT, SIGHUP]) {
            if signal == SIGHUP {
                server.reopenLogs()
                reload(server: server, configPath: configPath, logger: logger)
                continue
            }
            logger.info("shutting down", metadata: ["signal": "\(signal)"])
            break
        }
        await server.shutdown()
    }

    static func logger(for config: GatewayConfig) -> Logger {
        var logger = Logger(label: "gatehouse")
        logger.logLevel = Logger.Level(rawValue: config.logs.level.rawValue) ?? .info
        return logger
    }

    private static func reload(server: GatewayServer, configPath: String, logger: Logger) {
        do {
            let result = try ConfigLoader.load(path: configPath)
            let old = server.runtimes.runtime.config
            if result.config.server.listen != old.server.listen || result.config.admin.listen != old.admin.listen {
                logger.warning("listen addresses changed: they take effect only after a restart")
            }
            let warnings = try server.reload(result.config)
            for warning in result.warnings + warnings { logger.warning("\(warning)") }
            server.metrics.configReloaded(success: true)
            logger.info("config reloaded", metadata: ["routes": "\(result.config.routes.count)"])
        } catch {
            server.metrics.configReloaded(success: false)
            logger.error(
                "config reload refused; the previous config keeps serving",
                metadata: ["errors": "\(error.issues.map(\.description).joined(separator: "; "))"]
            )
        }
    }
}
