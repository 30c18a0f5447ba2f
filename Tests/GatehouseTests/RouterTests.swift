import Testing

@testable import Gatehouse

private func upstream(_ basePath: String) -> UpstreamURL {
    UpstreamURL(scheme: "http", host: "127.0.0.1", port: 3001, basePath: basePath)
}

private func route(_ name: String, _ path: String, base: String, methods: [String]? = nil) -> RouteConfig {
    RouteConfig(name: name, path: path, methods: methods, upstream: upstream(base))
}

/// No root route: unmatched paths must come back nil (404 `no_route`).
private let routes: [RouteConfig] = [
    route("mcp", "/mcp", base: ""),
    route("github", "/mcp/github", base: "/mcp", methods: ["GET", "POST", "DELETE"]),
    route("github-admin", "/mcp/github/admin", base: "/admin"),
    route("status", "/status", base: "/status"),
    route("api", "/api/v1", base: "/internal/api"),
    route("dotted", "/a.b", base: "/dot"),
]

private let withoutRoot: [(path: String, name: String?, upstreamPath: String?)] = [
    // Whole segments only.
    ("/mcp/github", "github", "/mcp"),
    ("/mcp/github/", "github", "/mcp/"),
    ("/mcp/github/x", "github", "/mcp/x"),
    ("/mcp/github/x/y/", "github", "/mcp/x/y/"),
    ("/mcp/githubx", "mcp", "/githubx"),
    ("/mcp/githu", "mcp", "/githu"),
    ("/mcp/github.json", "mcp", "/github.json"),
    ("/mcpx", nil, nil),
    ("/mcp-github", nil, nil),
    ("/mc", nil, nil),
    // Longest prefix wins, whatever the config order.
    ("/mcp/github/admin", "github-admin", "/admin"),
    ("/mcp/github/admin/", "github-admin", "/admin/"),
    ("/mcp/github/admin/users", "github-admin", "/admin/users"),
    ("/mcp/github/adminx", "github", "/mcp/adminx"),
    ("/mcp/github/x/admin", "github", "/mcp/x/admin"),
    // A root upstream: the request equal to the prefix becomes "/".
    ("/mcp", "mcp", "/"),
    ("/mcp/", "mcp", "/"),
    ("/mcp/other", "mcp", "/other"),
    ("/status", "status", "/status"),
    ("/status/live", "status", "/status/live"),
    ("/statuses", nil, nil),
    // Multi-segment prefixes.
    ("/api/v1", "api", "/internal/api"),
    ("/api/v1/users/7", "api", "/internal/api/users/7"),
    ("/api/v10", nil, nil),
    ("/api", nil, nil),
    ("/api/", nil, nil),
    ("/a.b/c", "dotted", "/dot/c"),
    ("/aXb/c", nil, nil),
    // Case-sensitive.
    ("/MCP/github", nil, nil),
    ("/mcp/GitHub", "mcp", "/GitHub"),
    ("/Status", nil, nil),
    // Nothing for the root without a root route.
    ("/", nil, nil),
    ("/x", nil, nil),
]

@Test(arguments: withoutRoot)
func matchesWithoutRootRoute(path: String, name: String?, upstreamPath: String?) {
    let match = Router(routes: routes).match(path: path)
    #expect(match?.route.name == name)
    #expect(match?.upstreamPath == upstreamPath)
    if let match {
        #expect(routes[match.index] == match.route)
    }
}

private let rootRoutes: [RouteConfig] = [
    route("root", "/", base: "/api"),
    route("github", "/mcp/github", base: "/mcp"),
]

private let withRoot: [(path: String, name: String, upstreamPath: String)] = [
    ("/", "root", "/api/"),
    ("/x", "root", "/api/x"),
    ("/x/", "root", "/api/x/"),
    ("/x/y", "root", "/api/x/y"),
    ("/mcp", "root", "/api/mcp"),
    ("/mcp/githubx", "root", "/api/mcp/githubx"),
    ("/mcp/github", "github", "/mcp"),
    ("/mcp/github/tools", "github", "/mcp/tools"),
]

@Test(arguments: withRoot)
func rootRouteMatchesEverythingElse(path: String, name: String, upstreamPath: String) {
    let match = Router(routes: rootRoutes).match(path: path)
    #expect(match?.route.name == name)
    #expect(match?.upstreamPath == upstreamPath)
}

@Test(arguments: [("/", "/"), ("/x", "/x"), ("/x/y/", "/x/y/")])
func rootRouteOntoRootUpstreamKeepsThePath(path: String, upstreamPath: String) {
    let router = Router(routes: [route("all", "/", base: "")])
    #expect(router.match(path: path)?.upstreamPath == upstreamPath)
    #expect(router.match(path: path)?.index == 0)
}

@Test("index is the position in config order, not in match order")
func indexIsConfigOrder() {
    let router = Router(routes: rootRoutes)
    #expect(router.match(path: "/mcp/github")?.index == 1)
    #expect(router.match(path: "/other")?.index == 0)
}

@Test("first of two routes with the same path wins")
func duplicatePathsFirstWins() {
    let router = Router(routes: [
        route("first", "/a", base: ""), route("second", "/a", base: ""),
        route("root1", "/", base: ""), route("root2", "/", base: ""),
    ])
    #expect(router.match(path: "/a/b")?.route.name == "first")
    #expect(router.match(path: "/b")?.route.name == "root1")
}

@Test("a route path with a stray trailing slash still matches its bare path")
func trailingSlashInRouteTolerated() {
    let router = Router(routes: [route("a", "/a/", base: "/up")])
    #expect(router.match(path: "/a")?.upstreamPath == "/up")
    #expect(router.match(path: "/a/b")?.upstreamPath == "/up/b")
    #expect(router.match(path: "/ab") == nil)
}

@Test("no routes, no match")
func emptyRouter() {
    #expect(Router(routes: []).match(path: "/") == nil)
}

@Test("many routes sharing first segments")
func manyRoutes() {
    var many: [RouteConfig] = []
    for service in 0..<20 {
        for version in 0..<5 {
            many.append(route("s\(service)v\(version)", "/s\(service)/v\(version)", base: "/u\(version)"))
        }
        many.append(route("s\(service)", "/s\(service)", base: ""))
    }
    let router = Router(routes: many)
    #expect(router.match(path: "/s7/v3/x")?.route.name == "s7v3")
    #expect(router.match(path: "/s7/v3/x")?.upstreamPath == "/u3/x")
    #expect(router.match(path: "/s7/v9/x")?.route.name == "s7")
    #expect(router.match(path: "/s7/v9/x")?.upstreamPath == "/v9/x")
    #expect(router.match(path: "/s70/v3") == nil)
}

private let methodCases: [(methods: [String]?, method: String, allowed: Bool)] = [
    (nil, "GET", true),
    (nil, "PROPFIND", true),
    (["GET", "POST"], "GET", true),
    (["GET", "POST"], "HEAD", true),
    (["GET", "POST"], "POST", true),
    (["GET", "POST"], "DELETE", false),
    (["GET", "POST"], "OPTIONS", false),
    (["GET", "POST"], "get", false),
    (["POST"], "HEAD", false),
    (["POST"], "GET", false),
    (["HEAD"], "HEAD", true),
    (["HEAD"], "GET", false),
    ([], "GET", false),
]

@Test(arguments: methodCases)
func allowsMethod(methods: [String]?, method: String, allowed: Bool) {
    #expect(route("r", "/r", base: "", methods: methods).allows(method: method) == allowed)
}

private let allowCases: [(methods: [String], header: String)] = [
    (["GET"], "GET, HEAD"),
    (["GET", "POST", "DELETE"], "GET, POST, DELETE, HEAD"),
    (["POST", "GET"], "POST, GET, HEAD"),
    (["GET", "HEAD", "POST"], "GET, HEAD, POST"),
    (["POST"], "POST"),
    (["POST", "PUT"], "POST, PUT"),
    (["HEAD"], "HEAD"),
]

@Test(arguments: allowCases)
func allowHeader(methods: [String], header: String) {
    #expect(route("r", "/r", base: "", methods: methods).allowHeaderValue == header)
}

@Test("Allow for a route without a method list names the standard methods")
func allowHeaderWithoutList() {
    #expect(route("r", "/r", base: "").allowHeaderValue == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
}

@Test("normaliser and router together: disguised paths cannot reach another route")
func normaliserThenRouter() {
    let router = Router(routes: routes)
    let cases: [(target: String, name: String?)] = [
        ("/mcp/github/%2e%2e/github/admin", "github-admin"),
        ("/status/../mcp/github/x", "github"),
        ("/mcp//github", "github"),
        ("/mcp/./github/admin/", "github-admin"),
        ("/%6Dcp/github", "github"),
    ]
    for (target, name) in cases {
        guard case .success(let normalized) = PathNormalizer.normalize(target: target) else {
            Issue.record("\(target) refused")
            continue
        }
        #expect(router.match(path: normalized.path)?.route.name == name, "\(target)")
    }
}
