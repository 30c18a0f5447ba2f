import CCurl

/// Turns an `UpstreamRequest` into libcurl options on a fresh (or reset) easy handle.
enum CurlRequestSetup {
    /// Configures `easy` and returns the header list, which must outlive the transfer.
    static func configure(
        _ easy: UnsafeMutableRawPointer, request: UpstreamRequest, for transfer: UpstreamTransfer
    ) -> UnsafeMutablePointer<
        curl_slist
    >? {
        let owner = Unmanaged.passUnretained(transfer).toOpaque()
        _ = gh_easy_setopt_str(easy, CURLOPT_URL, request.url)
        _ = gh_easy_setopt_ptr(easy, CURLOPT_PRIVATE, owner)
        _ = gh_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        // Never route upstream traffic through a proxy named in the environment.
        _ = gh_easy_setopt_str(easy, CURLOPT_PROXY, "")
        // The gateway already normalised the path; libcurl must not rewrite it again.
        _ = gh_easy_setopt_long(easy, CURLOPT_PATH_AS_IS, 1)
        _ = gh_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
        _ = gh_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeoutMilliseconds)
        _ = gh_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1)
        _ = gh_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        // Bodies pass through byte for byte: no decompression, no redirect following.
        _ = gh_easy_setopt_long(easy, CURLOPT_HTTP_CONTENT_DECODING, 0)
        _ = gh_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        _ = gh_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback)
        _ = gh_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, owner)
        _ = gh_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback)
        _ = gh_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, owner)
        _ = gh_easy_setopt_opensocket_callback(easy, curlOpenSocketCallback)
        _ = gh_easy_setopt_ptr(easy, CURLOPT_OPENSOCKETDATA, Unmanaged.passUnretained(transfer.engine).toOpaque())
        _ = gh_easy_setopt_closesocket_callback(easy, curlCloseSocketCallback)
        _ = gh_easy_setopt_ptr(easy, CURLOPT_CLOSESOCKETDATA, Unmanaged.passUnretained(transfer.engine).toOpaque())

        switch (request.method, request.body) {
        case ("GET", .none):
            _ = gh_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
        case ("HEAD", _):
            _ = gh_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        case (let method, .none):
            _ = gh_easy_setopt_str(easy, CURLOPT_CUSTOMREQUEST, method)
        case (let method, .length(let length)):
            setUpload(easy, owner: owner, method: method, size: length)
        case (let method, .chunked):
            setUpload(easy, owner: owner, method: method, size: -1)
        }

        var list: UnsafeMutablePointer<curl_slist>?
        var sawAccept = false
        for (name, value) in request.headers {
            if !sawAccept && name.equalsASCIICaseInsensitive("accept") { sawAccept = true }
            list = appendLine(to: list, name: name, value: value)
        }
        // Suppress the fields libcurl would add on its own: the client did not send them.
        if !sawAccept { list = curl_slist_append(list, "Accept:") }
        list = curl_slist_append(list, "Expect:")
        _ = gh_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
        return list
    }

    /// Appends "Name: value" to the list, or "Name;" (libcurl's spelling for a field with
    /// an empty value; "Name:" would delete it). libcurl copies the line, so it is built in
    /// a stack buffer rather than as a Swift String per field. The pointer work is sound:
    /// the buffer has exactly `length + 1` bytes, each written once, and libcurl copies
    /// the NUL-terminated line before the buffer goes away.
    private static func appendLine(
        to list: UnsafeMutablePointer<curl_slist>?, name: String, value: String
    ) -> UnsafeMutablePointer<curl_slist>? {
        var name = name
        var value = value
        return name.withUTF8 { nameBytes in
            value.withUTF8 { valueBytes in
                let length = nameBytes.count + (valueBytes.isEmpty ? 1 : 2 + valueBytes.count)
                return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length + 1) { line in
                    guard let base = line.baseAddress else { return list }
                    var at = base
                    if let bytes = nameBytes.baseAddress { at.initialize(from: bytes, count: nameBytes.count) }
                    at += nameBytes.count
                    if valueBytes.isEmpty {
                        at.initialize(to: UInt8(ascii: ";"))
                        at += 1
                    } else {
                        at.initialize(to: UInt8(ascii: ":"))
                        (at + 1).initialize(to: UInt8(ascii: " "))
                        at += 2
                        if let bytes = valueBytes.baseAddress { at.initialize(from: bytes, count: valueBytes.count) }
                        at += valueBytes.count
                    }
                    at.initialize(to: 0)
                    return base.withMemoryRebound(to: CChar.self, capacity: length + 1) { curl_slist_append(list, $0) }
                }
            }
        }
    }

    private static func setUpload(
        _ easy: UnsafeMutableRawPointer, owner: UnsafeMutableRawPointer, method: String, size: Int64
    ) {
        _ = gh_easy_setopt_long(easy, CURLOPT_UPLOAD, 1)
        _ = gh_easy_setopt_str(easy, CURLOPT_CUSTOMREQUEST, method)
        _ = gh_easy_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(size))
        _ = gh_easy_setopt_data_callback(easy, CURLOPT_READFUNCTION, curlReadCallback)
        _ = gh_easy_setopt_ptr(easy, CURLOPT_READDATA, owner)
    }
}
