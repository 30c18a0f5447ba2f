/// What one route demands of a caller (SPEC §4), compiled once per config so that a
/// request only looks things up: role set, scopes per method and the 403's
/// `WWW-Authenticate` value per method are all built here.
public struct RouteRequirement: Sendable {
    public let routeName: String
    /// The caller's role must be one of these; nil = any role, or none.
    public let roles: [String]?
    let roleSet: Set<String>?
    /// For methods without `method_scopes` of their own: the route's `scopes`.
    public let base: MethodRequirement
    /// Upper-case method → `scopes` + `method_scopes[method]`.
    let byMethod: [String: MethodRequirement]
    /// True when any authenticated caller passes, on every method: the gate can skip
    /// authorization altogether. Stored, as the gate may ask on every request.
    public let isUnrestricted: Bool

    public init(route: RouteConfig) {
        routeName = route.name
        roles = route.roles
        roleSet = route.roles.map(Set.init)
        let scopes = EffectiveScopes.distinct(route.scopes)
        base = MethodRequirement(scopes: scopes)
        var byMethod: [String: MethodRequirement] = [:]
        for (method, extra) in route.methodScopes {
            byMethod[method.uppercased()] = MethodRequirement(scopes: EffectiveScopes.distinct(scopes + extra))
        }
        // The router lets HEAD through wherever GET is allowed, and upstreams answer it
        // with their GET handler, so HEAD must not be a cheaper way to reach GET.
        if byMethod["HEAD"] == nil, let get = byMethod["GET"] { byMethod["HEAD"] = get }
        self.byMethod = byMethod
        isUnrestricted = route.roles == nil && scopes.isEmpty && byMethod.values.allSatisfy(\.scopes.isEmpty)
    }

    /// The scopes `method` needs. Methods are case-sensitive in HTTP, but some upstreams
    /// fold them, so `delete` must not escape the scopes of `DELETE`: an exact lookup
    /// first, then an ASCII case-insensitive one (no allocation either way).
    public func requirement(for method: String) -> MethodRequirement {
        guard !byMethod.isEmpty else { return base }
        if let exact = byMethod[method] { return exact }
        for (key, found) in byMethod where Self.equalIgnoringASCIICase(key, method) { return found }
        return base
    }

    static func equalIgnoringASCIICase(_ upper: String, _ other: String) -> Bool {
        var left = upper.utf8.makeIterator()
        var right = other.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return true
            case (let a?, let b?):
                let folded = (0x61...0x7A).contains(b) ? b - 0x20 : b
                if a != folded { return false }
            default: return false
            }
        }
    }
}

/// The scopes one method of a route needs, all of them, and the `WWW-Authenticate`
/// value a 403 for it carries (SPEC §7).
public struct MethodRequirement: Sendable, Equatable {
    public let scopes: [String]
    /// `Bearer error="insufficient_scope", scope="mcp:read mcp:write"`; without the
    /// `scope` attribute when nothing is required (a roles-only refusal), since an empty
    /// one would read as "no scope suffices".
    public let wwwAuthenticate: String

    public init(scopes: [String]) {
        self.scopes = scopes
        var value = #"Bearer error="insufficient_scope""#
        if !scopes.isEmpty {
            value += #", scope=""# + Self.quotedStringContent(scopes.joined(separator: " ")) + #"""#
        }
        wwwAuthenticate = value
    }

    /// `text` made safe inside a quoted-string: `"` and `\` escaped, control characters
    /// dropped. The loader admits only RFC 6749 scope characters, which need none of
    /// this; routes built in code are not checked, and must still not split a header.
    static func quotedStringContent(_ text: String) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"", "\\":
                out.unicodeScalars.append("\\")
                out.unicodeScalars.append(scalar)
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
