import CCurl
import NIOConcurrencyHelpers
import NIOCore

/// One request/response exchange with an upstream, shared by the event loop that owns the
/// client connection and the engine thread that drives the upstream socket: a curl thread
/// of its own, or that same event loop (`CurlEngine.homeLoop`), in which case the lock is
/// never contended and the "threads" below are one.
///
/// Three kinds of state, kept apart on purpose:
/// - immutable after init (`eventLoop`, `engine`);
/// - `flow`: the body queues and pause flags both sides touch, only under `lock`;
/// - `curl…` fields: touched only on the engine's thread; `sink`: only on the event loop.
///
/// `@unchecked Sendable` is sound because of that split: no field is touched outside its
/// owner, and cross-thread handoff goes through `lock` or the engine's command queue.
public final class UpstreamTransfer: @unchecked Sendable {
    /// Above this many bytes queued toward the client, libcurl is paused (backpressure).
    static let downloadHighWater = 256 * 1024
    static let downloadLowWater = 64 * 1024
    /// Above this many request-body bytes queued toward libcurl, client reads stop.
    static let uploadHighWater = 256 * 1024
    static let uploadLowWater = 64 * 1024

    /// Handed to the engine with the `.add` command and dropped there once libcurl
    /// is configured: a stream that stays open for hours keeps no copy of the request.
    var curlRequest: UpstreamRequest?
    public let eventLoop: any EventLoop
    let engine: CurlEngine

    private struct Flow {
        var uploadChunks = CircularBuffer<ByteBuffer>(initialCapacity: 4)
        var uploadQueuedBytes = 0
        var uploadEnded = false
        /// libcurl asked for body bytes and was told to pause.
        var uploadWaitingForData = false
        /// The event loop stopped reading the client because the queue is full.
        var clientReadsPaused = false
        /// Response bytes handed to the event loop and not yet written to the client.
        var downloadOutstanding = 0
        /// The write callback returned CURL_WRITEFUNC_PAUSE.
        var downloadPaused = false
    }

    private let lock = NIOLock()
    private var flow = Flow()

    // Engine thread only.
    var curlEasy: UnsafeMutableRawPointer?
    var curlHeaderList: UnsafeMutablePointer<curl_slist>?
    var curlResponseStatus = 0
    var curlResponseHeaders: [(name: String, value: String)] = []
    var curlHeadDelivered = false
    var curlPending: [UpstreamEvent] = []
    var curlQueuedForFlush = false
    var curlFinished = false

    // Event loop only.
    private var sink: (any UpstreamEventSink)?
    /// The batch being delivered ends the transfer (`.end` or `.failed` last): libcurl is
    /// done, so response bytes written now need not be reported back for backpressure.
    private(set) var deliveringFinalBatch = false

    init(request: UpstreamRequest, eventLoop: any EventLoop, engine: CurlEngine, sink: any UpstreamEventSink) {
        self.curlRequest = request
        self.eventLoop = eventLoop
        self.engine = engine
        self.sink = sink
    }

    // MARK: Event-loop side

    /// Queues request-body bytes for upstream. Returns false when the client should stop
    /// being read until `.uploadDrained` arrives.
    public func sendBody(_ buffer: ByteBuffer) -> Bool {
        let (wake, keepReading) = lock.withLock { () -> (Bool, Bool) in
            flow.uploadChunks.append(buffer)
            flow.uploadQueuedBytes += buffer.readableBytes
            ForwardingStatistics.noteRequestQueue(flow.uploadQueuedBytes)
            let wake = flow.uploadWaitingForData
            flow.uploadWaitingForData = false
            if flow.uploadQueuedBytes > Self.uploadHighWater {
                flow.clientReadsPaused = true
                return (wake, false)
            }
            return (wake, true)
        }
        if wake { engine.submit(.resume(self)) }
        return keepReading
    }

    public func finishBody() {
        let wake = lock.withLock { () -> Bool in
            flow.uploadEnded = true
            let wake = flow.uploadWaitingForData
            flow.uploadWaitingForData = false
            return wake
        }
        if wake { engine.submit(.resume(self)) }
    }

    /// The client connection has written `count` response bytes: maybe resume libcurl.
    public func responseBytesWritten(_ count: Int) {
        let wake = lock.withLock { () -> Bool in
            flow.downloadOutstanding -= count
            if flow.downloadPaused && flow.downloadOutstanding <= Self.downloadLowWater {
                flow.downloadPaused = false
                return true
            }
            return false
        }
        if wake { engine.submit(.resume(self)) }
    }

    /// Stops the exchange (client gone, timeout, shutdown). No event is delivered after this.
    public func cancel() {
        eventLoop.preconditionInEventLoop()
        guard sink != nil else { return }
        sink = nil
        engine.submit(.cancel(self))
    }

    /// Runs on the event loop with one batch of events.
    func deliver(_ events: [UpstreamEvent]) {
        let batchSink = sink
        defer { batchSink?.upstreamBatchDelivered(self) }
        switch events.last {
        case .end?, .failed?: deliveringFinalBatch = true
        default: break
        }
        for event in events {
            guard let sink else { return }
            if case .end = event { self.sink = nil } else if case .failed = event { self.sink = nil }
            sink.upstream(self, event: event)
        }
    }

    // MARK: Curl-thread side

    /// READFUNCTION body: copies queued request bytes into libcurl's buffer.
    func curlReadBody(into destination: UnsafeMutableRawBufferPointer) -> Int {
        var drained = false
        let result = lock.withLock { () -> Int in
            if flow.uploadChunks.isEmpty {
                if flow.uploadEnded { return 0 }
                flow.uploadWaitingForData = true
                return Int(GH_CURL_READFUNC_PAUSE)
            }
            var written = 0
            while written < destination.count, var chunk = flow.uploadChunks.first {
                let n = min(chunk.readableBytes, destination.count - written)
                chunk.withUnsafeReadableBytes { source in
                    let target = UnsafeMutableRawBufferPointer(rebasing: destination[written..<(written + n)])
                    target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<n]))
                }
                chunk.moveReaderIndex(forwardBy: n)
                written += n
                if chunk.readableBytes == 0 {
                    flow.uploadChunks.removeFirst()
                } else {
                    flow.uploadChunks[flow.uploadChunks.startIndex] = chunk
                }
            }
            flow.uploadQueuedBytes -= written
            if flow.clientReadsPaused && flow.uploadQueuedBytes <= Self.uploadLowWater {
                flow.clientReadsPaused = false
                drained = true
            }
            return written
        }
        if drained { curlEnqueue(.uploadDrained) }
        return result
    }

    /// WRITEFUNCTION body: accepts a response chunk, or refuses it (pause) while the
    /// client is behind. A refused chunk is delivered again by libcurl after resume.
    func curlAcceptResponseBytes(_ source: UnsafeRawBufferPointer) -> Bool {
        let accepted = lock.withLock { () -> Bool in
            if flow.downloadOutstanding >= Self.downloadHighWater {
                flow.downloadPaused = true
                return false
            }
            flow.downloadOutstanding += source.count
            ForwardingStatistics.noteResponseQueue(flow.downloadOutstanding)
            return true
        }
        guard accepted else { return false }
        // Chunks that arrive in the same pass of the curl loop travel as one buffer.
        if case .body(var last)? = curlPending.last {
            curlPending.removeLast()
            last.writeBytes(source)
            curlPending.append(.body(last))
        } else {
            // Room for more small chunks of the same pass (chunked and SSE bodies arrive
            // one callback per chunk) without a copy on each append.
            var buffer = ByteBufferAllocator().buffer(capacity: max(source.count, 4096))
            buffer.writeBytes(source)
            curlEnqueue(.body(buffer))
        }
        return true
    }

    /// Queues an event for the next batch hop to the event loop.
    func curlEnqueue(_ event: UpstreamEvent) {
        if curlPending.capacity == 0 { curlPending.reserveCapacity(4) }  // head, body, end
        curlPending.append(event)
        if !curlQueuedForFlush {
            curlQueuedForFlush = true
            engine.curlMarkDirty(self)
        }
    }

    /// Which directions libcurl should keep paused right now (CURLPAUSE_* bits).
    func curlDesiredPauseMask() -> Int32 {
        lock.withLock {
            (flow.downloadPaused ? GH_CURLPAUSE_RECV : 0) | (flow.uploadWaitingForData ? GH_CURLPAUSE_SEND : 0)
        }
    }
}
