import ArgumentParser
import Gatehouse
import NIOPosix

struct EchoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo",
        abstract: "Run a small echo upstream (JSON description of each request; …/sse streams events).",
        discussion: "For trying the gateway locally: `make run` starts it on 127.0.0.1:3001."
    )

    @Option(help: "Address to listen on (loopback by default).")
    var listen: String = "127.0.0.1:3001"

    func run() async throws {
        OpenFileLimit.raiseToHardLimit()  // it holds one descriptor per open stream
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
            printError("--listen must be host:port, got \(listen)")
            throw ExitStatus.userError
        }
        let host = String(listen[..<colon]).trimmingCharacters(in: ["[", "]"])
        let upstream: EchoUpstream
        do {
            upstream = try await EchoUpstream.start(
                host: host, port: port, group: MultiThreadedEventLoopGroup.singleton)
        } catch {
            printError("cannot listen on \(listen): \(error)")
            throw ExitStatus.userError
        }
        printError("echo upstream listening on \(host):\(upstream.port)")
        try await SignalWaiter.waitForTermination()
        await upstream.stop()
    }
}
