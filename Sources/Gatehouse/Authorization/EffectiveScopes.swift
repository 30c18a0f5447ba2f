/// The scopes an identity may use (SPEC §4), from a `[roles]` table compiled once per
/// config: the credential's scopes, narrowed to its role's when a roles table exists
/// (least privilege: a token cannot claim more than its role holds).
///
/// | roles table | identity's role        | effective scopes                           |
/// |-------------|------------------------|--------------------------------------------|
/// | none        | any                    | the credential's                           |
/// | present     | none                   | the credential's                           |
/// | present     | not in the table       | none                                       |
/// | present     | in it, scope claim     | the credential's ∩ the role's              |
/// | present     | in it, no scope claim  | the role's                                 |
public struct EffectiveScopes: Sendable {
    /// A role's scopes as configured (the order `X-User-Scopes` shows) and as a set.
    struct Role: Sendable {
        let scopes: [String]
        let set: Set<String>
    }

    /// How an identity's scopes are decided, resolved once per request so that checking
    /// several required scopes hashes the role name once.
    enum Grant {
        case credential
        case intersection(Role)
        case role(Role)
        case nothing
    }

    /// nil = no `[roles]` table.
    private let roles: [String: Role]?

    /// `roles` as in `GatewayConfig.roles`: nil when the config has no `[roles]` table.
    public init(roles: [String: [String]]?) {
        self.roles = roles.map { table in
            table.mapValues { scopes in Role(scopes: Self.distinct(scopes), set: Set(scopes)) }
        }
    }

    /// Whether a `[roles]` table was configured.
    public var hasRolesTable: Bool { roles != nil }

    /// The identity's effective scopes: in the credential's order, or the role's when
    /// they come from the role; never a scope twice. Shares the identity's or the
    /// role's storage whenever nothing is filtered out, so it usually allocates nothing.
    public func scopes(of identity: Identity) -> [String] {
        Self.scopes(of: identity, under: grant(for: identity))
    }

    static func scopes(of identity: Identity, under grant: Grant) -> [String] {
        switch grant {
        case .credential: return Self.distinct(identity.scopes)
        case .role(let role): return role.scopes
        case .nothing: return []
        case .intersection(let role):
            let credential = identity.scopes
            if credential.allSatisfy(role.set.contains) { return Self.distinct(credential) }
            return Self.distinct(credential.filter(role.set.contains))
        }
    }

    /// Whether the identity's effective scopes include `scope`, without building them.
    public func grants(_ scope: String, to identity: Identity) -> Bool {
        Self.grants(scope, under: grant(for: identity), credential: identity.scopes)
    }

    func grant(for identity: Identity) -> Grant {
        guard let roles, let name = identity.role else { return .credential }
        guard let role = roles[name] else { return .nothing }
        return identity.hasScopeClaim ? .intersection(role) : .role(role)
    }

    static func grants(_ scope: String, under grant: Grant, credential: [String]) -> Bool {
        switch grant {
        case .credential: return credential.contains(scope)
        case .role(let role): return role.set.contains(scope)
        case .intersection(let role): return role.set.contains(scope) && credential.contains(scope)
        case .nothing: return false
        }
    }

    /// `scopes` without repeats, first occurrence kept. Returned as is (no copy) when it
    /// has none, the normal case; the quadratic scan stays below a set's hashing cost for
    /// the handful of scopes a credential carries, and a set takes over above that.
    static func distinct(_ scopes: [String]) -> [String] {
        guard scopes.count > 1 else { return scopes }
        if scopes.count <= 16 {
            var hasRepeat = false
            for index in 1..<scopes.count where scopes[..<index].contains(scopes[index]) {
                hasRepeat = true
                break
            }
            if !hasRepeat { return scopes }
        }
        var seen: Set<String> = []
        seen.reserveCapacity(scopes.count)
        let result = scopes.filter { seen.insert($0).inserted }
        return result.count == scopes.count ? scopes : result
    }
}
