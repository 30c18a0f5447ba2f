import TOMLKit

// `[api_keys]`: the embedded key store and how clients present keys (SPEC §2, §3).
extension ConfigReader {
    static let apiKeyKeys = ["store", "header", "prefix"]
    static let defaultKeyStore = "data/keys.db"
    /// Keys are `<prefix>_<id>_<secret>`: no `_` in the prefix, so a key splits one way only.
    static let keyPrefixCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789")

    /// Always a value, with an absolute store path, even without the section: the store
    /// also holds token revocations, which every gateway checks.
    mutating func readAPIKeys(_ root: TOMLTable, identityHeaders: IdentityHeaderNames) -> APIKeySettings {
        var settings = APIKeySettings(store: ConfigPaths.resolve(Self.defaultKeyStore, against: baseDirectory))
        let path = "api_keys"
        guard let table = table(root, path, at: "") else { return settings }
        checkKeys(table, at: path, known: Self.apiKeyKeys)

        if let text = string(table, "store", at: path), let store = keyStore(text, at: "api_keys.store") {
            settings.store = store
        }
        if let name = string(table, "header", at: path),
            apiKeyHeader(name, at: "api_keys.header", identityHeaders: identityHeaders)
        {
            settings.header = name
        }
        if let prefix = string(table, "prefix", at: path) {
            if (1...16).contains(prefix.count) && prefix.allSatisfy({ Self.keyPrefixCharacters.contains($0) }) {
                settings.prefix = prefix
            } else {
                error("api_keys.prefix", "\(prefix.configQuoted) must be 1–16 lowercase letters or digits")
            }
        }
        return settings
    }

    /// A file path for the SQLite store. A URL is refused without repeating it: a
    /// database URL usually carries a password.
    private mutating func keyStore(_ text: String, at keyPath: String) -> String? {
        if let separator = text.firstRange(of: "://"),
            text[..<separator.lowerBound].allSatisfy({
                $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0))
            })
        {
            let scheme = text[..<separator.lowerBound].lowercased()
            if scheme == "postgres" || scheme == "postgresql" {
                error(keyPath, "`store = \"postgres://…\"` \(PendingFeature.scaleOut.notSupported)")
            } else {
                error(keyPath, "must be the path of the SQLite file, not a \(scheme):// URL")
            }
            return nil
        }
        return filePath(text, at: keyPath)
    }

    /// Whether `name` may carry API keys: a valid header name that Gatehouse neither
    /// manages itself nor uses for identity (each would be stripped or overwritten).
    private mutating func apiKeyHeader(
        _ name: String, at keyPath: String, identityHeaders: IdentityHeaderNames
    ) -> Bool {
        let folded = Self.foldedHeaderName(name)
        var reserved = Self.reservedHeaderNames
        reserved.remove("x-api-key")  // the default, reserved only against identity headers
        if !HTTPToken.isValid(name) {
            error(keyPath, "\(name.configQuoted) is not a valid HTTP header name")
        } else if reserved.contains(folded) || HopByHopHeaders.isHopByHop(lowercased: folded) {
            let why =
                folded == "authorization"
                ? "keys are already accepted as \"Authorization: Bearer <key>\""
                : "the proxy sets or relies on it itself"
            error(keyPath, "\(name.configQuoted) is reserved: \(why)")
        } else if let field = Self.identityField(named: folded, in: identityHeaders) {
            error(keyPath, "\(name.configQuoted) is identity_headers.\(field): it carries the verified identity")
        } else {
            return true
        }
        return false
    }

    /// The `[identity_headers]` key whose header is `folded` (see `foldedHeaderName`), if any.
    static func identityField(named folded: String, in names: IdentityHeaderNames) -> String? {
        identityFields.first { foldedHeaderName(names[keyPath: $0.field]) == folded }?.key
    }
}
