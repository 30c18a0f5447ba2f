/// The route a request path selected, and the path to send upstream.
public struct RouteMatch: Sendable {
    public let route: RouteConfig
    /// Position of `route` in the list the router was built from (config order).
    public let index: Int
    /// The request path with the route prefix replaced by the upstream's base path.
    public let upstreamPath: String

    public init(route: RouteConfig, index: Int, upstreamPath: String) {
        self.route = route
        self.index = index
        self.upstreamPath = upstreamPath
    }
}

/// Longest-prefix route matching on whole path segments (SPEC §2 `[[routes]]`, §6).
/// Built once per config; `match` only reads.
public struct Router: Sendable {
    /// The bytes matching needs, kept apart from `routes` so scanning candidates touches
    /// no route's strings.
    private struct Entry: Sendable {
        let index: Int
        /// Route path bytes without a trailing slash; empty for the root route.
        let prefix: [UInt8]
        /// The upstream's base path: "" for the root, else "/x" without a trailing slash.
        let basePath: [UInt8]
    }

    private static let slash = UInt8(ascii: "/")

    private let routes: [RouteConfig]
    /// Routes grouped by a hash of their first segment, each group longest prefix first.
    /// The hash only narrows the candidates: every candidate is compared byte for byte, so
    /// a collision merely puts two groups in one bucket.
    private let buckets: [UInt64: [Entry]]
    private let root: Entry?

    public init(routes: [RouteConfig]) {
        var buckets: [UInt64: [Entry]] = [:]
        var root: Entry?
        for (index, route) in routes.enumerated() {
            var prefix = Array(route.path.utf8)
            // Config loading already normalises, but a stray trailing slash would silently
            // stop the route matching its own bare path, so tolerate it here.
            while prefix.last == Router.slash { prefix.removeLast() }
            var basePath = Array(route.upstream.basePath.utf8)
            while basePath.last == Router.slash { basePath.removeLast() }
            let entry = Entry(index: index, prefix: prefix, basePath: basePath)
            if prefix.isEmpty {
                // Duplicate paths are a config error; if one slips through, the first wins.
                if root == nil { root = entry }
                continue
            }
            let key = prefix.withUnsafeBufferPointer { Router.firstSegmentHash($0) }
            buckets[key, default: []].append(entry)
        }
        for key in buckets.keys {
            // Longest first; equal lengths keep config order, so among duplicates the first wins.
            buckets[key] = buckets[key]?.sorted {
                ($0.prefix.count, $1.index) > ($1.prefix.count, $0.index)
            }
        }
        self.routes = routes
        self.buckets = buckets
        self.root = root
    }

    /// `path` must already be normalised (`PathNormalizer`): matching is byte-exact.
    public func match(path: String) -> RouteMatch? {
        let found: (index: Int, upstreamPath: String?)?
        if let hit = path.utf8.withContiguousStorageIfAvailable({ match(bytes: $0) }) {
            found = hit
        } else {
            let copy = Array(path.utf8)
            found = copy.withUnsafeBufferPointer { match(bytes: $0) }
        }
        guard let found else { return nil }
        return RouteMatch(route: routes[found.index], index: found.index, upstreamPath: found.upstreamPath ?? path)
    }

    /// The matching route's index and its upstream path; a nil path means "the request
    /// path unchanged", which saves a copy for a root route onto a root upstream.
    private func match(bytes path: UnsafeBufferPointer<UInt8>) -> (index: Int, upstreamPath: String?)? {
        var found: Entry?
        if let candidates = buckets[Router.firstSegmentHash(path)] {
            for entry in candidates where Router.matches(path, prefix: entry.prefix) {
                found = entry
                break
            }
        }
        guard let entry = found ?? root else { return nil }

        let rest = UnsafeBufferPointer(rebasing: path[entry.prefix.count...])
        if entry.basePath.isEmpty && entry.prefix.isEmpty { return (entry.index, nil) }
        // `/mcp/github` onto a root upstream must still send a path, and "/" is the one it means.
        if rest.isEmpty && entry.basePath.isEmpty { return (entry.index, "/") }
        let upstreamPath = entry.basePath.withUnsafeBufferPointer { base in
            String(unsafeUninitializedCapacity: base.count + rest.count) { buffer in
                let afterBase = buffer.initialize(fromContentsOf: base)
                let end = UnsafeMutableBufferPointer(rebasing: buffer[afterBase...]).initialize(fromContentsOf: rest)
                return afterBase + end
            }
        }
        return (entry.index, upstreamPath)
    }

    /// True when `prefix` is `path` or `path` continues past it with a "/": whole segments
    /// only, so `/mcp/github` never matches `/mcp/githubx`.
    private static func matches(_ path: UnsafeBufferPointer<UInt8>, prefix: [UInt8]) -> Bool {
        let length = prefix.count
        guard path.count >= length else { return false }
        if path.count > length && path[length] != Router.slash { return false }
        return prefix.withUnsafeBufferPointer { prefixBytes in
            // From the end: routes in one bucket share their first segment, so differences
            // show up sooner there.
            var index = length - 1
            while index >= 0 {
                if path[index] != prefixBytes[index] { return false }
                index -= 1
            }
            return true
        }
    }

    /// FNV-1a over the bytes between the leading "/" and the next "/" (or the end).
    private static func firstSegmentHash(_ path: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var index = 1
        while index < path.count, path[index] != Router.slash {
            hash = (hash ^ UInt64(path[index])) &* 0x0000_0100_0000_01B3
            index += 1
        }
        return hash
    }
}

extension RouteConfig {
    /// nil `methods` allows everything; a list with GET also allows HEAD, as nginx's
    /// `limit_except GET` does, since HEAD is GET without the body.
    public func allows(method: String) -> Bool {
        guard let methods else { return true }
        if methods.contains(method) { return true }
        return method == "HEAD" && methods.contains("GET")
    }

    /// The `Allow` header for a 405: the configured methods in config order, plus the
    /// implied HEAD. Routes without a method list never produce a 405; for them this
    /// lists the standard methods rather than an empty value, which would mean "none".
    public var allowHeaderValue: String {
        guard var methods else { return "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" }
        if methods.contains("GET") && !methods.contains("HEAD") { methods.append("HEAD") }
        return methods.joined(separator: ", ")
    }
}
