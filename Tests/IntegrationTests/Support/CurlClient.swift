import CCurl
import Foundation
import Synchronization

/// What a libcurl transfer produced. Timing fields use `ContinuousClock` so they can be
/// compared with `RecordedRequest.arrivedAt` and `ContinuousClock.now` in tests.
struct CurlResponse: Sendable {
    /// Final (non-1xx) status, 0 if none arrived.
    var status = 0
    /// e.g. "HTTP/1.1", from the final status line.
    var httpVersion = ""
    /// Headers of the final response, wire order, names case-preserved.
    var headers: [(String, String)] = []
    /// Trailer fields after a chunked body.
    var trailers: [(String, String)] = []
    var bodyBytes = 0
    var bodySHA256 = ""
    /// The body, when `bodyKept` (it fit under `Options.keepBodyLimit`).
    var body: [UInt8] = []
    var bodyKept = true
    /// One entry per WRITEFUNCTION call: when it ran and how many bytes it got.
    var chunkArrivals: [ContinuousClock.Instant] = []
    var chunkSizes: [Int] = []
    var startedAt: ContinuousClock.Instant
    /// When the blank line ending the final response's head arrived.
    var headersAt: ContinuousClock.Instant?
    var finishedAt: ContinuousClock.Instant
    /// Request body bytes handed to curl.
    var uploadedBytes = 0
    /// The CURLcode when the transfer failed (e.g. 18 partial file, 28 timeout, 52 empty
    /// reply, 56 receive error); nil on success.
    var curlCode: Int?
    var curlError: String?
    /// True when `Options.abortAfterBytes` ended the transfer (curlCode is then 23).
    var abortedByClient = false
    /// True when the transfer ran out of its `timeout`: curl's own timeout (curlCode 28) or
    /// the harness's deadline check in the callbacks (curlCode 23 or 42). The latter exists
    /// because curl looks at its clock only between batches of up to 100 reads, which a
    /// slow reader (`delayPerChunk`) stretches far past the timeout.
    var timedOut = false

    var succeeded: Bool { curlCode == nil }
    var bodyString: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    /// Gaps between consecutive body chunks, for streaming/flush assertions.
    var chunkGaps: [Duration] {
        zip(chunkArrivals.dropFirst(), chunkArrivals).map { $0 - $1 }
    }
}

enum CurlClientError: Error {
    case initFailed
    case setoptFailed(option: String, code: Int)
}

/// A client on libcurl's easy interface, i.e. the same HTTP stack many real users have.
/// Each request runs `curl_easy_perform` on its own `Thread` so a blocking transfer never
/// occupies a cooperative-pool thread (the pool has only as many threads as cores).
enum CurlClient {
    enum Body: Sendable {
        /// Sent with Content-Length, or chunked when `chunked`.
        case bytes([UInt8], chunked: Bool = false)
        /// `bytes` bytes of `DeterministicPattern`, generated inside the READFUNCTION as curl
        /// asks for them so even huge uploads never sit in memory.
        case pattern(bytes: Int, chunked: Bool = false)

        static func string(_ text: String) -> Body { .bytes(Array(text.utf8)) }

        fileprivate var contentLength: Int? {
            switch self {
            case .bytes(let bytes, let chunked): chunked ? nil : bytes.count
            case .pattern(let bytes, let chunked): chunked ? nil : bytes
            }
        }
    }

    enum HTTPVersion: Sendable {
        case http10
        case http11
    }

    struct Options: Sendable {
        /// Abort the transfer (as a client disconnect) once this many body bytes arrived.
        var abortAfterBytes: Int?
        /// Sleep after each received chunk: a slow reader, so TCP backpressure builds up.
        var delayPerChunk: Duration?
        /// Sleep before each upload chunk after the first: a slow uploader.
        var uploadDelayPerChunk: Duration?
        /// CURLOPT_BUFFERSIZE: the most bytes one WRITEFUNCTION call receives.
        var receiveBufferSize: Int?
        /// CURLOPT_UPLOAD_BUFFERSIZE: the most bytes one READFUNCTION call provides.
        var uploadBufferSize: Int?
        var httpVersion: HTTPVersion = .http11
        var connectTimeout: Duration = .seconds(5)
        /// Bodies up to this size are kept in `CurlResponse.body`.
        var keepBodyLimit = 1 << 20
        /// PEM file of the CA to trust for https:// URLs (the test's own self-signed one).
        var caFile: String?
        /// Highest TLS version to offer (CURL_SSLVERSION_MAX_* value), to test refusals.
        var maxTLSVersion: Int?
        var tlsVersion: Int?

        init() {}
    }

    /// Performs one request. Transfer failures are reported in `curlCode`, not thrown; this
    /// throws only if curl cannot be set up. `timeout` bounds the whole transfer.
    /// Headers with an empty value are sent empty (curl would otherwise drop them).
    /// `Expect: 100-continue` is suppressed unless `headers` sets Expect.
    static func request(
        method: String = "GET",
        url: String,
        headers: [(String, String)] = [],
        body: Body? = nil,
        timeout: Duration = .seconds(30),
        options: Options = Options()
    ) async throws -> CurlResponse {
        let job = Job(method: method, url: url, headers: headers, body: body, timeout: timeout, options: options)
        let cancel = CancelFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let thread = Thread {
                    continuation.resume(with: Result { try perform(job, cancel: cancel) })
                }
                thread.name = "CurlClient"
                thread.start()
            }
        } onCancel: {
            cancel.set()
        }
    }

    fileprivate struct Job: Sendable {
        let method: String
        let url: String
        let headers: [(String, String)]
        let body: Body?
        let timeout: Duration
        let options: Options
    }

    /// curl_global_init is not guaranteed thread-safe on every build, so run it exactly once
    /// (Swift initialises static lets atomically) before any handle is created.
    private static let globalInit: Void = {
        _ = curl_global_init(Int(CURL_GLOBAL_ALL))
    }()

    private static func perform(_ job: Job, cancel: CancelFlag) throws -> CurlResponse {
        _ = globalInit
        guard let easy = curl_easy_init() else { throw CurlClientError.initFailed }
        let context = TransferContext(job: job, cancel: cancel)
        // Pointer soundness: curl calls the callbacks only inside curl_easy_perform, on this
        // thread, with the userdata we set. `context` is passed unretained and is kept alive
        // until after curl_easy_cleanup by withExtendedLifetime below, so every
        // fromOpaque(...).takeUnretainedValue() sees a live object. The header list and
        // error buffer, which curl does not copy, are likewise freed only after cleanup.
        // String options are copied by curl (since 7.17), so Swift's temporary C strings
        // may die right after each setopt call. The buffers curl passes to the callbacks
        // are valid only during each call; the context copies out and never keeps them.
        let userdata = Unmanaged.passUnretained(context).toOpaque()
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer {
            curl_easy_cleanup(easy)
            curl_slist_free_all(headerList)
            errorBuffer.deallocate()
            withExtendedLifetime(context) {}
        }

        func check(_ code: CURLcode, _ option: String) throws {
            if code != CURLE_OK {
                throw CurlClientError.setoptFailed(option: option, code: Int(code.rawValue))
            }
        }

        let options = job.options
        try check(gh_easy_setopt_str(easy, CURLOPT_URL, job.url), "URL")
        try check(gh_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        // An empty proxy disables proxies outright, including http_proxy from the environment.
        try check(gh_easy_setopt_str(easy, CURLOPT_PROXY, ""), "PROXY")
        if let caFile = job.options.caFile { try check(gh_easy_setopt_str(easy, CURLOPT_CAINFO, caFile), "CAINFO") }
        if let version = job.options.tlsVersion {
            try check(
                gh_easy_setopt_long(easy, CURLOPT_SSLVERSION, version | (job.options.maxTLSVersion ?? 0)), "SSLVERSION")
        }
        // Send dot segments and odd paths exactly as written; path handling is under test.
        try check(gh_easy_setopt_long(easy, CURLOPT_PATH_AS_IS, 1), "PATH_AS_IS")
        let version = options.httpVersion == .http10 ? CURL_HTTP_VERSION_1_0 : CURL_HTTP_VERSION_1_1
        try check(gh_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(version)), "HTTP_VERSION")
        try check(gh_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, milliseconds(job.timeout)), "TIMEOUT_MS")
        try check(
            gh_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(options.connectTimeout)),
            "CONNECTTIMEOUT_MS"
        )
        try check(gh_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, errorBuffer), "ERRORBUFFER")
        if let size = options.receiveBufferSize {
            try check(gh_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, size), "BUFFERSIZE")
        }
        if let size = options.uploadBufferSize {
            try check(gh_easy_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, size), "UPLOAD_BUFFERSIZE")
        }

        try check(
            gh_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION) { buffer, size, count, userdata in
                guard let userdata else { return 0 }
                let context = Unmanaged<TransferContext>.fromOpaque(userdata).takeUnretainedValue()
                return context.receiveBody(UnsafeRawBufferPointer(start: buffer, count: size * count))
            },
            "WRITEFUNCTION"
        )
        try check(gh_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, userdata), "WRITEDATA")
        try check(
            gh_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION) { buffer, size, count, userdata in
                guard let userdata else { return 0 }
                let context = Unmanaged<TransferContext>.fromOpaque(userdata).takeUnretainedValue()
                return context.receiveHeaderLine(UnsafeRawBufferPointer(start: buffer, count: size * count))
            },
            "HEADERFUNCTION"
        )
        try check(gh_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, userdata), "HEADERDATA")

        if job.method == "HEAD" {
            try check(gh_easy_setopt_long(easy, CURLOPT_NOBODY, 1), "NOBODY")
        } else if job.method != "GET" || job.body != nil {
            try check(gh_easy_setopt_str(easy, CURLOPT_CUSTOMREQUEST, job.method), "CUSTOMREQUEST")
        }
        if let body = job.body {
            // UPLOAD streams the body through the READFUNCTION whatever the method; the
            // CUSTOMREQUEST above restores the method name. Without a size curl uses chunked.
            try check(gh_easy_setopt_long(easy, CURLOPT_UPLOAD, 1), "UPLOAD")
            try check(
                gh_easy_setopt_data_callback(easy, CURLOPT_READFUNCTION) { buffer, size, count, userdata in
                    guard let userdata, let buffer else { return Int(CURL_READFUNC_ABORT) }
                    let context = Unmanaged<TransferContext>.fromOpaque(userdata).takeUnretainedValue()
                    return context.provideBody(UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
                },
                "READFUNCTION"
            )
            try check(gh_easy_setopt_ptr(easy, CURLOPT_READDATA, userdata), "READDATA")
            if let length = body.contentLength {
                try check(gh_easy_setopt_off(easy, CURLOPT_INFILESIZE_LARGE, curl_off_t(length)), "INFILESIZE_LARGE")
            }
        }

        var lines = job.headers.map { name, value in value.isEmpty ? "\(name);" : "\(name): \(value)" }
        if !job.headers.contains(where: { $0.0.lowercased() == "expect" }) {
            // curl would wait up to a second for a 100 Continue on large uploads.
            lines.append("Expect:")
        }
        for line in lines {
            headerList = curl_slist_append(headerList, line)
        }
        try check(gh_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList), "HTTPHEADER")

        context.response.startedAt = .now
        let code = curl_easy_perform(easy)
        context.response.finishedAt = .now

        var status = 0
        if gh_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK, status != 0 {
            context.response.status = status
        }
        if code != CURLE_OK {
            context.response.curlCode = Int(code.rawValue)
            if code == CURLE_OPERATION_TIMEDOUT {
                context.response.timedOut = true
            }
            let detail = String(cString: errorBuffer)
            context.response.curlError = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        }
        context.response.bodySHA256 = context.hasher.finalizeHex()
        return context.response
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}

/// Set from the cancellation handler (any thread), read by callbacks on the curl thread.
private final class CancelFlag: Sendable {
    private let flag = Atomic(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}

/// Per-transfer state, used only from the thread running curl_easy_perform.
private final class TransferContext {
    private enum Upload {
        case bytes([UInt8], offset: Int)
        case pattern(DeterministicPattern, remaining: Int)
    }

    var response: CurlResponse
    var hasher = SHA256()
    private let options: CurlClient.Options
    private let cancel: CancelFlag
    private var upload: Upload?
    private var uploadChunks = 0
    /// Set by the blank line after a final status line; later lines are trailers.
    private var finalHeadDone = false
    private let deadline: ContinuousClock.Instant

    init(job: CurlClient.Job, cancel: CancelFlag) {
        self.options = job.options
        self.cancel = cancel
        let now = ContinuousClock.now
        deadline = now + job.timeout
        response = CurlResponse(startedAt: now, finishedAt: now)
        switch job.body {
        case .bytes(let bytes, _): upload = .bytes(bytes, offset: 0)
        case .pattern(let count, _): upload = .pattern(DeterministicPattern(), remaining: count)
        case nil: upload = nil
        }
    }

    /// WRITEFUNCTION: returning anything but `data.count` makes curl abort the transfer.
    func receiveBody(_ data: UnsafeRawBufferPointer) -> Int {
        if cancel.isSet { return 0 }
        response.chunkArrivals.append(.now)
        response.chunkSizes.append(data.count)
        hasher.update(data)
        response.bodyBytes += data.count
        if response.bodyKept {
            if response.body.count + data.count <= options.keepBodyLimit {
                response.body.append(contentsOf: data)
            } else {
                response.bodyKept = false
                response.body = []
            }
        }
        if let limit = options.abortAfterBytes, response.bodyBytes >= limit {
            response.abortedByClient = true
            return 0
        }
        if let delay = options.delayPerChunk, !sleep(delay) {
            response.timedOut = true
            return 0
        }
        return data.count
    }

    /// HEADERFUNCTION: called once per complete header line, CRLF included, for every
    /// response (1xx interim ones too) and for trailers.
    func receiveHeaderLine(_ data: UnsafeRawBufferPointer) -> Int {
        if cancel.isSet { return 0 }
        // Trim on bytes: in Swift "\r\n" is one Character, so String suffix checks miss it.
        var end = data.count
        while end > 0, data[end - 1] == 10 || data[end - 1] == 13 { end -= 1 }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: data[0..<end]), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            let parts = line.split(separator: " ", maxSplits: 2)
            response.httpVersion = parts.first.map(String.init) ?? ""
            response.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            response.headers = []
            finalHeadDone = false
        } else if line.isEmpty {
            if response.status >= 200 && !finalHeadDone {
                finalHeadDone = true
                response.headersAt = .now
            }
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if finalHeadDone {
                response.trailers.append((name, value))
            } else {
                response.headers.append((name, value))
            }
        }
        return data.count
    }

    /// READFUNCTION: fills `buffer` with the next body bytes; 0 means end of body.
    func provideBody(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        if cancel.isSet { return Int(CURL_READFUNC_ABORT) }
        if uploadChunks > 0, let delay = options.uploadDelayPerChunk, !sleep(delay) {
            response.timedOut = true
            return Int(CURL_READFUNC_ABORT)
        }
        uploadChunks += 1
        var written = 0
        switch upload {
        case .bytes(let bytes, let offset):
            written = min(buffer.count, bytes.count - offset)
            buffer.copyBytes(from: bytes[offset..<offset + written])
            upload = .bytes(bytes, offset: offset + written)
        case .pattern(var pattern, let remaining):
            written = min(buffer.count, remaining)
            pattern.fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<written]))
            upload = .pattern(pattern, remaining: remaining - written)
        case nil:
            break
        }
        response.uploadedBytes += written
        return written
    }

    /// Sleeps for `duration` but not past the deadline; false when the deadline has passed.
    private func sleep(_ duration: Duration) -> Bool {
        let remaining = deadline - .now
        if remaining <= .zero { return false }
        Thread.sleep(forTimeInterval: seconds(min(duration, remaining)))
        return ContinuousClock.now < deadline
    }

    private func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
