import NIOCore
import NIOHTTP1

/// Keeps the client socket registered for reading while a response is on its way.
///
/// `HTTPServerPipelineHandler` withholds `read()` from the moment a request has fully
/// arrived until its response has ended, so that a pipelining client cannot make the
/// gateway buffer without bound. NIO turns each withheld read into an `epoll_ctl` that
/// drops read interest, and the read that follows the response into one that restores
/// it: two system calls on every request, for clients that almost never pipeline.
///
/// Sitting just below the pipeline handler, this handler issues one read of its own per
/// response window (request ended, response not yet ended). In the common case nothing
/// arrives and the registration simply stays; if a pipelined request does arrive, it is
/// one socket read (bounded by the channel's receive allocator) that the pipeline handler
/// buffers, and no further read happens until the response ends. Request bodies are
/// never read ahead: the window opens only after the request's `.end`, so upload
/// backpressure (`ProxyHandler.read`) is untouched.
final class ReadInterestKeeper: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var requestsEnded = 0
    private var responsesEnded = 0
    private var readAheadIssued = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { requestsEnded += 1 }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        if requestsEnded > responsesEnded && !readAheadIssued {
            readAheadIssued = true
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            responsesEnded += 1
            readAheadIssued = false
        }
        context.write(data, promise: promise)
    }
}
