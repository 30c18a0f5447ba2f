import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// Turns POSIX signals into async events for the long-running commands.
enum SignalWaiter {
    /// Returns on the first SIGTERM or SIGINT.
    static func waitForTermination() async throws {
        let stream = signals([SIGTERM, SIGINT])
        for await _ in stream { return }
    }

    /// A stream of the given signals; their default action is disabled while it lives.
    static func signals(_ numbers: [Int32]) -> AsyncStream<Int32> {
        AsyncStream { continuation in
            let sources = SignalSources()
            for number in numbers {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { continuation.yield(number) }
                source.resume()
                sources.keep(source)
            }
            continuation.onTermination = { _ in sources.cancelAll() }
        }
    }
}

/// Dispatch sources stop when released, so the stream keeps them until it ends.
///
/// `@unchecked Sendable`: `keep` runs only inside the stream's build closure, before
/// `onTermination` can be installed, so the array is never mutated concurrently; and
/// `cancel()` on a dispatch source is thread-safe.
private final class SignalSources: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []

    func keep(_ source: any DispatchSourceSignal) {
        sources.append(source)
    }

    func cancelAll() {
        for source in sources { source.cancel() }
    }
}
