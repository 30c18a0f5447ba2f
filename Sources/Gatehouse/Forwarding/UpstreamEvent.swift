import NIOCore

/// What the curl engine tells the event loop about one transfer. Delivered in batches:
/// all the events a transfer produced in one pass of the curl loop arrive in one hop.
public enum UpstreamEvent: Sendable {
    /// The final response head (1xx heads are skipped); hop-by-hop fields already removed.
    case head(status: Int, headers: [(name: String, value: String)])
    case body(ByteBuffer)
    case end
    case failed(UpstreamFailure)
    /// The request body queue drained below its low-water mark: read from the client again.
    case uploadDrained
}

/// Receives a transfer's events on the event loop the transfer was started from.
public protocol UpstreamEventSink: AnyObject {
    func upstream(_ transfer: UpstreamTransfer, event: UpstreamEvent)
    /// The events of one hop have all been delivered: the place to flush, so that a small
    /// response (head, body and end in one batch) leaves in one write.
    func upstreamBatchDelivered(_ transfer: UpstreamTransfer)
}
