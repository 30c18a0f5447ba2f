import TOMLKit

/// Turns `proxy.conf` into a validated `GatewayConfig` (SPEC §2), reporting every problem
/// at once. `serve`, `check` and SIGHUP reloads all go through here, so they agree on
/// what a valid config is.
public enum ConfigLoader {
    /// Loads the file at `path`; relative paths inside it are resolved against its folder.
    public static func load(path: String) throws(ConfigErrors) -> ConfigLoadResult {
        let text: String
        switch ConfigPaths.readText(path) {
        case .success(let contents):
            text = contents
        case .failure(let reason):
            throw ConfigErrors(issues: [
                ConfigIssue(severity: .error, keyPath: "", line: nil, message: reason.message, sourcePath: path)
            ])
        }
        let absolute = ConfigPaths.resolve(path, against: ConfigPaths.currentDirectory())
        return try load(text: text, sourcePath: path, baseDirectory: ConfigPaths.directory(of: absolute))
    }

    /// Loads config text. `sourcePath` is only used to name the file in messages and in
    /// `GatewayConfig.sourcePath`; relative paths resolve against `baseDirectory`.
    public static func load(
        text: String, sourcePath: String?, baseDirectory: String
    ) throws(ConfigErrors) -> ConfigLoadResult {
        try load(text: text, sourcePath: sourcePath, baseDirectory: baseDirectory, environment: nil)
    }

    /// As above, with `upstream_headers` `env` values looked up in `environment` instead
    /// of the process environment (nil): tests must not mutate process-global state.
    static func load(
        text: String, sourcePath: String?, baseDirectory: String, environment: [String: String]?
    ) throws(ConfigErrors) -> ConfigLoadResult {
        let cwd = ConfigPaths.currentDirectory()
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let parseError as TOMLParseError {
            let position = parseError.source.begin
            throw ConfigErrors(issues: [
                ConfigIssue(
                    severity: .error, keyPath: "", line: position.line,
                    message: "invalid TOML: \(parseError.description) (column \(position.column))",
                    sourcePath: sourcePath)
            ])
        } catch {
            throw ConfigErrors(issues: [
                ConfigIssue(
                    severity: .error, keyPath: "", line: nil, message: "invalid TOML: \(error)", sourcePath: sourcePath)
            ])
        }

        var reader = ConfigReader(
            locator: SourceLocator(text: text), sourcePath: sourcePath,
            baseDirectory: ConfigPaths.resolve(baseDirectory, against: cwd), environment: environment)
        var config = reader.readConfig(root)
        config.sourcePath = sourcePath.map { ConfigPaths.resolve($0, against: cwd) }

        let issues = ordered(reader.issues)
        if issues.contains(where: { $0.severity == .error }) { throw ConfigErrors(issues: issues) }
        return ConfigLoadResult(config: config, warnings: issues)
    }

    /// In file order, like a compiler; issues without a line (whole-config ones such as
    /// "no routes") after them, in the order they were found.
    private static func ordered(_ issues: [ConfigIssue]) -> [ConfigIssue] {
        issues.enumerated().sorted { a, b in
            switch (a.element.line, b.element.line) {
            case (let x?, let y?) where x != y: return x < y
            case (.some, nil): return true
            case (nil, .some): return false
            default: return a.offset < b.offset
            }
        }.map(\.element)
    }
}

extension ConfigReader {
    static let sections = [
        "server", "admin", "logs", "identity_headers", "issuers", "api_keys", "roles", "rate_limits", "routes",
    ]
    static let pendingSections: [String: PendingFeature] = [:]

    /// Reads every section; whatever was invalid keeps its default in the result, which
    /// is thrown away by the caller whenever an error was recorded.
    mutating func readConfig(_ root: TOMLTable) -> GatewayConfig {
        checkKeys(root, at: "", known: Self.sections, pending: Self.pendingSections)
        let server = readServer(root)
        let admin = readAdmin(root, server: server)
        let logs = readLogs(root)
        let identityHeaders = readIdentityHeaders(root)
        let issuers = readIssuers(root)
        let apiKeys = readAPIKeys(root, identityHeaders: identityHeaders)
        let roles = readRoles(root)
        var routes = readRoutes(root, identityHeaders: identityHeaders, apiKeyHeader: apiKeys.header, roles: roles)
        let rateLimits = readRateLimits(root, routes: &routes)
        var config = GatewayConfig(
            server: server, admin: admin, logs: logs, identityHeaders: identityHeaders, issuers: issuers,
            apiKeys: apiKeys, roles: roles?.table, routes: routes)
        config.rateLimits = rateLimits
        return config
    }
}
