import NIOConcurrencyHelpers

/// Holds the runtime in force. A reload swaps it whole; readers take one reference per
/// request and keep it for that request.
public final class RuntimeStore: Sendable {
    private let current: NIOLockedValueBox<Runtime>

    public init(_ runtime: Runtime) {
        current = NIOLockedValueBox(runtime)
    }

    public var runtime: Runtime { current.withLockedValue { $0 } }

    public func replace(with runtime: Runtime) {
        current.withLockedValue { $0 = runtime }
    }
}
