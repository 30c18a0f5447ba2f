import Foundation

/// Runs the real `gatehouse` executable that `swift build --build-tests` produced.
struct GatehouseProcess {
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

    static var binary: URL {
        let env = ProcessInfo.processInfo.environment["GATEHOUSE_BIN"]
        return env.map { URL(fileURLWithPath: $0) } ?? repositoryRoot.appendingPathComponent(".build/debug/gatehouse")
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs to completion (bounded by `timeout`; killed past it).
    static func run(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> Result {
        let running = try start(arguments)
        _ = await running.child.wait(timeout: timeout)
        return running.collect()
    }

    /// Starts the binary with `posix_spawn` (through `ChildProcess`): Foundation's
    /// `Process.run()` can crash on Linux with this toolchain when many descriptors are open.
    static func start(_ arguments: [String]) throws -> Running {
        Running(child: try ChildProcess.spawn(binary.path, arguments))
    }

    struct Running: Sendable {
        let child: ChildProcess

        var pid: pid_t { child.pid }
        var stdoutFile: URL { URL(fileURLWithPath: child.stdoutPath) }
        var stderrFile: URL { URL(fileURLWithPath: child.stderrPath) }

        func collect() -> Result {
            Result(status: child.exitStatus() ?? -1, stdout: child.stdout, stderr: child.stderr)
        }

        func stderrSoFar() -> String { child.stderr }

        /// Sends `signal` and waits (bounded) for the exit.
        func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async throws -> Result {
            child.send(signal)
            _ = await child.wait(timeout: timeout)
            return collect()
        }
    }

    /// Writes `text` to a fresh temporary directory as `proxy.conf`; returns its path.
    /// A config with one `auth = "none"` route to `upstreamPort`, no admin listener and no
    /// access log: for tests about the process itself. `serverLines` go under [server].
    static func writeOpenRouteConfig(
        port: Int, upstreamPort: Int, serverLines: [String] = [], denials: String = "off"
    ) throws -> String {
        try writeConfig(
            """
            [server]
            listen = "127.0.0.1:\(port)"
            \(serverLines.joined(separator: "\n"))
            [admin]
            listen = "off"
            [logs]
            access = "off"
            denials = "\(denials)"
            [[routes]]
            name = "r"
            path = "/"
            upstream = "http://127.0.0.1:\(upstreamPort)/"
            auth = "none"
            """
        )
    }

    static func writeConfig(_ text: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gh-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("proxy.conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
