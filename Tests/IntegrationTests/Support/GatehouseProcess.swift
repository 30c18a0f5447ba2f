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
        let deadline = ContinuousClock.now + timeout
        while running.process.isRunning && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        if running.process.isRunning { running.process.terminate() }
        running.process.waitUntilExit()
        return running.collect()
    }

    static func start(_ arguments: [String]) throws -> Running {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("gh-out-\(UUID().uuidString)")
        let err = FileManager.default.temporaryDirectory.appendingPathComponent("gh-err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        return Running(process: process, stdoutFile: out, stderrFile: err)
    }

    struct Running {
        let process: Process
        let stdoutFile: URL
        let stderrFile: URL

        func collect() -> Result {
            let stdout = (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? ""
            let stderr = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
            return Result(status: process.terminationStatus, stdout: stdout, stderr: stderr)
        }

        func stderrSoFar() -> String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

        /// Sends `signal` and waits (bounded) for the exit.
        func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async throws -> Result {
            kill(process.processIdentifier, signal)
            let deadline = ContinuousClock.now + timeout
            while process.isRunning && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return collect()
        }
    }

    /// Writes `text` to a fresh temporary directory as `proxy.conf`; returns its path.
    static func writeConfig(_ text: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gh-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("proxy.conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
