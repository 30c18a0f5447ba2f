import Foundation

/// Keeps a running gateway in step with its key store (SPEC §3: keys and revocations
/// made by the CLI take effect within 2 s, `last_used` is written in batches).
///
/// Every `pollInterval` (500 ms) it reads `PRAGMA data_version` on its own connection;
/// when another connection committed since, it loads a new snapshot and swaps it into the
/// verifier (and so into its `RevocationList`). Every `flushInterval` (5 s), and on
/// `stop()`, it writes the queued `last_used` times in one transaction. Its own writes
/// leave its own `data_version` alone, so a flush never causes a reload.
///
/// A dedicated thread rather than a task on a NIO event loop: every SQLite call blocks,
/// for up to the 5 s busy timeout while the CLI holds the write lock, and an event loop
/// that blocks stalls every connection it serves.
///
/// Threading: every public member may be used from any thread. `@unchecked Sendable` is
/// sound because the control state (`phase`, counters) is only touched under `condition`,
/// and `store` / `lastVersion` / `lastError` (not Sendable, not locked) are confined: used
/// by `init`, then only by the watcher thread once `start()` launched it, or by the one
/// `stop()` call that finds the watcher never started (the phase change under the lock
/// guarantees no thread will run after it).
public final class KeyStoreWatcher: @unchecked Sendable {
    public let verifier: APIKeyVerifier
    public let storePath: String
    private let store: APIKeyStore
    private let pollInterval: Duration
    private let flushInterval: Duration
    private let onError: @Sendable (String) -> Void

    private enum Phase {
        case idle, running, stopping, stopped
    }

    private let condition = NSCondition()
    private var phase = Phase.idle
    private var reloadCount = 0
    private var failureCount = 0

    // Confined to the watcher thread after `start()`.
    private var lastVersion: Int64
    private var lastError: String?

    /// Opens the store on a connection of its own and loads the first snapshot into
    /// `verifier` before returning, so the gateway starts with every key in place.
    /// `onError` receives one line per new kind of failure (the last snapshot stays in use).
    public init(
        storePath: String,
        verifier: APIKeyVerifier,
        pollInterval: Duration = .milliseconds(500),
        flushInterval: Duration = .seconds(5),
        onError: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.storePath = storePath
        self.verifier = verifier
        self.pollInterval = pollInterval
        self.flushInterval = flushInterval
        self.onError = onError
        store = try APIKeyStore(path: storePath, prefix: verifier.prefix)
        // Version first, then the snapshot: a commit in between shows as a new version at
        // the next poll and is loaded then, never missed.
        lastVersion = try store.dataVersion()
        verifier.replace(try store.snapshot())
    }

    /// Snapshots loaded because the store changed (the first load is not counted).
    public var reloads: Int {
        condition.lock()
        defer { condition.unlock() }
        return reloadCount
    }

    /// Polls or flushes that failed.
    public var failures: Int {
        condition.lock()
        defer { condition.unlock() }
        return failureCount
    }

    /// Starts the watcher thread; does nothing when already started or stopped.
    public func start() {
        condition.lock()
        guard phase == .idle else {
            condition.unlock()
            return
        }
        phase = .running
        condition.unlock()
        let thread = Thread { [self] in self.run() }
        thread.name = "gatehouse-key-store"
        thread.start()
    }

    /// Stops the thread and writes the queued `last_used` times; returns once both are
    /// done. Safe to call more than once, and without `start()`.
    public func stop() {
        condition.lock()
        switch phase {
        case .idle:
            phase = .stopped
            condition.unlock()
            flushLastUsed()
            return
        case .running:
            phase = .stopping
            condition.broadcast()
        case .stopping, .stopped:
            break
        }
        while phase != .stopped { condition.wait() }
        condition.unlock()
    }

    private func run() {
        let clock = ContinuousClock()
        var nextFlush = clock.now.advanced(by: flushInterval)
        while waitForNextPoll() {
            pollOnce()
            if clock.now >= nextFlush {
                flushLastUsed()
                nextFlush = clock.now.advanced(by: flushInterval)
            }
        }
        flushLastUsed()
        condition.lock()
        phase = .stopped
        condition.broadcast()
        condition.unlock()
    }

    /// Sleeps one poll interval; false when `stop()` was called meanwhile.
    private func waitForNextPoll() -> Bool {
        let (seconds, attoseconds) = pollInterval.components
        let deadline = Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18)
        condition.lock()
        defer { condition.unlock() }
        // `wait(until:)` may wake early (spuriously or for `stop()`): loop to the deadline.
        while phase == .running && condition.wait(until: deadline) {}
        return phase == .running
    }

    private func pollOnce() {
        do {
            let version = try store.dataVersion()
            if version != lastVersion {
                verifier.replace(try store.snapshot())
                lastVersion = version
                condition.lock()
                reloadCount += 1
                condition.unlock()
            }
            lastError = nil
        } catch {
            report("reloading the key store \(storePath) failed (the previous keys stay in use): \(error)")
        }
    }

    private func flushLastUsed() {
        let pending = verifier.takePendingLastUsed()
        guard !pending.isEmpty else { return }
        do {
            try store.recordLastUsed(pending)
        } catch {
            verifier.requeueLastUsed(pending)
            report("writing last_used times to the key store \(storePath) failed (retrying later): \(error)")
        }
    }

    /// Counts every failure, but reports a failure only when it differs from the last
    /// one: a store that stays unreadable would otherwise log twice a second.
    private func report(_ message: String) {
        condition.lock()
        failureCount += 1
        condition.unlock()
        guard message != lastError else { return }
        lastError = message
        onError(message)
    }
}
