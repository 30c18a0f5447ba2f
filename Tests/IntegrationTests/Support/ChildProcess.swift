import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn` directly, not Foundation's `Process`.
///
/// Why: on Linux, `Process.run()` in swift-corelibs-foundation (Swift 6.3.1 here) crashes
/// the whole test process intermittently with SIGSEGV in `memcpy` — a 256-byte over-read of
/// `dirent.d_name` in `findMaximumOpenFromProcSelfFD()` while it lists `/proc/self/fd`
/// (swiftlang/swift-corelibs-foundation PR #5472). A test process that runs many gateways
/// has many descriptors open, which makes it likely. This type never reads that directory.
///
/// stdout and stderr go to files (so a chatty child never blocks on a full pipe); the child
/// gets no other descriptor of ours, default signal dispositions and an empty signal mask.
final class ChildProcess: Sendable {
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    /// The decoded exit status once reaped: the exit code, or 128 + signal number.
    private let exit = Mutex<Int32?>(nil)

    enum SpawnError: Error, CustomStringConvertible {
        case failed(String, Int32)
        var description: String {
            switch self {
            case .failed(let path, let code): "posix_spawn \(path) failed: \(String(cString: strerror(code)))"
            }
        }
    }

    private init(pid: pid_t, stdoutPath: String, stderrPath: String) {
        self.pid = pid
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }

    static func spawn(_ executable: String, _ arguments: [String]) throws -> ChildProcess {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("gh-child-\(UUID().uuidString)").path
        let stdoutPath = base + ".out"
        let stderrPath = base + ".err"

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // glibc ≥ 2.34 can close every other descriptor in the child; Swift's Glibc module
        // does not export the function, so look it up. Without it, the descriptors the
        // test process opens are close-on-exec anyway (NIO, SQLite and libcurl set it).
        if let closeFrom = closeFromFunction {
            _ = closeFrom(&actions, 3)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        // argv / envp: C strings owned here until posix_spawn returned (it copies them
        // into the child before returning).
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let code = argv.withUnsafeBufferPointer { argvBuffer in
            // Sound to force: the array always holds at least the executable and the nil.
            posix_spawn(&pid, executable, &actions, &attributes, argvBuffer.baseAddress!, environ)
        }
        guard code == 0 else { throw SpawnError.failed(executable, code) }
        return ChildProcess(pid: pid, stdoutPath: stdoutPath, stderrPath: stderrPath)
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    private static let closeFromFunction: CloseFrom? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: CloseFrom.self)
    }()

    /// The exit status (code, or 128 + signal), or nil while the child runs. Reaps it.
    func exitStatus() -> Int32? {
        exit.withLock { status in
            if status != nil { return status }
            var raw: Int32 = 0
            let reaped = waitpid(pid, &raw, WNOHANG)
            if reaped == pid {
                let signal = raw & 0x7f
                status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
            } else if reaped == -1 && errno == ECHILD {
                // Reaped by someone else (a process-wide SIGCHLD handler): gone, status unknown.
                status = -1
            }
            return status
        }
    }

    var isRunning: Bool { exitStatus() == nil }

    func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits (polling, bounded) for the exit; SIGKILLs the child past `timeout`.
    @discardableResult
    func wait(timeout: Duration) async -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if isRunning {
            kill(pid, SIGKILL)
            let killDeadline = ContinuousClock.now + .seconds(5)
            while isRunning && ContinuousClock.now < killDeadline { try? await Task.sleep(for: .milliseconds(5)) }
        }
        return exitStatus() ?? -1
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func removeOutputFiles() {
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }

    /// Sends `signal`, waits (bounded) for the exit and collects the output.
    func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async -> GatehouseProcess.Result {
        send(signal)
        let status = await wait(timeout: timeout)
        return GatehouseProcess.Result(status: status, stdout: stdout, stderr: stderr)
    }

    /// Runs `gatehouse` with `arguments` to completion (killed past `timeout`).
    static func runGatehouse(_ arguments: [String], timeout: Duration = .seconds(30)) async throws
        -> GatehouseProcess.Result
    {
        let child = try spawn(GatehouseProcess.binary.path, arguments)
        defer { child.removeOutputFiles() }
        let status = await child.wait(timeout: timeout)
        return GatehouseProcess.Result(status: status, stdout: child.stdout, stderr: child.stderr)
    }
}
