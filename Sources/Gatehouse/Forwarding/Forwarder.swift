import NIOCore

/// The gateway's only way to reach upstreams: a fixed set of libcurl engines, each a
/// multi handle on its own thread. No thread is held per request or per open stream.
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

    /// - Parameter threads: curl threads per lane; 0 = automatic (1 up to 4 cores, else cores / 4).
    public init(threads: Int = 0, maxConnectionsPerThread: Int = 20_000) throws {
        let count = threads > 0 ? threads : max(1, System.coreCount / 4)
        var engines: [CurlEngine] = []
        var streamEngines: [CurlEngine] = []
        for index in 0..<count {
            engines.append(try CurlEngine(name: "gatehouse-curl-\(index)", maxConnections: maxConnectionsPerThread))
            streamEngines.append(
                try CurlEngine(
                    name: "gatehouse-sse-\(index)", maxConnections: maxConnectionsPerThread,
                    receiveBufferBytes: Self.streamReceiveBufferBytes))
        }
        self.engines = engines
        self.streamEngines = streamEngines
        for engine in engines + streamEngines { engine.start() }
    }

    /// Starts a transfer; its events arrive on `eventLoop`, in order, through `sink`.
    /// The caller feeds the request body with `sendBody` / `finishBody`.
    public func start(_ request: UpstreamRequest, on eventLoop: any EventLoop, sink: any UpstreamEventSink)
        -> UpstreamTransfer
    {
        let lane = Self.acceptsEventStream(request.headers) ? streamEngines : engines
        // Transfers of one event loop share an engine, so their connections are pooled together.
        let index = Int(UInt(bitPattern: ObjectIdentifier(eventLoop).hashValue) % UInt(lane.count))
        let engine = lane[index]
        let transfer = UpstreamTransfer(request: request, eventLoop: eventLoop, engine: engine, sink: sink)
        engine.submit(.add(transfer))
        return transfer
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

    /// Aborts all transfers and joins the curl threads.
    public func shutdown() {
        for engine in engines + streamEngines { engine.stopAndWait() }
    }
}
