import ArgumentParser

@main
struct GatehouseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "A token-verifying reverse proxy for HTTP APIs and MCP servers.",
        discussion: "Exit codes: 0 ok, 1 user error (a bad config included), 2 internal error.",
        version: "0.1.0",
        subcommands: [ServeCommand.self, CheckCommand.self, EchoCommand.self]
    )
}

/// `--config` as every command takes it (SPEC §1).
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Path of the config file.")
    var config: String = "proxy.conf"
}
