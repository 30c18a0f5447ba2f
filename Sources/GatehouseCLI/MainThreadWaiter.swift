import ArgumentParser
import Dispatch

/// Runs an async command on the concurrency runtime while the calling (main) thread waits.
enum MainThreadWaiter {
    static func run(_ command: any AsyncParsableCommand) -> Result<Void, any Error> {
        let finished = DispatchSemaphore(value: 0)
        let handoff = Handoff(command)
        Task {
            await handoff.runCommand()
            finished.signal()
        }
        finished.wait()
        return handoff.outcome
    }

    /// Carries the command to its task and the outcome back.
    ///
    /// `@unchecked Sendable`: the two threads never touch it at the same time. The main
    /// thread writes `command` before the task exists and reads `outcome` only after the
    /// semaphore is signalled; the task writes `outcome` before signalling. Task creation
    /// and the semaphore both order memory, so each access happens after the previous one.
    private final class Handoff: @unchecked Sendable {
        private var command: any AsyncParsableCommand
        private(set) var outcome: Result<Void, any Error> = .success(())

        init(_ command: any AsyncParsableCommand) { self.command = command }

        func runCommand() async {
            do {
                try await command.run()
            } catch {
                outcome = .failure(error)
            }
        }
    }
}
