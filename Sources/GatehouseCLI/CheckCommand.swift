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
        print(
            "\(options.config): OK — \(config.routes.count) route\(config.routes.count == 1 ? "" : "s"), listening on \(config.server.listen)"
        )
        for route in config.routes {
            let methods = route.methods?.joined(separator: ",") ?? "any method"
            print("  \(route.name): \(route.path) -> \(route.upstream) (\(methods), auth \(route.auth.rawValue))")
        }
    }
}
