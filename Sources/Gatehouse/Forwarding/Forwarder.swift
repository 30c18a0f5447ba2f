import NIOCore

/// The gateway's only way to reach upstreams: a fixed set of libcurl engines, each a
/// multi handle on its own thread. No thread is held per request or per open stream.
public final class Forwarder: Sendable {
    private let engines: [CurlEngine]

    /// - Parameter threads: curl threads; 0 = automatic (1 up to 4 cores, else cores / 4).
    public init(threads: Int = 0, maxConnectionsPerThread: Int = 20_000) throws {
        let count = threads > 0 ? threads : max(1, System.coreCount / 4)
        var engines: [CurlEngine] = []
        for index in 0..<count {
            engines.append(try CurlEngine(name: "gatehouse-curl-\(index)", maxConnections: maxConnectionsPerThread))
        }
        self.engines = engines
        for engine in engines { engine.start() }
    }

    /// Starts a transfer; its events arrive on `eventLoop`, in order, through `sink`.
    /// The caller feeds the request body with `sendBody` / `finishBody`.
    public func start(_ request: UpstreamRequest, on eventLoop: any EventLoop, sink: any UpstreamEventSink)
        -> UpstreamTransfer
    {
        // Transfers of one event loop share an engine, so their connections are pooled together.
        let index = Int(UInt(bitPattern: ObjectIdentifier(eventLoop).hashValue) % UInt(engines.count))
        let engine = engines[index]
        let transfer = UpstreamTransfer(request: request, eventLoop: eventLoop, engine: engine, sink: sink)
        engine.submit(.add(transfer))
        return transfer
    }

    /// Aborts all transfers and joins the curl threads.
    public func shutdown() {
        for engine in engines { engine.stopAndWait() }
    }
}
