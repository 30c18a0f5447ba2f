import ArgumentParser
import Gatehouse

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a config file: exit 0, or 1 listing every error with its key path."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        guard let result = loadConfigReportingIssues(options.config) else { throw ExitStatus.userError }
        let config = result.config
        // Key files are read here too, exactly as `serve` reads them.
        do {
            let setup = try CredentialSetup.build(config, apiKeys: APIKeyVerifier(prefix: config.apiKeys.prefix))
            for warning in setup.warnings { printError(warning.description) }
        } catch {
            for issue in error.issues { printError(issue.description) }
            printError("\(options.config): \(error.errors.count) error(s); the config was not loaded")
            throw ExitStatus.userError
        }
        print(
            "\(options.config): OK — \(config.routes.count) route\(config.routes.count == 1 ? "" : "s"), listening on \(config.server.listen)"
        )
        for route in config.routes {
            let methods = route.methods?.joined(separator: ",") ?? "any method"
            print("  \(route.name): \(route.path) -> \(route.upstream) (\(methods), auth \(route.auth.rawValue))")
        }
    }
}
