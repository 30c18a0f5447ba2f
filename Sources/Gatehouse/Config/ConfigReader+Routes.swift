import TOMLKit

// `[[routes]]`: which requests go where, and with what protection.
extension ConfigReader {
    static let routeKeys = ["name", "path", "methods", "upstream", "auth"]
    static let pendingRouteKeys: [String: PendingFeature] = [
        "scopes": .authorization, "roles": .authorization, "method_scopes": .authorization,
        "rate_limit": .rateLimiting, "forward_authorization": .authentication, "upstream_headers": .authentication,
        "mcp": .mcp, "tools": .mcp, "resource": .mcp,
    ]
    /// RFC 9110 methods and the common WebDAV / RFC 5789 ones; others are allowed with a
    /// warning, since a typo here silently turns into 405s.
    static let knownMethods: Set<String> = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "PROPPATCH", "MKCOL", "COPY",
        "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH", "QUERY",
    ]
    static let authNotSupported =
        "authentication is not supported yet in this build: set auth = \"none\" to proxy this route without it"

    /// Names and paths already taken, so duplicates point at the first owner.
    struct RouteRegistry {
        var names: [String: String] = [:]  // name → key path of the route
        var paths: [String: String] = [:]  // normalised path → description of the route
    }

    mutating func readRoutes(_ root: TOMLTable) -> [RouteConfig] {
        let required = "add at least one [[routes]] table"
        guard let value = root["routes"] else {
            error("routes", "no routes configured; \(required)")
            return []
        }
        guard let array = value.array else {
            error("routes", "expected an array of tables ([[routes]]), got \(Self.describe(value))")
            return []
        }
        guard !array.isEmpty else {
            error("routes", "no routes configured; \(required)")
            return []
        }
        var registry = RouteRegistry()
        var routes: [RouteConfig] = []
        for (index, element) in array.enumerated() {
            let path = "routes[\(index)]"
            guard let table = element.table else {
                error(path, "expected a table, got \(Self.describe(element))")
                continue
            }
            if let route = readRoute(table, at: path, registry: &registry) { routes.append(route) }
        }
        return routes
    }

    /// One route, or nil if anything about it was refused (already reported).
    private mutating func readRoute(_ table: TOMLTable, at path: String, registry: inout RouteRegistry) -> RouteConfig?
    {
        checkKeys(table, at: path, known: Self.routeKeys, pending: Self.pendingRouteKeys)
        let name = routeName(table, at: path, registry: &registry)
        let prefix = routePath(table, at: path, name: name, registry: &registry)
        let methods = routeMethods(table, at: path)
        let upstream = routeUpstream(table, at: path)
        let auth = routeAuth(table, at: path)
        guard let name, let prefix, let methods, let upstream, let auth else { return nil }
        return RouteConfig(name: name, path: prefix, methods: methods, upstream: upstream, auth: auth)
    }

    private mutating func routeName(_ table: TOMLTable, at path: String, registry: inout RouteRegistry) -> String? {
        let keyPath = KeyPath.join(path, "name")
        guard table["name"] != nil else {
            missing("name", in: path, "missing; every route needs a unique name (it labels logs and metrics)")
            return nil
        }
        guard let name = string(table, "name", at: path) else { return nil }
        let valid =
            !name.isEmpty && name.count <= 64
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        guard valid else {
            error(keyPath, "\(name.configQuoted) must be 1–64 letters, digits, \"-\", \"_\" or \".\"")
            return nil
        }
        guard name != "none" else {
            error(keyPath, "\"none\" is reserved: metrics label requests that matched no route route=\"none\"")
            return nil
        }
        if let owner = registry.names[name] {
            error(keyPath, "\(name.configQuoted) is already the name of \(owner); route names must be unique")
            return nil
        }
        registry.names[name] = path
        return name
    }

    private mutating func routePath(
        _ table: TOMLTable, at path: String, name: String?, registry: inout RouteRegistry
    ) -> String? {
        let keyPath = KeyPath.join(path, "path")
        guard table["path"] != nil else {
            missing("path", in: path, "missing; every route needs a path prefix such as \"/api\"")
            return nil
        }
        guard let text = string(table, "path", at: path) else { return nil }
        let prefix: String
        do {
            prefix = try RoutePath.normalize(text)
        } catch {
            self.error(keyPath, error.message)
            return nil
        }
        if let owner = registry.paths[prefix] {
            error(keyPath, "\(prefix.configQuoted) is already the path of \(owner); each path has one route")
            return nil
        }
        registry.paths[prefix] = name.map { "route \($0.configQuoted) (\(path))" } ?? path
        return prefix
    }

    /// `.none` when refused; `.some(nil)` when the key is absent (every method allowed).
    private mutating func routeMethods(_ table: TOMLTable, at path: String) -> [String]?? {
        guard table["methods"] != nil else { return .some(nil) }
        guard let entries = strings(table, "methods", at: path) else { return nil }
        guard !entries.isEmpty else {
            error(KeyPath.join(path, "methods"), "must not be empty; leave `methods` out to allow every method")
            return nil
        }
        var methods: [String] = []
        var ok = true
        for (text, elementPath) in entries {
            let method = text.uppercased()
            if !HTTPToken.isValid(text) {
                error(elementPath, "\(text.configQuoted) is not a valid HTTP method")
                ok = false
            } else if method == "CONNECT" {
                error(elementPath, "CONNECT cannot be routed: its target is a host, not a path")
                ok = false
            } else if methods.contains(method) {
                error(elementPath, "\(method) is listed twice")
                ok = false
            } else {
                if !Self.knownMethods.contains(method) {
                    warning(elementPath, "\(method) is not a standard HTTP method; check the spelling")
                }
                methods.append(method)
            }
        }
        return ok ? .some(methods) : .none
    }

    private mutating func routeUpstream(_ table: TOMLTable, at path: String) -> UpstreamURL? {
        guard table["upstream"] != nil else {
            missing(
                "upstream", in: path, "missing; every route needs an upstream URL such as \"http://127.0.0.1:3001\"")
            return nil
        }
        guard let text = string(table, "upstream", at: path) else { return nil }
        do {
            return try UpstreamURL.parse(text)
        } catch {
            self.error(KeyPath.join(path, "upstream"), error.message)
            return nil
        }
    }

    /// Only `none` until authentication exists: a route must never silently forward
    /// unauthenticated traffic it was configured to protect.
    private mutating func routeAuth(_ table: TOMLTable, at path: String) -> AuthMode? {
        guard table["auth"] != nil else {
            missing("auth", in: path, Self.authNotSupported + " (a route without `auth` requires authentication)")
            return nil
        }
        let allowed = [AuthMode.required, .optional, .none].map(\.rawValue)
        guard let text = choice(table, "auth", at: path, allowed: allowed), let mode = AuthMode(rawValue: text) else {
            return nil
        }
        guard mode == .none else {
            error(KeyPath.join(path, "auth"), Self.authNotSupported)
            return nil
        }
        return mode
    }
}
