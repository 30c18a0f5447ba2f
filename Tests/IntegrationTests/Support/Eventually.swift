/// Polls `condition` until it holds or `timeout` passes; returns whether it held. For
/// effects that happen asynchronously after a request completes, e.g. the upstream
/// noticing a dropped stream.
func eventually(
    timeout: Duration = .seconds(5),
    poll: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: poll)
    }
}
