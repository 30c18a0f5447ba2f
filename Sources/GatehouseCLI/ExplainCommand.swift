import ArgumentParser
import Gatehouse

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show, step by step, what the gateway would decide for a request (offline).",
        discussion: """
            Runs the server's own decision code against the config and the key store, without \
            sending anything upstream. Exit 0 whatever the verdict; 1 for bad input.
            """
    )

    @OptionGroup var options: ConfigOption

    @Option(help: "A JWT to present as 'Authorization: Bearer'.")
    var token: String?

    @Option(name: .customLong("api-key"), help: "An API key to present in the API-key header.")
    var apiKey: String?

    @Option(name: .customLong("client-ip"), help: "The client address to assume.")
    var clientIP: String = "127.0.0.1"

    @Argument(help: "HTTP method, e.g. GET.")
    var method: String

    @Argument(help: "Request target, e.g. /mcp/github/repos?x=1.")
    var path: String

    func validate() throws {
        if token != nil && apiKey != nil { throw ValidationError("give --token or --api-key, not both") }
        if token == nil && apiKey == nil { throw ValidationError("give --token T or --api-key K") }
        guard IPAddress.parse(clientIP) != nil else { throw ValidationError("--client-ip is not an IP address") }
        guard !method.isEmpty, method.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw ValidationError("METHOD must be a token such as GET")
        }
    }

    func run() async throws {
        guard let loaded = loadConfigReportingIssues(options.config) else { throw ExitStatus.userError }
        let explanation: Explanation
        do {
            explanation = try Explainer.explain(
                config: loaded.config,
                method: method.uppercased(),
                target: path,
                token: token,
                apiKey: apiKey,
                clientIP: clientIP
            )
        } catch {
            for issue in error.issues { printError(issue.description) }
            throw ExitStatus.userError
        }
        for step in explanation.steps {
            print(step.label.padding(toLength: 12, withPad: " ", startingAt: 0) + step.text)
        }
    }
}
