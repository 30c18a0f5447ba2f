import TOMLKit

// `[roles]` and the routes' `scopes`, `roles` and `method_scopes` (SPEC §2, §4). What
// they mean at request time lives in Authorization/; here they are only read and checked
// against each other, so that a typo fails `gatehouse check` instead of refusing (or
// admitting) callers in production.
extension ConfigReader {
    /// `[roles]` as read, for checking what routes name.
    struct RoleDefinitions {
        /// Role → scopes, in config order, for every role read without error.
        var table: [String: [String]] = [:]
        /// Every role name written, refused ones included, so that a route naming one is
        /// not reported a second time; nil when `roles` is not a table at all.
        var names: Set<String>? = []
        /// False once anything in `[roles]` was refused: checks that need every role's
        /// scopes (the "held by no role" warnings) are then skipped rather than wrong.
        var isComplete = true
    }

    /// A route's access rules, as read.
    struct RouteAccess {
        var scopes: [String] = []
        var roles: [String]?
        /// Upper-case method → extra scopes.
        var methodScopes: [String: [String]] = [:]
    }

    /// nil when there is no `[roles]` table: then credentials' scopes are used as they
    /// are (SPEC §4), which is different from an empty table.
    mutating func readRoles(_ root: TOMLTable) -> RoleDefinitions? {
        guard root["roles"] != nil else { return nil }
        guard let table = table(root, "roles", at: "") else { return RoleDefinitions(names: nil, isComplete: false) }
        var roles = RoleDefinitions()
        if table.keys.isEmpty {
            // Legal, but with a table every role it does not list holds no scopes.
            warning(
                "roles",
                "[roles] is empty: every identity with a role gets no scopes; define the roles, or remove the "
                    + "table to use credentials' scopes as they are")
        }
        for name in table.keys.sorted() {
            roles.names?.insert(name)
            var ok = true
            if let problem = Self.roleNameProblem(name) {
                error(KeyPath.join("roles", name), problem)
                ok = false
            }
            if let scopes = scopeList(table, name, at: "roles", expected: "an array of scope strings"), ok {
                roles.table[name] = scopes.map(\.text)
            } else {
                roles.isComplete = false
            }
        }
        return roles
    }

    /// `scopes`, `roles` and `method_scopes` of one route, or nil if any was refused
    /// (reported). `methods` is the route's `methods` as read (`.none` = refused,
    /// `.some(nil)` = absent); `auth` nil when refused.
    mutating func routeAccess(
        _ table: TOMLTable, at path: String, methods: [String]??, auth: AuthMode?, roles: RoleDefinitions?
    ) -> RouteAccess? {
        let keys = ["scopes", "roles", "method_scopes"].filter { table[$0] != nil }
        var access = RouteAccess()
        guard !keys.isEmpty else { return access }
        if auth == AuthMode.none {
            // The contents are not checked: whatever they say, they must go.
            for key in keys {
                error(
                    KeyPath.join(path, key),
                    "cannot be used with auth = \"none\": nothing authenticates the caller, so there is no "
                        + "identity to check it against; remove it, or set auth = \"required\"")
            }
            return nil
        }
        var ok = true
        if table["scopes"] != nil {
            if let scopes = scopeList(table, "scopes", at: path, expected: "an array of strings") {
                warnAboutUnheld(scopes, roles: roles)
                access.scopes = scopes.map(\.text)
            } else {
                ok = false
            }
        }
        if table["roles"] != nil {
            if let names = routeRoles(table, at: path, roles: roles) { access.roles = names } else { ok = false }
        }
        if table["method_scopes"] != nil {
            if let extra = routeMethodScopes(table, at: path, methods: methods, roles: roles) {
                access.methodScopes = extra
            } else {
                ok = false
            }
        }
        guard ok else { return nil }
        if let roles { warnAboutUnreachable(access, at: path, roles: roles) }
        return access
    }

    /// `roles = [...]`: ANY of these; each must be defined in `[roles]`.
    private mutating func routeRoles(_ table: TOMLTable, at path: String, roles: RoleDefinitions?) -> [String]? {
        let keyPath = KeyPath.join(path, "roles")
        guard let entries = distinctStrings(table, "roles", at: path) else { return nil }
        guard !entries.isEmpty else {
            error(keyPath, "must not be empty (no role could pass); leave `roles` out to allow any role")
            return nil
        }
        guard let roles else {
            error(
                keyPath,
                "needs a [roles] table: every role a route names must be defined there, so that a misspelt role "
                    + "cannot silently refuse everyone; add [roles] with each role's scopes "
                    + "(e.g. admin = [\"mcp:read\", \"mcp:write\"]), or remove `roles`")
            return nil
        }
        // `[roles]` is not a table: that is reported already, and nothing here can be checked.
        guard let known = roles.names else { return entries.map(\.text) }
        let candidates = known.sorted()
        var ok = true
        for (name, elementPath) in entries where !known.contains(name) {
            let hint = DidYouMean.suggestion(for: name, among: candidates).map { "; did you mean \($0.configQuoted)?" }
            error(elementPath, "unknown role \(name.configQuoted): [roles] does not define it" + (hint ?? ""))
            ok = false
        }
        return ok ? entries.map(\.text) : nil
    }

    /// `method_scopes = { DELETE = ["mcp:write"] }`: extra scopes per method, keyed by
    /// the upper-cased method (request methods are compared that way at request time).
    private mutating func routeMethodScopes(
        _ table: TOMLTable, at path: String, methods: [String]??, roles: RoleDefinitions?
    ) -> [String: [String]]? {
        let tablePath = KeyPath.join(path, "method_scopes")
        guard let entries = table["method_scopes"]?.table else {
            let got = table["method_scopes"].map(Self.describe) ?? "nothing"
            error(tablePath, "expected a table of method = [scopes], e.g. { DELETE = [\"mcp:write\"] }, got \(got)")
            return nil
        }
        var result: [String: [String]] = [:]
        var written: [String: String] = [:]  // upper-case method → as written
        var ok = true
        for key in entries.keys.sorted() {
            let entryPath = KeyPath.join(tablePath, key)
            let method = key.uppercased()
            if !HTTPToken.isValid(key) {
                error(entryPath, "\(key.configQuoted) is not a valid HTTP method")
                ok = false
            } else if method == "CONNECT" {
                error(entryPath, "CONNECT cannot be routed: its target is a host, not a path")
                ok = false
            } else if let other = written.updateValue(key, forKey: method) {
                error(entryPath, "\(key.configQuoted) is the same method as \(other.configQuoted)")
                ok = false
            } else if case .some(.some(let allowed)) = methods,
                !allowed.contains(method) && !(method == "HEAD" && allowed.contains("GET"))
            {
                // HEAD is allowed with GET (Router), so it may carry its own scopes then.
                error(
                    entryPath,
                    "\(method) is not in this route's `methods` (\(allowed.joined(separator: ", "))): it is answered "
                        + "405 before scopes are checked; add it to `methods`, or remove it here")
                ok = false
            } else if !Self.knownMethods.contains(method) {
                warning(entryPath, "\(method) is not a standard HTTP method; check the spelling")
            }
            guard let scopes = scopeList(entries, key, at: tablePath, expected: "an array of strings") else {
                ok = false
                continue
            }
            warnAboutUnheld(scopes, roles: roles)
            result[method] = scopes.map(\.text)
        }
        return ok ? result : nil
    }

    /// An array of distinct, valid scope strings (`ScopeSyntax`), each with its key path;
    /// nil when refused (reported).
    private mutating func scopeList(
        _ table: TOMLTable, _ key: String, at path: String, expected: String
    ) -> [(text: String, path: String)]? {
        guard table[key]?.type == .array else {
            if let value = table[key] {
                error(KeyPath.join(path, key), "expected \(expected), got \(Self.describe(value))")
            }
            return nil
        }
        guard let entries = distinctStrings(table, key, at: path) else { return nil }
        var ok = true
        for (text, elementPath) in entries {
            if let problem = ScopeSyntax.problem(in: text) {
                error(elementPath, problem)
                ok = false
            }
        }
        return ok ? entries : nil
    }

    /// SPEC §2: a scope named by a route that no role holds is a warning. With a roles
    /// table, an identity with a role holds at most its role's scopes, so such a scope is
    /// out of reach for all of them; usually it is a typo.
    private mutating func warnAboutUnheld(_ scopes: [(text: String, path: String)], roles: RoleDefinitions?) {
        guard let roles, roles.isComplete else { return }
        var held: Set<String> = []
        for scopes in roles.table.values { held.formUnion(scopes) }
        let candidates = held.sorted()
        for (scope, path) in scopes where !held.contains(scope) {
            let hint = DidYouMean.suggestion(for: scope, among: candidates).map { "; did you mean \($0.configQuoted)?" }
            warning(
                path,
                "no role in [roles] holds \(scope.configQuoted), so no identity with a role can be granted it"
                    + (hint ?? ""))
        }
    }

    /// A route whose `roles` all lack one of its scopes refuses every caller: a caller
    /// must have one of those roles, and then holds at most that role's scopes. Checked
    /// only when every scope is held by some role; the other case is warned about above.
    private mutating func warnAboutUnreachable(_ access: RouteAccess, at path: String, roles: RoleDefinitions) {
        guard let routeRoles = access.roles, roles.isComplete else { return }
        var held: Set<String> = []
        for scopes in roles.table.values { held.formUnion(scopes) }
        let named = access.scopes + access.methodScopes.values.joined()
        guard named.allSatisfy(held.contains) else { return }

        func passable(_ needed: [String]) -> Bool {
            routeRoles.contains { role in roles.table[role].map { Set($0).isSuperset(of: needed) } ?? false }
        }
        let listed = routeRoles.joined(separator: ", ")
        guard passable(access.scopes) else {
            warning(
                KeyPath.join(path, "roles"),
                "none of this route's roles (\(listed)) holds all of its scopes "
                    + "(\(access.scopes.joined(separator: " "))): every request is refused")
            return
        }
        for method in access.methodScopes.keys.sorted() {
            let needed = access.scopes + (access.methodScopes[method] ?? [])
            if !passable(needed) {
                warning(
                    KeyPath.join(path, "method_scopes"),
                    "none of this route's roles (\(listed)) holds all the scopes \(method) needs "
                        + "(\(needed.joined(separator: " "))): every \(method) request is refused")
            }
        }
    }

    /// Why `name` cannot be a role name, or nil. Roles arrive in claims and headers
    /// (`X-User-Role`), where blanks and control characters do not survive.
    static func roleNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "a role name must not be empty" }
        let bad = name.unicodeScalars.contains {
            $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F
        }
        return bad ? "role name \(name.configQuoted) must not contain whitespace or control characters" : nil
    }
}

/// Scope strings as OAuth defines them (RFC 6749 §3.3, `scope-token`): printable ASCII
/// without space, `"` or `\`. Scopes are space-separated in tokens and in the
/// `X-User-Scopes` header, and written inside the quoted `scope="…"` of a 403's
/// `WWW-Authenticate`, so anything else could not be granted or would break the header.
enum ScopeSyntax {
    static func isValid(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 == 0x21 || (0x23...0x5B).contains($0) || (0x5D...0x7E).contains($0) }
    }

    /// Why `text` is not a scope, or nil.
    static func problem(in text: String) -> String? {
        if isValid(text) { return nil }
        if text.isEmpty { return "must not be empty" }
        if text.unicodeScalars.contains(where: \.properties.isWhitespace) {
            return "\(text.configQuoted) contains whitespace: scopes are separated by spaces, so one scope cannot "
                + "contain one (list each scope separately)"
        }
        return "\(text.configQuoted) is not a valid scope: printable ASCII only, without \" or \\ (RFC 6749)"
    }
}
