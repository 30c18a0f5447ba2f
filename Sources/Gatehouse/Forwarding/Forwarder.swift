import NIOCore

/// The gateway's only way to reach upstreams: a fixed set of libcurl engines, each a
/// multi handle. No thread is held per request or per open stream.
///
/// By default every event loop drives its own engines: parsing, the gate, libcurl and
/// the response write all happen on the thread that owns the client connection, as in a
/// single nginx worker. On a shared machine a second busy thread per request path costs
/// more in wake-ups and preemptions than it gains in parallelism, and an event that has
/// to wake two threads arrives later (BENCHMARKS.md, "session 3"). `upstream_threads` > 0
/// gives each lane dedicated curl threads instead, which hand results back to the loops.
///
/// Requests that accept an event stream (`Accept: text/event-stream`, as MCP clients
/// send) go to a second engine (lane). libcurl 7.88 walks every pooled connection of a
/// multi handle when a transfer ends and every connection to the same host when one
/// starts, so with thousands of long-lived streams in the same pool each ordinary
/// request would pay for all of them; in their own pool they cost ordinary traffic
/// nothing (BENCHMARKS.md, "10,000 open streams").
public final class Forwarder: Sendable {
    private struct Lanes {
        let ordinary: CurlEngine
        let stream: CurlEngine
    }

    /// Dedicated curl threads (`upstream_threads` > 0, or no event loops given).
    private let threadedLanes: [Lanes]
    /// Loop-driven engines, by event loop.
    private let loopLanes: [ObjectIdentifier: Lanes]

    /// - Parameters:
    ///   - threads: curl threads per lane; 0 = each of `eventLoops` drives its own engines
    ///     (or, without event loops, 1 thread per lane up to 4 cores, else cores / 4).
    ///   - eventLoops: the loops whose requests this forwarder carries. With `threads` 0,
    ///     only these loops may call `start`.
    public init(threads: Int = 0, eventLoops: [any EventLoop] = [], maxConnectionsPerThread: Int = 20_000) throws {
        var threadedLanes: [Lanes] = []
        var loopLanes: [ObjectIdentifier: Lanes] = [:]
        var built: [CurlEngine] = []
        func makeLanes(_ name: String, on loop: (any EventLoop)?) throws -> Lanes {
            let ordinary = try CurlEngine(
                name: "\(name)-curl", maxConnections: maxConnectionsPerThread, eventLoop: loop)
            built.append(ordinary)
            let stream = try CurlEngine(
                name: "\(name)-sse", maxConnections: maxConnectionsPerThread,
                receiveBufferBytes: Self.streamReceiveBufferBytes, easyPoolLimit: 64, eventLoop: loop)
            built.append(stream)
            return Lanes(ordinary: ordinary, stream: stream)
        }
        do {
            if threads == 0 && !eventLoops.isEmpty {
                for (index, loop) in eventLoops.enumerated() {
                    loopLanes[ObjectIdentifier(loop)] = try makeLanes("gatehouse-\(index)", on: loop)
                }
            } else {
                let count = threads > 0 ? threads : max(1, System.coreCount / 4)
                for index in 0..<count { threadedLanes.append(try makeLanes("gatehouse-\(index)", on: nil)) }
            }
        } catch {
            // Nothing was started yet: release what was built and report the failure.
            for engine in built { engine.discardUnstarted() }
            throw error
        }
        self.threadedLanes = threadedLanes
        self.loopLanes = loopLanes
        for engine in allEngines { engine.start() }
    }

    private var allEngines: [CurlEngine] {
        (threadedLanes + loopLanes.values).flatMap { [$0.ordinary, $0.stream] }
    }

    /// Starts a transfer; its events arrive on `eventLoop`, in order, through `sink`.
    /// The caller feeds the request body with `sendBody` / `finishBody`.
    public func start(_ request: UpstreamRequest, on eventLoop: any EventLoop, sink: any UpstreamEventSink)
        -> UpstreamTransfer
    {
        let lanes = lanes(for: eventLoop)
        let engine = Self.acceptsEventStream(request.headers) ? lanes.stream : lanes.ordinary
        let transfer = UpstreamTransfer(request: request, eventLoop: eventLoop, engine: engine, sink: sink)
        engine.submit(.add(transfer))
        return transfer
    }

    private func lanes(for eventLoop: any EventLoop) -> Lanes {
        if loopLanes.isEmpty {
            // Transfers of one event loop share an engine, so their connections are pooled together.
            let index = Int(UInt(bitPattern: ObjectIdentifier(eventLoop).hashValue) % UInt(threadedLanes.count))
            return threadedLanes[index]
        }
        // A loop-driven engine delivers on its own loop only: a transfer from any other
        // loop would be answered on the wrong thread. The gateway passes its whole group.
        guard let lanes = loopLanes[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("Forwarder.start on an event loop it was not built with")
        }
        return lanes
    }

    /// Events are small and a stream mostly waits: libcurl's smallest receive buffer
    /// (1 KiB instead of 16 KiB) saves 15 KiB per open stream, 150 MB at 10,000 streams.
    /// A large response on this lane is still read in full, only in more `recv` calls.
    static let streamReceiveBufferBytes = 1024

    /// Whether any `Accept` field names `text/event-stream` (ASCII case-insensitive).
    public static func acceptsEventStream(_ headers: [(name: String, value: String)]) -> Bool {
        for (name, value) in headers where name.equalsASCIICaseInsensitive("accept") {
            if value.containsASCIICaseInsensitive("text/event-stream") { return true }
        }
        return false
    }

    /// Aborts all transfers and joins the curl threads. Not on one of the event loops.
    public func shutdown() {
        for engine in allEngines { engine.stopAndWait() }
    }
}
