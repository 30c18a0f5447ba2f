import NIOCore
import NIOHTTP1

/// A response Gatehouse writes itself: a denial, or an upstream failure (SPEC §7).
struct ErrorResponse {
    var status: Int
    var error: String
    var reason: String
    var headers: [(name: String, value: String)] = []

    init(denial: Denial) {
        status = denial.reason.status
        error = denial.reason.error
        reason = denial.reason.rawValue
        headers = denial.headers
    }

    init(upstream failure: UpstreamFailure) {
        switch failure {
        case .timedOut:
            status = 504
            error = "upstream_timeout"
        case .unavailable, .brokenMidStream:
            status = 502
            error = "upstream_unavailable"
        }
        reason = error
    }

    init(status: Int, error: String, reason: String) {
        self.status = status
        self.error = error
        self.reason = reason
    }

    func head(version: HTTPVersion, requestID: String, keepAlive: Bool, bodyLength: Int) -> HTTPResponseHead {
        var fields = HTTPHeaders()
        fields.reserveCapacity(6 + headers.count)
        fields.add(name: "Content-Type", value: "application/json")
        fields.add(name: "Cache-Control", value: "no-store")
        fields.add(name: "Content-Length", value: String(bodyLength))
        fields.add(name: "X-Request-Id", value: requestID)
        for (name, value) in headers { fields.add(name: name, value: value) }
        if !keepAlive { fields.add(name: "Connection", value: "close") }
        return HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: fields)
    }

    func body(requestID: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var json = JSONObjectWriter()
        json.field("error", error)
        json.field("reason", reason)
        json.field("request_id", requestID)
        return allocator.buffer(string: json.finish())
    }
}
