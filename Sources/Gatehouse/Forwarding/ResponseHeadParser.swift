import CCurl

extension UpstreamTransfer {
    /// Collects one header line from libcurl. The status line starts a block; the empty
    /// line ends it. Informational (1xx) blocks are dropped: the client sees only the
    /// final head, which is queued as one `.head` event.
    func curlHeaderLine(_ line: UnsafeRawBufferPointer) {
        var end = line.count
        while end > 0, line[end - 1] == UInt8(ascii: "\n") || line[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let content = UnsafeRawBufferPointer(rebasing: line[0..<end])

        if content.starts(with: "HTTP/".utf8) {
            curlResponseStatus = Self.statusCode(fromStatusLine: content)
            curlResponseHeaders.removeAll(keepingCapacity: true)
            curlResponseHeaders.reserveCapacity(16)  // one allocation, not one per doubling
            return
        }
        if content.isEmpty {
            let status = curlResponseStatus
            if status >= 100 && status < 200 { return }
            guard !curlHeadDelivered else { return }
            curlHeadDelivered = true
            curlEnqueue(.head(status: status, headers: HopByHopHeaders.filterResponse(curlResponseHeaders)))
            curlResponseHeaders = []  // a long-lived stream keeps no copy
            return
        }
        if let first = content.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            // Obsolete line folding: a continuation of the previous value.
            guard let last = curlResponseHeaders.popLast() else { return }
            let more = String(decoding: content, as: UTF8.self).trimmingASCIIWhitespace()
            curlResponseHeaders.append((last.name, last.value + " " + more))
            return
        }
        guard let colon = content.firstIndex(of: UInt8(ascii: ":")) else { return }
        // Trim the value's bytes before making a String of them: one copy, not two.
        var valueStart = colon + 1
        var valueEnd = content.count
        while valueStart < valueEnd,
            content[valueStart] == UInt8(ascii: " ") || content[valueStart] == UInt8(ascii: "\t")
        {
            valueStart += 1
        }
        while valueEnd > valueStart,
            content[valueEnd - 1] == UInt8(ascii: " ") || content[valueEnd - 1] == UInt8(ascii: "\t")
        {
            valueEnd -= 1
        }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: content[0..<colon]), as: UTF8.self)
        let value = String(decoding: UnsafeRawBufferPointer(rebasing: content[valueStart..<valueEnd]), as: UTF8.self)
        curlResponseHeaders.append((name, value))
    }

    /// "HTTP/1.1 204 No Content" → 204; 0 when the line is malformed.
    static func statusCode(fromStatusLine line: UnsafeRawBufferPointer) -> Int {
        guard let space = line.firstIndex(of: UInt8(ascii: " ")) else { return 0 }
        var code = 0
        var digits = 0
        var index = space + 1
        while index < line.count, digits < 3 {
            let byte = line[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return 0 }
            code = code * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
            index += 1
        }
        return digits == 3 ? code : 0
    }
}
