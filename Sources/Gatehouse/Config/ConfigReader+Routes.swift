import TOMLKit

// `[[routes]]`: which requests go where, and with what protection.
extension ConfigReader {
    static let routeKeys = [
        "name", "path", "methods", "upstream", "scopes", "roles", "method_scopes", "auth", "forward_authorization",
        "upstream_headers", "rate_limit",
    ]
    static let pendingRouteKeys: [String: PendingFeature] = ["mcp": .mcp, "tools": .mcp, "resource": .mcp]
    /// RFC 9110 methods and the common WebDAV / RFC 5789 ones; others are allowed with a
    /// warning, since a typo here silently turns into 405s.
    static let knownMethods: Set<String> = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "PROPPATCH", "MKCOL", "COPY",
        "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH", "QUERY",
    ]
    /// Names `upstream_headers` may not set, lower-cased with `_` read as `-`: they frame
    /// the message or are set by the proxy itself (SPEC §6), so a second value would
    /// conflict. Hop-by-hop names are refused too; they never reach the upstream.
    static let proxyManagedHeaders: Set<String> = [
        "host", "content-length", "transfer-encoding", "forwarded", "x-forwarded-for", "x-forwarded-host",
        "x-forwarded-proto", "x-request-id",
    ]
    /// A credential file is a few hundred bytes; far more is the wrong file.
    static let maximumHeaderFileBytes = 64 << 10

    /// Names and paths already taken, so duplicates point at the first owner.
    struct RouteRegistry {
        var names: [String: String] = [:]  // name → key path of the route
        var paths: [String: String] = [:]  // normalised path → description of the route
    }

    /// The header names a route's `upstream_headers` are checked against.
    struct HeaderNames {
        var identity: IdentityHeaderNames
        var apiKey: String
    }

    /// `roles` is `[roles]` as read (nil when absent): routes' `roles` and scopes are
    /// checked against it.
    mutating func readRoutes(
        _ root: TOMLTable, identityHeaders: IdentityHeaderNames, apiKeyHeader: String, roles: RoleDefinitions?
    ) -> [RouteConfig] {
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
        let headers = HeaderNames(identity: identityHeaders, apiKey: apiKeyHeader)
        var routes: [RouteConfig] = []
        for (index, element) in array.enumerated() {
            let path = "routes[\(index)]"
            guard let table = element.table else {
                error(path, "expected a table, got \(Self.describe(element))")
                continue
            }
            if let route = readRoute(table, at: path, registry: &registry, headers: headers, roles: roles) {
                routes.append(route)
            }
        }
        return routes
    }

    /// One route, or nil if anything about it was refused (already reported).
    private mutating func readRoute(
        _ table: TOMLTable, at path: String, registry: inout RouteRegistry, headers: HeaderNames,
        roles: RoleDefinitions?
    ) -> RouteConfig? {
        checkKeys(table, at: path, known: Self.routeKeys, pending: Self.pendingRouteKeys)
        let name = routeName(table, at: path, registry: &registry)
        let prefix = routePath(table, at: path, name: name, registry: &registry)
        let methods = routeMethods(table, at: path)
        let upstream = routeUpstream(table, at: path)
        let auth = routeAuth(table, at: path)
        let access = routeAccess(table, at: path, methods: methods, auth: auth, roles: roles)
        let forwardAuthorization: Bool? =
            table["forward_authorization"] == nil ? false : bool(table, "forward_authorization", at: path)
        let upstreamHeaders = routeUpstreamHeaders(
            table, at: path, headers: headers, forwardAuthorization: forwardAuthorization ?? false)
        guard let name, let prefix, let methods, let upstream, let auth, let forwardAuthorization, let upstreamHeaders,
            let access
        else { return nil }
        return RouteConfig(
            name: name, path: prefix, methods: methods, upstream: upstream, auth: auth,
            forwardAuthorization: forwardAuthorization, upstreamHeaders: upstreamHeaders, scopes: access.scopes,
            roles: access.roles, methodScopes: access.methodScopes)
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

    /// "required" when absent (SPEC §2): forgetting the key must never open a route. A
    /// protected route always has a credential source: API keys need no configuration.
    private mutating func routeAuth(_ table: TOMLTable, at path: String) -> AuthMode? {
        guard table["auth"] != nil else { return .required }
        let allowed = [AuthMode.required, .optional, .none].map(\.rawValue)
        guard let text = choice(table, "auth", at: path, allowed: allowed) else { return nil }
        return AuthMode(rawValue: text)
    }

    /// `upstream_headers = { Name = { env = "VAR" } | { file = "path" } }`, resolved now so
    /// that a missing credential fails `gatehouse check`, not the first request. Messages
    /// name the variable or file, never the value: they reach terminals and logs.
    private mutating func routeUpstreamHeaders(
        _ table: TOMLTable, at path: String, headers names: HeaderNames, forwardAuthorization: Bool
    ) -> [UpstreamHeader]? {
        guard table["upstream_headers"] != nil else { return [] }
        let tablePath = KeyPath.join(path, "upstream_headers")
        // Values here are never echoed (`kind(of:)`, not `describe`): a credential written
        // inline by mistake must not be copied into terminals and logs.
        guard let entries = table["upstream_headers"]?.table else {
            let kind = table["upstream_headers"].map(Self.kind(of:)) ?? "nothing"
            error(tablePath, "expected a table of header name = { env = \"NAME\" } or { file = \"path\" }, got \(kind)")
            return nil
        }
        var headers: [UpstreamHeader] = []
        var seen: [String: String] = [:]  // folded name → name as written
        var ok = true
        for name in entries.keys.sorted() {
            let entryPath = KeyPath.join(tablePath, name)
            let nameOK = upstreamHeaderName(
                name, at: entryPath, names: names, forwardAuthorization: forwardAuthorization)
            if nameOK, let other = seen.updateValue(name, forKey: Self.foldedHeaderName(name)) {
                error(entryPath, "\(name.configQuoted) is also set as \(other.configQuoted)")
                ok = false
            }
            guard let entry = entries[name]?.table else {
                let kind = entries[name].map(Self.kind(of:)) ?? "nothing"
                error(
                    entryPath,
                    "expected { env = \"NAME\" } or { file = \"path\" }, got \(kind) (a credential is never written "
                        + "in the config: name an environment variable or a file that holds it)")
                ok = false
                continue
            }
            guard let (source, value) = upstreamHeaderValue(entry, at: entryPath), nameOK else {
                ok = false
                continue
            }
            headers.append(UpstreamHeader(name: name, source: source, value: value))
        }
        return ok ? headers : nil
    }

    private mutating func upstreamHeaderName(
        _ name: String, at keyPath: String, names: HeaderNames, forwardAuthorization: Bool
    ) -> Bool {
        let folded = Self.foldedHeaderName(name)
        if !HTTPToken.isValid(name) {
            error(keyPath, "\(name.configQuoted) is not a valid HTTP header name")
        } else if Self.proxyManagedHeaders.contains(folded) || HopByHopHeaders.isHopByHop(lowercased: folded) {
            error(keyPath, "\(name.configQuoted) is reserved: the proxy sets or relies on it itself")
        } else if let field = Self.identityField(named: folded, in: names.identity) {
            error(
                keyPath,
                "\(name.configQuoted) is identity_headers.\(field): only the verified identity may set it upstream")
        } else if forwardAuthorization && (folded == "authorization" || folded == Self.foldedHeaderName(names.apiKey)) {
            // Both would reach the upstream, and which one it reads would be up to it.
            error(
                keyPath,
                "\(name.configQuoted) cannot be set here while forward_authorization = true passes "
                    + "the client's \(name) upstream")
        } else {
            return true
        }
        return false
    }

    /// The source and the resolved value of one `upstream_headers` entry, or nil (reported).
    private mutating func upstreamHeaderValue(
        _ entry: TOMLTable, at entryPath: String
    ) -> (UpstreamHeader.Source, String)? {
        checkKeys(entry, at: entryPath, known: ["env", "file"])
        switch (entry["env"] != nil, entry["file"] != nil) {
        case (true, true):
            error(entryPath, "set either env or file, not both")
            return nil
        case (false, false):
            // Unknown keys are reported by checkKeys already, with a hint.
            if entry.keys.isEmpty { error(entryPath, "needs env = \"NAME\" or file = \"path\"") }
            return nil
        case (true, false):
            let keyPath = KeyPath.join(entryPath, "env")
            guard let variable = string(entry, "env", at: entryPath) else { return nil }
            guard EnvironmentName.isValid(variable) else {
                // Not echoed: a token pasted here by mistake would otherwise be printed.
                error(
                    keyPath,
                    "is not a valid environment variable name (letters, digits and \"_\", not starting with a digit)")
                return nil
            }
            let value: String? =
                if let environment { environment[variable] } else { ConfigPaths.environmentValue(variable) }
            guard let value else {
                error(keyPath, "environment variable \(variable) is not set")
                return nil
            }
            if let problem = Self.headerValueProblem(value) {
                error(keyPath, "the value of environment variable \(variable) \(problem)")
                return nil
            }
            return (.environment(variable), value)
        case (false, true):
            let keyPath = KeyPath.join(entryPath, "file")
            guard let text = string(entry, "file", at: entryPath), let file = filePath(text, at: keyPath) else {
                return nil
            }
            switch ConfigPaths.readText(file, maximumBytes: Self.maximumHeaderFileBytes) {
            case .failure(let reason):
                error(keyPath, "\(file.configQuoted): \(reason.message)")
                return nil
            case .success(let content):
                let value = Self.strippingOneNewline(content)
                if let problem = Self.headerValueProblem(value) {
                    error(keyPath, "the content of \(file.configQuoted) \(problem) (one trailing newline is ignored)")
                    return nil
                }
                return (.file(file), value)
            }
        }
    }

    /// Why `value` cannot be sent as a header value, or nil. Says what is wrong, never
    /// where in the value: the value is a secret. CR and LF would split the header
    /// (request smuggling), NUL and other control bytes are refused by HTTP parsers.
    static func headerValueProblem(_ value: String) -> String? {
        if value.isEmpty { return "is empty" }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\r", "\n": return "contains a line break; header values cannot"
            case "\0": return "contains a NUL byte; header values cannot"
            case "\t": continue
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                return "contains a control character; header values cannot"
            default: continue
            }
        }
        return nil
    }

    /// A file's text without one trailing "\n" or "\r\n", the newline editors and `echo`
    /// add; any other whitespace is kept (it is part of the value).
    static func strippingOneNewline(_ text: String) -> String {
        var scalars = Substring(text).unicodeScalars
        if scalars.last == "\n" {
            scalars.removeLast()
            if scalars.last == "\r" { scalars.removeLast() }
        }
        return String(Substring(scalars))
    }
}

/// The resolved value is a credential: keep it out of `print`, string interpolation,
/// `dump` and test-failure output, which all go through these.
extension UpstreamHeader: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        switch source {
        case .environment(let variable): return "\(name): <from environment variable \(variable)>"
        case .file(let path): return "\(name): <from file \(path)>"
        }
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["name": name, "source": source, "value": "<redacted>"])
    }
}
