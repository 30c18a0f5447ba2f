import NIOCore

/// The gateway's only way to reach upstreams: a fixed set of libcurl engines, each a
/// multi handle. No thread is held per request or per open stream.
///
/// Ordinary requests, by default, run on an engine driven by the event loop that owns
/// the client connection: parsing, the gate, libcurl and the response write all happen
/// on one thread, as in a single nginx worker. On a shared machine a second busy thread
/// per request path costs more in wake-ups and preemptions than it gains in parallelism
/// (BENCHMARKS.md, "session 3"). `upstream_threads` > 0 brings back dedicated curl threads.
///
/// Requests that accept an event stream (`Accept: text/event-stream`, as MCP clients
/// send) go to a second set of engines. libcurl 7.88 walks every pooled connection of a
/// multi handle when a transfer ends and every connection to the same host when one
/// starts, so with thousands of long-lived streams in the same pool each ordinary
/// request would pay for all of them; in their own pool they cost ordinary traffic
/// nothing (BENCHMARKS.md, "10,000 open streams").
public final class Forwarder: Sendable {
    private let engines: [CurlEngine]
    private let streamEngines: [CurlEngine]
    /// Loop-driven engines for ordinary requests, by event loop.
    private let loopEngines: [ObjectIdentifier: CurlEngine]

    /// - Parameters:
    ///   - threads: curl threads per lane; 0 = automatic (1 up to 4 cores, else cores / 4).
    ///   - eventLoops: with `threads` 0, ordinary requests of these loops run on an engine
    ///     driven by the loop itself; event streams keep their threads either way.
    public init(threads: Int = 0, eventLoops: [any EventLoop] = [], maxConnectionsPerThread: Int = 20_000) throws {
        let count = threads > 0 ? threads : max(1, System.coreCount / 4)
        let driveOnLoops = threads == 0 && !eventLoops.isEmpty
        var engines: [CurlEngine] = []
        var streamEngines: [CurlEngine] = []
        var loopEngines: [ObjectIdentifier: CurlEngine] = [:]
        if driveOnLoops {
            for (index, loop) in eventLoops.enumerated() {
                loopEngines[ObjectIdentifier(loop)] = try CurlEngine(
                    name: "gatehouse-wake-\(index)", maxConnections: maxConnectionsPerThread, eventLoop: loop)
            }
        }
        for index in 0..<count {
            if !driveOnLoops {
                engines.append(
                    try CurlEngine(name: "gatehouse-curl-\(index)", maxConnections: maxConnectionsPerThread))
            }
            streamEngines.append(
                try CurlEngine(
                    name: "gatehouse-sse-\(index)", maxConnections: maxConnectionsPerThread,
                    receiveBufferBytes: Self.streamReceiveBufferBytes))
        }
        self.engines = engines
        self.streamEngines = streamEngines
        self.loopEngines = loopEngines
        for engine in engines + streamEngines + loopEngines.values { engine.start() }
    }

    /// Starts a transfer; its events arrive on `eventLoop`, in order, through `sink`.
    /// The caller feeds the request body with `sendBody` / `finishBody`.
    public func start(_ request: UpstreamRequest, on eventLoop: any EventLoop, sink: any UpstreamEventSink)
        -> UpstreamTransfer
    {
        let engine = engine(for: request, on: eventLoop)
        let transfer = UpstreamTransfer(request: request, eventLoop: eventLoop, engine: engine, sink: sink)
        engine.submit(.add(transfer))
        return transfer
    }

    private func engine(for request: UpstreamRequest, on eventLoop: any EventLoop) -> CurlEngine {
        let isStream = Self.acceptsEventStream(request.headers)
        if !isStream, let engine = loopEngines[ObjectIdentifier(eventLoop)] { return engine }
        // A loop the forwarder was not built with (none in the gateway itself) falls back
        // to the threaded engines, which deliver to any loop.
        let lane = isStream || engines.isEmpty ? streamEngines : engines
        // Transfers of one event loop share an engine, so their connections are pooled together.
        let index = Int(UInt(bitPattern: ObjectIdentifier(eventLoop).hashValue) % UInt(lane.count))
        return lane[index]
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
        for engine in engines + streamEngines + loopEngines.values { engine.stopAndWait() }
    }
}
