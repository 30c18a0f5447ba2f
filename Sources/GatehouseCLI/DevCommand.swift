import ArgumentParser
import Foundation
import Gatehouse
import NIOPosix

struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Zero-setup demo: a signing key, a config, a key store, an echo upstream and the gateway.",
        discussion: """
            Everything lives under --dir (default ./.gatehouse-dev/) and is reused on the next run. \
            Prints a sample JWT, a sample API key and curl lines to try them.
            """
    )

    @Option(help: "Folder for the generated key pair, config and key store.")
    var dir: String = ".gatehouse-dev"

    @Option(help: "Gateway address.")
    var listen: String = "127.0.0.1:8080"

    @Option(name: .customLong("admin-listen"), help: "Admin address (/healthz, /readyz).")
    var adminListen: String = "127.0.0.1:9090"

    func run() async throws {
        let directory = URL(fileURLWithPath: dir).standardizedFileURL.path
        let environment = DevEnvironment(directory: directory)
        let signingKey: DevSigningKey
        do {
            signingKey = try environment.prepareSigningKey()
        } catch {
            printError("cannot prepare \(directory): \(error)")
            throw ExitStatus.userError
        }

        let upstream: EchoUpstream
        do {
            upstream = try await EchoUpstream.start(
                host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
            try environment.writeConfig(listen: listen, admin: adminListen, upstreamPort: upstream.port)
        } catch {
            printError("cannot start the echo upstream or write the config: \(error)")
            throw ExitStatus.internalError
        }
        guard let loaded = loadConfigReportingIssues(environment.configPath) else { throw ExitStatus.userError }
        let config = loaded.config

        let apiKey: String
        let token: String
        do {
            let store = try APIKeyStore(path: config.apiKeys.store, prefix: config.apiKeys.prefix)
            // One live sample key at a time: the previous run's sample is revoked.
            for record in try store.list() where record.name == "dev-sample" && record.revoked == nil {
                _ = try store.revoke(id: record.id)
            }
            apiKey = try store.create(
                name: "dev-sample",
                subject: "dev-user",
                email: "dev@example.com",
                org: "org-dev",
                role: "developer",
                scopes: ["mcp:read", "logs:read"],
                expiresIn: .seconds(7 * 24 * 3600)
            ).fullKey
            token = try DevEnvironment.mintToken(key: signingKey)
        } catch {
            printError("cannot create the sample credentials: \(error)")
            throw ExitStatus.internalError
        }

        let logger = GatewayRunner.logger(for: config)
        let server = try GatewayRunner.makeServer(config, logger: logger)
        try await GatewayRunner.start(
            server, hint: " (another gateway running? try: gatehouse dev --listen 127.0.0.1:8081)")
        let base = "http://\(config.server.listen.host):\(server.publicPort)"
        let admin = server.adminPort.map { "http://\(config.admin.listen?.host ?? "127.0.0.1"):\($0)" } ?? "off"
        // Written straight to fd 1: the banner must show at once even when stdout is a pipe.
        FileDescriptorOutput(fd: 1).write(
            """

            Gatehouse dev is running on \(base) (admin: \(admin)), in front of an echo upstream.
            Files: \(directory)/ (proxy.conf, signing key, keys.db, logs/denials.jsonl). Ctrl-C stops.
            Every refusal is in the denial log: gatehouse denials --config \(environment.configPath)

            Sample JWT (ES256, sub=dev-user, role=developer, valid 24 h):
              \(token)

            Sample API key (shown once; also stored hashed in keys.db):
              \(apiKey)

            Try:
              curl -i \(base)/echo/hello -H 'Authorization: Bearer \(token)'
              curl -i \(base)/echo/hello -H 'X-Api-Key: \(apiKey)'
              curl -N \(base)/events?events=3 -H 'X-Api-Key: \(apiKey)'
              curl -i \(base)/admin/users -H 'X-Api-Key: \(apiKey)'        # 403: a developer is not an admin
              curl -i \(base)/echo/hello                                   # 401 missing_credentials
              curl -i \(base)/public/hello -H 'X-User-Id: spoofed'         # auth = "none": spoofed identity stripped

            """
        )
        await GatewayRunner.runUntilStopped(server, configPath: environment.configPath, logger: logger)
        await upstream.stop()
    }
}
