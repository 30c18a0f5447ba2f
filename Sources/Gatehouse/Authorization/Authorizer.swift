/// The result of authorizing one request on one route.
public enum AuthorizationOutcome: Sendable, Equatable {
    /// `effectiveScopes` are the identity's, as SPEC §4 defines them: what
    /// `X-User-Scopes` carries upstream.
    case allowed(effectiveScopes: [String])
    /// A 403 (SPEC §7). `reason` is `.insufficientScope` or `.roleNotAllowed`;
    /// `requiredScopes` are all the scopes the method needs (not only the missing ones),
    /// as named in `wwwAuthenticate`; `grantedScopes` the identity's effective scopes;
    /// `detail` is for the denial log, never for the client.
    case refused(
        reason: DenialReason, requiredScopes: [String], grantedScopes: [String], detail: String,
        wwwAuthenticate: String)
}

/// SPEC §4 for one route: roles first (one of the route's `roles`, when set), then every
/// scope the method needs among the identity's effective scopes. Built once per config;
/// `authorize` only looks things up and allocates nothing on success beyond what it
/// returns (usually not even that: the effective scopes share the credential's storage).
public struct Authorizer: Sendable {
    public let requirement: RouteRequirement
    public let effectiveScopes: EffectiveScopes

    public init(requirement: RouteRequirement, effectiveScopes: EffectiveScopes) {
        self.requirement = requirement
        self.effectiveScopes = effectiveScopes
    }

    /// `roles` as in `GatewayConfig.roles`. Prefer `forRoutes(of:)`, which compiles the
    /// roles table once for all routes.
    public init(route: RouteConfig, roles: [String: [String]]?) {
        self.init(requirement: RouteRequirement(route: route), effectiveScopes: EffectiveScopes(roles: roles))
    }

    /// One authorizer per route, in `config.routes` order (so `RouteMatch.index` picks
    /// the route's), sharing one compiled roles table.
    public static func forRoutes(of config: GatewayConfig) -> [Authorizer] {
        let effectiveScopes = EffectiveScopes(roles: config.roles)
        return config.routes.map {
            Authorizer(requirement: RouteRequirement(route: $0), effectiveScopes: effectiveScopes)
        }
    }

    public func authorize(identity: Identity, method: String) -> AuthorizationOutcome {
        let needed = requirement.requirement(for: method)
        let grant = effectiveScopes.grant(for: identity)
        // Roles before scopes: when the role is wrong, no scope would help, and saying
        // which role is needed is the more useful answer.
        if let allowedRoles = requirement.roleSet {
            guard let role = identity.role, allowedRoles.contains(role) else {
                return .refused(
                    reason: .roleNotAllowed, requiredScopes: needed.scopes,
                    grantedScopes: EffectiveScopes.scopes(of: identity, under: grant),
                    detail: roleDetail(identity: identity),
                    wwwAuthenticate: needed.wwwAuthenticate)
            }
        }
        for scope in needed.scopes
        where !EffectiveScopes.grants(scope, under: grant, credential: identity.scopes) {
            return .refused(
                reason: .insufficientScope, requiredScopes: needed.scopes,
                grantedScopes: EffectiveScopes.scopes(of: identity, under: grant),
                detail: scopeDetail(needed: needed.scopes, grant: grant, identity: identity, method: method),
                wwwAuthenticate: needed.wwwAuthenticate)
        }
        return .allowed(effectiveScopes: EffectiveScopes.scopes(of: identity, under: grant))
    }

    // MARK: Details (refusals only, so the cost is no concern)

    /// `route admin-api needs role admin or developer; the caller's role is viewer`.
    private func roleDetail(identity: Identity) -> String {
        let listed = Self.list(requirement.roles ?? [], conjunction: "or")
        let caller = identity.role.map { "the caller's role is \($0)" } ?? "the caller has no role"
        return "route \(requirement.routeName) needs role \(listed); \(caller)"
    }

    /// `route github-mcp needs mcp:write for POST`, naming the missing scopes, and why
    /// they are missing when the role (not the credential) is the cause.
    private func scopeDetail(
        needed: [String], grant: EffectiveScopes.Grant, identity: Identity, method: String
    ) -> String {
        let missing = needed.filter { !EffectiveScopes.grants($0, under: grant, credential: identity.scopes) }
        var detail = "route \(requirement.routeName) needs \(Self.list(missing, conjunction: "and")) for \(method)"
        switch grant {
        case .nothing:
            detail += "; role \(identity.role ?? "") is not in [roles], so it holds no scopes"
        case .intersection(let role):
            let beyondRole = missing.filter { identity.scopes.contains($0) && !role.set.contains($0) }
            if !beyondRole.isEmpty {
                detail +=
                    "; the credential claims \(Self.list(beyondRole, conjunction: "and")) but role "
                    + "\(identity.role ?? "") does not hold it"
            }
        case .credential, .role:
            break
        }
        return detail
    }

    /// `a`, `a or b`, `a, b or c`.
    private static func list(_ items: [String], conjunction: String) -> String {
        guard let last = items.last else { return "" }
        guard items.count > 1 else { return last }
        return items.dropLast().joined(separator: ", ") + " \(conjunction) " + last
    }
}
