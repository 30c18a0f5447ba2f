import Gatehouse
import NIOCore
import NIOPosix
import Testing

/// The forwarder on its own, driven by a real event loop against a real upstream: what a
/// transfer sees before and after the engines stop.
@Suite("Forwarder lifecycle") struct ForwarderLifecycleTests {
    @Test("loop-driven engines: a transfer completes; one started after shutdown fails at once instead of hanging")
    func transferAfterShutdownFails() async throws {
        try await TestUpstream.with { upstream in
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let loop = group.next()
            let forwarder = try Forwarder(threads: 0, eventLoops: [loop])
            let request = UpstreamRequest(
                method: "GET", url: "http://127.0.0.1:\(upstream.port)/x", headers: [], body: .none,
                connectTimeoutMilliseconds: 2_000)

            #expect(try await Self.outcome(of: request, forwarder: forwarder, on: loop) == "end 200")
            forwarder.shutdown()
            let late = try await Self.outcome(of: request, forwarder: forwarder, on: loop)
            #expect(late.hasPrefix("failed brokenMidStream"), "got \(late)")
            #expect(upstream.received().count == 1, "the late transfer reached the upstream")
            try await group.shutdownGracefully()
        }
    }

    /// Starts `request` on `loop` and reports how it ended: "end <status>", "failed <…>",
    /// or "no outcome" after 10 s.
    private static func outcome(of request: UpstreamRequest, forwarder: Forwarder, on loop: any EventLoop)
        async throws -> String
    {
        try await loop.flatSubmit { () -> EventLoopFuture<String> in
            let sink = OutcomeSink(promise: loop.makePromise(of: String.self))
            _ = forwarder.start(request, on: loop, sink: sink)
            loop.assumeIsolated().scheduleTask(in: .seconds(10)) { sink.settle("no outcome") }
            return sink.promise.futureResult
        }.get()
    }
}

/// Collects one transfer's events on its event loop (never touched elsewhere).
private final class OutcomeSink: UpstreamEventSink {
    let promise: EventLoopPromise<String>
    private var status = 0
    private var settled = false

    init(promise: EventLoopPromise<String>) {
        self.promise = promise
    }

    func upstream(_ transfer: UpstreamTransfer, event: UpstreamEvent) {
        switch event {
        case .head(let status, _): self.status = status
        case .end: settle("end \(status)")
        case .failed(let failure): settle("failed \(failure)")
        case .body, .uploadDrained: break
        }
    }

    func upstreamBatchDelivered(_ transfer: UpstreamTransfer) {}

    func settle(_ outcome: String) {
        guard !settled else { return }
        settled = true
        promise.succeed(outcome)
    }
}
