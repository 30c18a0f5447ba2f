import CCurl

/// One blocking GET with libcurl's easy interface, for JWKS documents. It runs on the
/// refresher's own thread, never on an event loop, and is bounded in time and size.
enum HTTPFetch {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let maximumBytes = 1024 * 1024

    /// Lives on the calling thread for the duration of `curl_easy_perform`, which runs
    /// the write callback on that same thread.
    private final class Collector {
        var bytes: [UInt8] = []
        var overflowed = false
    }

    private static let collect: gh_data_callback = { buffer, size, count, userdata in
        guard let userdata else { return 0 }
        let collector = Unmanaged<Collector>.fromOpaque(userdata).takeUnretainedValue()
        let chunk = UnsafeRawBufferPointer(start: buffer, count: size * count)
        if collector.bytes.count + chunk.count > maximumBytes {
            collector.overflowed = true
            return 0  // makes curl abort the transfer
        }
        collector.bytes.append(contentsOf: chunk)
        return size * count
    }

    static func get(_ url: String, timeoutMilliseconds: Int = 10_000) -> Result<[UInt8], Failure> {
        CurlGlobal.initializeOnce()
        guard let easy = curl_easy_init() else { return .failure(Failure(description: "libcurl init failed")) }
        defer { curl_easy_cleanup(easy) }
        let collector = Collector()
        // Sound: `collector` outlives the perform call below, the only time curl uses it.
        let userdata = Unmanaged.passUnretained(collector).toOpaque()
        _ = gh_easy_setopt_str(easy, CURLOPT_URL, url)
        _ = gh_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = gh_easy_setopt_str(easy, CURLOPT_PROXY, "")
        _ = gh_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        _ = gh_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, timeoutMilliseconds)
        _ = gh_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, min(5000, timeoutMilliseconds))
        _ = gh_easy_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = gh_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, collect)
        _ = gh_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, userdata)
        let code = withExtendedLifetime(collector) { curl_easy_perform(easy) }
        if collector.overflowed {
            return .failure(Failure(description: "response larger than \(maximumBytes) bytes"))
        }
        guard code == CURLE_OK else {
            return .failure(Failure(description: String(cString: curl_easy_strerror(code))))
        }
        var status = 0
        _ = gh_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        guard status == 200 else { return .failure(Failure(description: "HTTP status \(status)")) }
        return .success(collector.bytes)
    }
}
