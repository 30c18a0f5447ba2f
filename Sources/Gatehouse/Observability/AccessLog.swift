/// One JSON line per request (SPEC §8), whatever its outcome.
public struct AccessLogEntry: JSONLogEntry {
    public var requestID: String
    public var clientIP: String
    public var method: String
    public var path: String
    public var route: String?
    public var status: Int
    public var subject: String?
    public var keyID: String?
    public var durationMilliseconds: Double
    public var upstreamMilliseconds: Double?
    public var bytesIn: Int
    public var bytesOut: Int

    public func jsonLine(timestamp: String) -> String {
        var json = JSONObjectWriter()
        json.field("ts", timestamp)
        json.field("request_id", requestID)
        json.field("client_ip", clientIP)
        json.field("method", method)
        json.field("path", path)
        json.field("route", route)
        json.field("status", status)
        json.field("subject", subject)
        json.field("key_id", keyID)
        json.field("duration_ms", durationMilliseconds)
        if let upstreamMilliseconds {
            json.field("upstream_ms", upstreamMilliseconds)
        } else {
            json.field("upstream_ms", nil as String?)
        }
        json.field("bytes_in", bytesIn)
        json.field("bytes_out", bytesOut)
        return json.finish()
    }
}

/// Where access lines go (`access = "off"` → nothing is written).
public typealias AccessLog = JSONLinesLog<AccessLogEntry>

extension JSONLinesLog where Entry == AccessLogEntry {
    public convenience init(_ destination: LogDestination) throws {
        switch destination {
        case .off: self.init(writer: nil)
        case .stdout: self.init(writer: try LineWriter(.standardOutput))
        case .file(let path): self.init(writer: try LineWriter(.file(path)))
        }
    }
}
