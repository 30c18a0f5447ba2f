/// Everything the forwarder needs to send one request upstream. Built by the gate;
/// the forwarder knows nothing about routes or identities.
public struct UpstreamRequest: Sendable {
    public enum Body: Sendable, Equatable {
        /// No request body and no framing headers.
        case none
        /// `Content-Length` bytes follow.
        case length(Int64)
        /// A body of unknown length (the client sent it chunked); sent upstream chunked.
        case chunked
    }

    public var method: String
    /// Absolute URL: the upstream origin, the rewritten normalised path, the raw query.
    public var url: String
    /// Final request headers, hop-by-hop and identity headers already handled. Never
    /// contains `Host`, `Content-Length` or `Transfer-Encoding`: libcurl writes those.
    public var headers: [(name: String, value: String)]
    public var body: Body
    public var connectTimeoutMilliseconds: Int

    public init(
        method: String,
        url: String,
        headers: [(name: String, value: String)],
        body: Body,
        connectTimeoutMilliseconds: Int
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
    }
}

/// How an upstream exchange ended badly.
public enum UpstreamFailure: Error, Sendable, Equatable {
    /// Nothing usable came back before the response head: refused, DNS, TLS, reset.
    case unavailable(String)
    /// The connection or the response head took too long.
    case timedOut(String)
    /// The response had started; the rest of it was lost.
    case brokenMidStream(String)
}
