import Testing

@testable import Gatehouse

// SPEC §4: effective scopes, route requirements and the 403s they produce.

/// The `[roles]` table of SPEC §2.
private let specRoles: [String: [String]] = [
    "admin": ["mcp:read", "mcp:write", "logs:read", "admin:users", "admin:organization"],
    "developer": ["mcp:read", "logs:read"],
    "viewer": ["mcp:read"],
]

private let upstream = UpstreamURL(scheme: "http", host: "127.0.0.1", port: 3001, basePath: "")

private func route(
    _ name: String, scopes: [String] = [], roles: [String]? = nil, methodScopes: [String: [String]] = [:]
) -> RouteConfig {
    RouteConfig(
        name: name, path: "/" + name, upstream: upstream, scopes: scopes, roles: roles, methodScopes: methodScopes)
}

/// Routes with the kinds of requirement SPEC §2 allows.
private let routes: [String: RouteConfig] = [
    "github-mcp": route(
        "github-mcp", scopes: ["mcp:read"], methodScopes: ["POST": ["mcp:write"], "DELETE": ["mcp:write"]]),
    "logs": route("logs", scopes: ["logs:read"]),
    "admin-users": route("admin-users", scopes: ["admin:users"]),
    "team": route("team", roles: ["admin", "developer"]),
    "team-logs": route("team-logs", scopes: ["logs:read"], roles: ["developer", "viewer"]),
    "open": route("open"),
]

private func authorize(
    _ identity: Identity, on name: String, _ method: String = "GET", roles: [String: [String]]? = specRoles
) -> AuthorizationOutcome {
    guard let route = routes[name] else {
        Issue.record("no route \(name)")
        return .allowed(effectiveScopes: [])
    }
    return Authorizer(route: route, roles: roles).authorize(identity: identity, method: method)
}

/// A token carrying a role and, when `scopes` is given, a scope claim.
private func token(role: String?, scopes: [String]? = nil) -> Identity {
    Identity(method: .jwt, subject: "user-1", role: role, scopes: scopes ?? [], hasScopeClaim: scopes != nil)
}

/// The parts of a refusal tests compare.
private struct Refusal: Equatable, CustomStringConvertible {
    var reason: DenialReason
    var required: [String]
    var granted: [String]
    var detail: String
    var wwwAuthenticate: String

    var description: String { "\(reason.rawValue) \(required) \(granted) \(detail) | \(wwwAuthenticate)" }
}

private func refusal(_ outcome: AuthorizationOutcome, sourceLocation: SourceLocation = #_sourceLocation) -> Refusal? {
    guard case .refused(let reason, let required, let granted, let detail, let wwwAuthenticate) = outcome else {
        Issue.record("expected a refusal, got \(outcome)", sourceLocation: sourceLocation)
        return nil
    }
    return Refusal(
        reason: reason, required: required, granted: granted, detail: detail, wwwAuthenticate: wwwAuthenticate)
}

private func effective(_ outcome: AuthorizationOutcome, sourceLocation: SourceLocation = #_sourceLocation) -> [String]?
{
    guard case .allowed(let scopes) = outcome else {
        Issue.record("expected allowed, got \(outcome)", sourceLocation: sourceLocation)
        return nil
    }
    return scopes
}

@Suite struct AuthorizationMatrixTests {
    /// Role-only tokens (no scope claim), so each role holds exactly its `[roles]` scopes.
    /// nil = allowed, else the refusal's reason.
    @Test(
        arguments: [
            // github-mcp: mcp:read, + mcp:write for POST and DELETE.
            ("admin", "github-mcp", "GET", nil), ("developer", "github-mcp", "GET", nil),
            ("viewer", "github-mcp", "GET", nil), ("admin", "github-mcp", "HEAD", nil),
            ("viewer", "github-mcp", "HEAD", nil), ("admin", "github-mcp", "POST", nil),
            ("developer", "github-mcp", "POST", DenialReason.insufficientScope),
            ("viewer", "github-mcp", "POST", .insufficientScope), ("admin", "github-mcp", "DELETE", nil),
            ("developer", "github-mcp", "DELETE", .insufficientScope),
            ("viewer", "github-mcp", "DELETE", .insufficientScope), ("viewer", "github-mcp", "PUT", nil),
            // logs: logs:read.
            ("admin", "logs", "GET", nil), ("developer", "logs", "GET", nil),
            ("viewer", "logs", "GET", .insufficientScope),
            // admin-users: admin:users.
            ("admin", "admin-users", "GET", nil), ("developer", "admin-users", "GET", .insufficientScope),
            ("viewer", "admin-users", "POST", .insufficientScope),
            // team: roles admin or developer, no scopes.
            ("admin", "team", "GET", nil), ("developer", "team", "DELETE", nil),
            ("viewer", "team", "GET", .roleNotAllowed),
            // team-logs: roles developer or viewer, and logs:read.
            ("admin", "team-logs", "GET", .roleNotAllowed), ("developer", "team-logs", "GET", nil),
            ("viewer", "team-logs", "GET", .insufficientScope),
            // open: anything authenticated.
            ("admin", "open", "GET", nil), ("developer", "open", "POST", nil), ("viewer", "open", "DELETE", nil),
        ] as [(String, String, String, DenialReason?)])
    func roleByRouteByMethod(role: String, route: String, method: String, expected: DenialReason?) {
        let outcome = authorize(token(role: role), on: route, method)
        switch (outcome, expected) {
        case (.allowed(let scopes), nil):
            #expect(scopes == specRoles[role])
        case (.refused(let reason, _, let granted, _, _), let expected?):
            #expect(reason == expected)
            #expect(granted == specRoles[role])
        default:
            Issue.record("\(role) \(method) \(route): expected \(expected?.rawValue ?? "allowed"), got \(outcome)")
        }
    }

    @Test func sameMatrixWithFullScopeClaims() {
        // A token claiming every scope is still held to its role's (least privilege).
        let everything = specRoles["admin"] ?? []
        for role in ["developer", "viewer"] {
            let identity = token(role: role, scopes: everything)
            #expect(effective(authorize(identity, on: "github-mcp")) == specRoles[role])
            #expect(refusal(authorize(identity, on: "github-mcp", "POST"))?.reason == .insufficientScope)
            #expect(refusal(authorize(identity, on: "admin-users"))?.reason == .insufficientScope)
        }
        #expect(effective(authorize(token(role: "admin", scopes: everything), on: "admin-users")) == everything)
    }
}

@Suite struct EffectiveScopesTests {
    let scopes = EffectiveScopes(roles: specRoles)

    @Test func viewerClaimingAdminScopeIsRefusedOnAdminRoute() {
        let identity = token(role: "viewer", scopes: ["mcp:read", "admin:users"])
        #expect(scopes.scopes(of: identity) == ["mcp:read"])
        #expect(!scopes.grants("admin:users", to: identity))
        #expect(
            refusal(authorize(identity, on: "admin-users"))
                == Refusal(
                    reason: .insufficientScope, required: ["admin:users"], granted: ["mcp:read"],
                    detail:
                        "route admin-users needs admin:users for GET; the credential claims admin:users but "
                        + "role viewer does not hold it",
                    wwwAuthenticate: #"Bearer error="insufficient_scope", scope="admin:users""#))
    }

    @Test func intersectionKeepsTheCredentialsOrder() {
        let identity = token(role: "admin", scopes: ["logs:read", "unknown:x", "mcp:read"])
        #expect(scopes.scopes(of: identity) == ["logs:read", "mcp:read"])
    }

    @Test func roleOnlyTokenGetsTheRolesScopesInTheRolesOrder() {
        let identity = token(role: "developer")
        #expect(scopes.scopes(of: identity) == ["mcp:read", "logs:read"])
        #expect(scopes.grants("logs:read", to: identity))
        #expect(!scopes.grants("mcp:write", to: identity))
    }

    @Test func anEmptyScopeClaimIsStillAClaim() {
        // `scope: ""` states "no scopes"; it does not fall back to the role's.
        let identity = token(role: "admin", scopes: [])
        #expect(scopes.scopes(of: identity).isEmpty)
    }

    @Test func unknownRoleHoldsNoScopes() {
        for identity in [token(role: "intern", scopes: ["mcp:read"]), token(role: "intern")] {
            #expect(scopes.scopes(of: identity).isEmpty)
            #expect(!scopes.grants("mcp:read", to: identity))
            let refused = refusal(authorize(identity, on: "github-mcp"))
            #expect(refused?.granted == [])
            #expect(
                refused?.detail
                    == "route github-mcp needs mcp:read for GET; role intern is not in [roles], so it holds "
                    + "no scopes")
        }
        // Role names are exact: claims are not case-folded.
        #expect(scopes.scopes(of: token(role: "Admin")).isEmpty)
    }

    @Test func identityWithoutRoleKeepsItsScopes() {
        let identity = token(role: nil, scopes: ["admin:users", "custom:x"])
        #expect(scopes.scopes(of: identity) == ["admin:users", "custom:x"])
        #expect(effective(authorize(identity, on: "admin-users")) == ["admin:users", "custom:x"])
    }

    @Test func withoutRolesTableTheCredentialsScopesAreUnchanged() {
        let none = EffectiveScopes(roles: nil)
        #expect(!none.hasRolesTable)
        let viewer = token(role: "viewer", scopes: ["admin:users"])
        #expect(none.scopes(of: viewer) == ["admin:users"])
        #expect(effective(authorize(viewer, on: "admin-users", roles: nil)) == ["admin:users"])
        // A role-only token has nothing to take scopes from.
        #expect(none.scopes(of: token(role: "admin")).isEmpty)
        #expect(refusal(authorize(token(role: "admin"), on: "github-mcp", roles: nil))?.reason == .insufficientScope)
        // Routes' `roles` still apply: the role claim is compared as is.
        #expect(effective(authorize(token(role: "developer"), on: "team", roles: nil)) == [])
    }

    @Test func anEmptyRolesTableStillIntersects() {
        let empty = EffectiveScopes(roles: [:])
        #expect(empty.hasRolesTable)
        #expect(empty.scopes(of: token(role: "admin", scopes: ["mcp:read"])).isEmpty)
        #expect(empty.scopes(of: token(role: nil, scopes: ["mcp:read"])) == ["mcp:read"])
    }

    @Test func noDuplicates() {
        let none = EffectiveScopes(roles: nil)
        #expect(none.scopes(of: token(role: nil, scopes: ["a", "b", "a", "c", "b"])) == ["a", "b", "c"])
        let many = (0..<40).map { "s\($0 % 20)" }
        #expect(none.scopes(of: token(role: nil, scopes: many)) == (0..<20).map { "s\($0)" })
        let admin = token(role: "admin", scopes: ["mcp:read", "mcp:read", "logs:read"])
        #expect(scopes.scopes(of: admin) == ["mcp:read", "logs:read"])
        let repeated = EffectiveScopes(roles: ["r": ["x", "y", "x"]])
        #expect(repeated.scopes(of: token(role: "r")) == ["x", "y"])
    }

    @Test func nothingFilteredSharesTheCredentialsStorage() {
        // The hot path must not copy scopes it does not change.
        let identity = token(role: "admin", scopes: ["mcp:read", "logs:read"])
        let result = scopes.scopes(of: identity)
        let same = result.withUnsafeBufferPointer { a in
            identity.scopes.withUnsafeBufferPointer { b in a.baseAddress == b.baseAddress }
        }
        #expect(same)
    }

    @Test func apiKeysFollowTheSameRules() {
        let key = Identity(
            method: .apiKey, subject: "svc", role: "viewer", scopes: ["mcp:read", "mcp:write"], hasScopeClaim: true)
        #expect(scopes.scopes(of: key) == ["mcp:read"])
    }
}

@Suite struct RouteRequirementTests {
    @Test func methodScopesAddToTheRouteScopes() {
        let requirement = RouteRequirement(route: routes["github-mcp"] ?? route("x"))
        #expect(requirement.requirement(for: "GET").scopes == ["mcp:read"])
        #expect(requirement.requirement(for: "POST").scopes == ["mcp:read", "mcp:write"])
        #expect(requirement.requirement(for: "DELETE").scopes == ["mcp:read", "mcp:write"])
        #expect(requirement.requirement(for: "PATCH") == requirement.base)
    }

    @Test func methodsAreMatchedWithoutCase() {
        // HTTP methods are case-sensitive, but an upstream that folds them must not see
        // `delete` skip DELETE's scopes.
        let requirement = RouteRequirement(route: routes["github-mcp"] ?? route("x"))
        #expect(requirement.requirement(for: "delete").scopes == ["mcp:read", "mcp:write"])
        #expect(requirement.requirement(for: "Post").scopes == ["mcp:read", "mcp:write"])
        #expect(requirement.requirement(for: "POSTX").scopes == ["mcp:read"])
        #expect(requirement.requirement(for: "POS").scopes == ["mcp:read"])
        #expect(refusal(authorize(token(role: "viewer"), on: "github-mcp", "delete"))?.reason == .insufficientScope)
    }

    @Test func headNeedsWhatGetNeeds() {
        let get = RouteRequirement(route: route("r", scopes: ["a"], methodScopes: ["GET": ["b"]]))
        #expect(get.requirement(for: "HEAD").scopes == ["a", "b"])
        let own = RouteRequirement(route: route("r", scopes: ["a"], methodScopes: ["GET": ["b"], "HEAD": ["c"]]))
        #expect(own.requirement(for: "HEAD").scopes == ["a", "c"])
    }

    @Test func repeatedScopesAreRequiredOnce() {
        let requirement = RouteRequirement(route: route("r", scopes: ["a", "a"], methodScopes: ["post": ["a", "b"]]))
        #expect(requirement.base.scopes == ["a"])
        #expect(requirement.requirement(for: "POST").scopes == ["a", "b"])
    }

    @Test func wwwAuthenticateNamesEveryScopeTheMethodNeeds() {
        let requirement = RouteRequirement(route: routes["github-mcp"] ?? route("x"))
        #expect(requirement.base.wwwAuthenticate == #"Bearer error="insufficient_scope", scope="mcp:read""#)
        #expect(
            requirement.requirement(for: "POST").wwwAuthenticate
                == #"Bearer error="insufficient_scope", scope="mcp:read mcp:write""#)
        // Nothing required (a roles-only route): no empty `scope` attribute.
        #expect(
            RouteRequirement(route: route("t", roles: ["admin"])).base.wwwAuthenticate
                == #"Bearer error="insufficient_scope""#)
        // Routes built in code are not validated: the header must still be one header.
        #expect(
            MethodRequirement(scopes: ["a\"b", "c\\d", "e\r\nX: y"]).wwwAuthenticate
                == #"Bearer error="insufficient_scope", scope="a\"b c\\d eX: y""#)
    }

    @Test func unrestricted() {
        #expect(RouteRequirement(route: route("open")).isUnrestricted)
        #expect(RouteRequirement(route: route("r", methodScopes: ["POST": []])).isUnrestricted)
        #expect(!RouteRequirement(route: route("r", scopes: ["a"])).isUnrestricted)
        #expect(!RouteRequirement(route: route("r", roles: ["a"])).isUnrestricted)
        #expect(!RouteRequirement(route: route("r", methodScopes: ["POST": ["a"]])).isUnrestricted)
    }
}

@Suite struct AuthorizerTests {
    @Test func insufficientScopeRefusal() {
        #expect(
            refusal(authorize(token(role: "developer"), on: "github-mcp", "POST"))
                == Refusal(
                    reason: .insufficientScope, required: ["mcp:read", "mcp:write"],
                    granted: ["mcp:read", "logs:read"],
                    detail: "route github-mcp needs mcp:write for POST",
                    wwwAuthenticate: #"Bearer error="insufficient_scope", scope="mcp:read mcp:write""#))
        #expect(
            refusal(authorize(token(role: nil, scopes: []), on: "github-mcp", "DELETE"))?.detail
                == "route github-mcp needs mcp:read and mcp:write for DELETE")
    }

    @Test func rolesAreAnyOf() {
        #expect(effective(authorize(token(role: "admin"), on: "team")) == specRoles["admin"])
        #expect(effective(authorize(token(role: "developer"), on: "team")) == specRoles["developer"])
        #expect(
            refusal(authorize(token(role: "viewer"), on: "team"))
                == Refusal(
                    reason: .roleNotAllowed, required: [], granted: ["mcp:read"],
                    detail: "route team needs role admin or developer; the caller's role is viewer",
                    wwwAuthenticate: #"Bearer error="insufficient_scope""#))
        let roleless = refusal(authorize(token(role: nil, scopes: ["mcp:read"]), on: "team"))
        #expect(roleless?.reason == .roleNotAllowed)
        #expect(roleless?.detail == "route team needs role admin or developer; the caller has no role")
        let three = Authorizer(route: route("t", roles: ["a", "b", "c"]), roles: nil)
        #expect(
            refusal(three.authorize(identity: token(role: "d"), method: "GET"))?.detail
                == "route t needs role a, b or c; the caller's role is d")
    }

    @Test func roleIsCheckedBeforeScopes() {
        // Wrong role and missing scope: the role is the answer, with the scopes still named.
        #expect(
            refusal(authorize(token(role: "admin"), on: "team-logs"))
                == Refusal(
                    reason: .roleNotAllowed, required: ["logs:read"], granted: specRoles["admin"] ?? [],
                    detail: "route team-logs needs role developer or viewer; the caller's role is admin",
                    wwwAuthenticate: #"Bearer error="insufficient_scope", scope="logs:read""#))
    }

    @Test func forRoutesFollowsConfigOrder() {
        let config = GatewayConfig(
            roles: specRoles, routes: [routes["open"], routes["admin-users"]].compactMap { $0 })
        let authorizers = Authorizer.forRoutes(of: config)
        #expect(authorizers.map(\.requirement.routeName) == ["open", "admin-users"])
        #expect(authorizers.allSatisfy { $0.effectiveScopes.hasRolesTable })
        #expect(effective(authorizers[0].authorize(identity: token(role: "viewer"), method: "GET")) == ["mcp:read"])
        #expect(
            refusal(authorizers[1].authorize(identity: token(role: "viewer"), method: "GET"))?.reason
                == .insufficientScope)
    }
}
