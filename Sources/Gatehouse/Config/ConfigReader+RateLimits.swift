import TOMLKit

// `[rate_limits]` and the routes' `rate_limit` (SPEC §2, §5). Absent keys keep the
// defaults of `RateLimitSettings` (limits on; see there why). Every policy a role or a
// route names must exist, so that a typo fails `gatehouse check` instead of silently
// giving callers the default budget.
extension ConfigReader {
    static let rateLimitKeys = ["by", "default", "policies", "roles", "auth_failures"]
    /// SPEC §10: buckets shared through Redis arrive with scale-out.
    static let pendingRateLimitKeys: [String: PendingFeature] = ["backend": .scaleOut]
    static let rateLimitPolicyKeys = ["requests", "per", "burst"]
    static let authFailureKeys = ["max", "per", "block"]
    /// Far beyond any useful limit, and small enough that token counts stay exact in a Double.
    static let maximumRateLimitTokens = 1_000_000_000
    static let maximumAuthFailures = 1_000_000
    /// Policy names travel in the RateLimit headers inside a quoted string; keeping them
    /// to these characters means they never need escaping there (or in logs and metrics).
    static let policyNameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

    /// The policy names written in `[rate_limits.policies]`, valid or not: a reference to
    /// a refused policy is not reported a second time.
    struct PolicyNames {
        var written: Set<String> = []
        var valid: Set<String> = [RateLimitSettings.defaultPolicyName]
        /// Policies referenced by a role or a route, for the "unused policy" warning.
        var used: Set<String> = []
    }

    /// Reads `[rate_limits]`, then every route's `rate_limit` into `routes` (matched by
    /// name, which the route reader has made unique): policies must be known first, and
    /// routes are read elsewhere.
    mutating func readRateLimits(_ root: TOMLTable, routes: inout [RouteConfig]) -> RateLimitSettings {
        var settings = RateLimitSettings()
        var names = PolicyNames()
        let path = "rate_limits"
        let section = root["rate_limits"] == nil ? nil : table(root, path, at: "")
        if let section {
            checkKeys(section, at: path, known: Self.rateLimitKeys, pending: Self.pendingRateLimitKeys)
            let allowed = RateLimitSettings.KeyBy.allCases.map(\.rawValue)
            if let text = choice(section, "by", at: path, allowed: allowed),
                let by = RateLimitSettings.KeyBy(rawValue: text)
            {
                settings.by = by
            }
            if section["default"] != nil, let table = table(section, "default", at: path),
                let policy = readRateLimitPolicy(
                    table, named: RateLimitSettings.defaultPolicyName, at: KeyPath.join(path, "default"))
            {
                settings.defaultPolicy = policy
            }
            if section["policies"] != nil, let table = table(section, "policies", at: path) {
                settings.policies = readRateLimitPolicies(table, at: KeyPath.join(path, "policies"), names: &names)
            }
            if section["roles"] != nil, let table = table(section, "roles", at: path) {
                settings.roles = readRateLimitRoles(
                    table, at: KeyPath.join(path, "roles"), names: &names, definedRoles: root["roles"]?.table?.keys)
            }
            if section["auth_failures"] != nil, let table = table(section, "auth_failures", at: path) {
                settings.authFailures = readAuthFailures(table, at: KeyPath.join(path, "auth_failures"))
            }
        }
        readRouteRateLimits(root, names: &names, routes: &routes)
        for name in names.valid.subtracting(names.used).sorted() where name != RateLimitSettings.defaultPolicyName {
            warning(
                KeyPath.join("rate_limits.policies", name),
                "policy \(name.configQuoted) is not used: no route's rate_limit and no [rate_limits.roles] entry "
                    + "names it")
        }
        return settings
    }

    /// `{ requests = 60, per = "1m", burst = 10 }`, or nil when refused (reported).
    private mutating func readRateLimitPolicy(_ table: TOMLTable, named name: String, at path: String)
        -> RateLimitPolicy?
    {
        checkKeys(table, at: path, known: Self.rateLimitPolicyKeys)
        let range = 1...Self.maximumRateLimitTokens
        if table["requests"] == nil {
            missing("requests", in: path, "missing; write how many requests each `per` allows, e.g. requests = 60")
        }
        if table["per"] == nil {
            missing("per", in: path, "missing; write the window as a duration, e.g. per = \"1m\"")
        }
        let requests = integer(table, "requests", at: path, in: range)
        var per = duration(table, "per", at: path, atLeast: .seconds(1))
        if let window = per, window.components.attoseconds != 0 {
            // RateLimit-Policy states the window as `w=<seconds>`, an integer.
            error(
                KeyPath.join(path, "per"),
                "must be a whole number of seconds, got \(ConfigDuration.format(window).configQuoted): "
                    + "RateLimit-Policy states it as w=<seconds>")
            per = nil
        }
        let burst = table["burst"] == nil ? requests : integer(table, "burst", at: path, in: range)
        guard let requests, let per, let burst else { return nil }
        return RateLimitPolicy(name: name, requests: requests, per: per, burst: burst)
    }

    private mutating func readRateLimitPolicies(
        _ table: TOMLTable, at path: String, names: inout PolicyNames
    ) -> [String: RateLimitPolicy] {
        var policies: [String: RateLimitPolicy] = [:]
        for name in table.keys.sorted() {
            let keyPath = KeyPath.join(path, name)
            names.written.insert(name)
            var ok = true
            if name == RateLimitSettings.defaultPolicyName {
                error(keyPath, "\"default\" is the policy of rate_limits.default; set it there")
                ok = false
            } else if let problem = Self.policyNameProblem(name) {
                error(keyPath, problem)
                ok = false
            }
            guard let entry = table[name]?.table else {
                let got = table[name].map(Self.describe) ?? "nothing"
                error(keyPath, "expected a policy table like { requests = 60, per = \"1m\" }, got \(got)")
                continue
            }
            guard let policy = readRateLimitPolicy(entry, named: name, at: keyPath), ok else { continue }
            policies[name] = policy
            names.valid.insert(name)
        }
        return policies
    }

    /// `role = "policy"`. `definedRoles` are the keys of `[roles]` when that table exists:
    /// a role it does not define is warned about, as it is most likely misspelt.
    private mutating func readRateLimitRoles(
        _ table: TOMLTable, at path: String, names: inout PolicyNames, definedRoles: [String]?
    ) -> [String: String] {
        var roles: [String: String] = [:]
        for role in table.keys.sorted() {
            let keyPath = KeyPath.join(path, role)
            guard !role.isEmpty else {
                error(keyPath, "a role name must not be empty")
                continue
            }
            guard let policy = policyReference(table, role, at: path, names: &names) else { continue }
            if let definedRoles, !definedRoles.contains(role) {
                let hint = DidYouMean.suggestion(for: role, among: definedRoles.sorted())
                    .map { "; did you mean \($0.configQuoted)?" }
                warning(keyPath, "role \(role.configQuoted) is not defined in [roles]" + (hint ?? ""))
            }
            roles[role] = policy
        }
        return roles
    }

    private mutating func readAuthFailures(_ table: TOMLTable, at path: String) -> AuthFailureSettings {
        var settings = AuthFailureSettings()
        checkKeys(table, at: path, known: Self.authFailureKeys)
        if let max = integer(table, "max", at: path, in: 1...Self.maximumAuthFailures) { settings.max = max }
        if let per = duration(table, "per", at: path, atLeast: .seconds(1)) { settings.per = per }
        if let block = duration(table, "block", at: path, atLeast: .seconds(1)) { settings.block = block }
        return settings
    }

    /// Each route's `rate_limit`: the name of an existing policy, on a route that
    /// authenticates (there is no identity to count on an `auth = "none"` route).
    private mutating func readRouteRateLimits(_ root: TOMLTable, names: inout PolicyNames, routes: inout [RouteConfig])
    {
        guard let array = root["routes"]?.array else { return }  // reported by readRoutes
        for (index, element) in array.enumerated() {
            let path = "routes[\(index)]"
            guard let table = element.table, table["rate_limit"] != nil else { continue }
            if table["auth"]?.string == AuthMode.none.rawValue {
                error(
                    KeyPath.join(path, "rate_limit"),
                    "cannot be used with auth = \"none\": nothing authenticates the caller, so there is no "
                        + "identity to count against; remove it, or set auth = \"required\"")
                continue
            }
            guard let policy = policyReference(table, "rate_limit", at: path, names: &names) else { continue }
            if let name = table["name"]?.string, let route = routes.firstIndex(where: { $0.name == name }) {
                routes[route].rateLimit = policy
            }
        }
    }

    /// The string at `key` when it names a known policy; an unknown one is reported with
    /// a hint, except a policy that was written but refused (reported already).
    private mutating func policyReference(
        _ table: TOMLTable, _ key: String, at path: String, names: inout PolicyNames
    ) -> String? {
        guard let name = string(table, key, at: path) else { return nil }
        names.used.insert(name)
        if names.valid.contains(name) { return name }
        if !names.written.contains(name) {
            let candidates = names.valid.sorted()
            let hint = DidYouMean.suggestion(for: name, among: candidates).map { "; did you mean \($0.configQuoted)?" }
            error(
                KeyPath.join(path, key),
                "unknown rate-limit policy \(name.configQuoted): use \"default\" or a policy defined in "
                    + "[rate_limits.policies]" + (hint ?? ""))
        }
        return nil
    }

    /// Why `name` cannot name a policy, or nil.
    static func policyNameProblem(_ name: String) -> String? {
        guard name.isEmpty || name.count > 64 || !name.allSatisfy(policyNameCharacters.contains) else { return nil }
        return "policy name \(name.configQuoted) must be 1–64 letters, digits, \"-\" or \"_\" "
            + "(it is sent in the RateLimit-Policy header)"
    }
}
