import ArgumentParser

#if canImport(Glibc)
    import Glibc
#endif

@main
struct GatehouseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "A token-verifying reverse proxy for HTTP APIs and MCP servers.",
        discussion: "Exit codes: 0 ok, 1 user error (a bad config included), 2 internal error.",
        version: "0.1.0",
        subcommands: [
            ServeCommand.self, DevCommand.self, CheckCommand.self, KeysCommand.self, RevokeCommand.self,
            ExplainCommand.self,
            EchoCommand.self, DenialsCommand.self,
        ]
    )

    /// Runs the command, mapping outcomes onto SPEC §1's exit codes: argument-parser's
    /// usage errors (its own code 64) become 1; anything unexpected becomes 2.
    ///
    /// The entry point is synchronous and the main thread waits for the command, instead of
    /// an `async` main: Swift's async main ends the main thread with `dispatch_main`, and
    /// valgrind (Debian's 3.19) then crashes on the next thread the gateway starts, which
    /// ruled out `make bench-count`'s instruction counts. Nothing here uses the main actor.
    static func main() {
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exitReporting(error)
        }
        let outcome: Result<Void, any Error>
        if let asyncCommand = command as? any AsyncParsableCommand {
            outcome = MainThreadWaiter.run(asyncCommand)
        } else {
            var syncCommand = command
            outcome = Result { try syncCommand.run() }
        }
        if case .failure(let error) = outcome { exitReporting(error) }
    }

    private static func exitReporting(_ error: any Error) -> Never {
        if let exit = error as? ExitCode {
            Glibc.exit(exit.rawValue)
        }
        let code = exitCode(for: error)
        let message = fullMessage(for: error)
        if code == .success {
            print(message)  // --help, --version
            Glibc.exit(0)
        }
        if !message.isEmpty { printError(message) }
        let isUsageError = code.rawValue == 64 || error is ValidationError || error is CleanExit
        Glibc.exit(isUsageError ? 1 : 2)
    }
}

/// `--config` as every command takes it (SPEC §1).
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Path of the config file.")
    var config: String = "proxy.conf"
}
