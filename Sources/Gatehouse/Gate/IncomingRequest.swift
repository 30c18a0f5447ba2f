/// The request head as the gate sees it: plain values, no NIO types, so the decision
/// code runs the same in the server, in tests and in `gatehouse explain`.
public struct IncomingRequest: Sendable {
    public var method: String
    /// The request target exactly as received.
    public var target: String
    public var headers: [(name: String, value: String)]
    /// The TCP peer; nil only for requests that did not come from a socket.
    public var peer: IPAddress?
    /// "http" or "https": how the client reached us.
    public var scheme: String
    /// Body framing the client announced.
    public var body: UpstreamRequest.Body

    public init(
        method: String,
        target: String,
        headers: [(name: String, value: String)],
        peer: IPAddress?,
        scheme: String = "http",
        body: UpstreamRequest.Body = .none
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.peer = peer
        self.scheme = scheme
        self.body = body
    }

    /// First value of a field, case-insensitively.
    public func header(_ name: String) -> String? {
        for field in headers where field.name.count == name.count && field.name.lowercased() == name.lowercased() {
            return field.value
        }
        return nil
    }
}
