import ArgumentParser
import Gatehouse

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway.",
        discussion: """
            SIGHUP reloads the config (an invalid one is refused and the old one keeps serving); \
            SIGTERM/SIGINT stop it.
            """
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        guard let loaded = loadConfigReportingIssues(options.config) else { throw ExitStatus.userError }
        let logger = GatewayRunner.logger(for: loaded.config)
        let server = try GatewayRunner.makeServer(loaded.config, logger: logger)
        try await GatewayRunner.start(server)
        await GatewayRunner.runUntilStopped(server, configPath: options.config, logger: logger)
    }
}
