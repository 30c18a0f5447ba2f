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
            if !sawAccept && name.count == 6 && name.lowercased() == "accept" { sawAccept = true }
            // "Name;" is libcurl's spelling for a field with an empty value ("Name:" deletes it).
            let line = value.isEmpty ? name + ";" : name + ": " + value
            list = curl_slist_append(list, line)
        }
        // Suppress the fields libcurl would add on its own: the client did not send them.
        if !sawAccept { list = curl_slist_append(list, "Accept:") }
        list = curl_slist_append(list, "Expect:")
        _ = gh_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)
        return list
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
