import TOMLKit

// `[[issuers]]`: whose tokens are trusted and how they are verified (SPEC §2, §3). Key
// files are only checked to be readable here; they are parsed when the verifier is built.
extension ConfigReader {
    static let issuerKeys = [
        "issuer", "audiences", "algorithms", "keys", "jwks_file", "jwks_url", "jwks_refresh", "hs256_secret_file",
        "leeway", "max_token_lifetime", "require_claims", "claims",
    ]
    static let publicKeySources = ["keys", "jwks_file", "jwks_url"]
    /// A shorter refresh would hammer the identity provider for no gain: unknown `kid`s
    /// already trigger a refetch (SPEC §3).
    static let minimumJWKSRefresh: Duration = .seconds(10)
    /// More clock skew than this stops being skew and starts extending expired tokens.
    static let maximumLeeway: Duration = .seconds(300)

    /// Config key → model field. Computed: key paths are not Sendable.
    static var claimFields: [(key: String, field: WritableKeyPath<ClaimMapping, String>)] {
        [("subject", \.subject), ("email", \.email), ("org", \.org), ("role", \.role), ("scopes", \.scopes)]
    }

    mutating func readIssuers(_ root: TOMLTable) -> [IssuerConfig] {
        guard let value = root["issuers"] else { return [] }
        guard let array = value.array else {
            error("issuers", "expected an array of tables ([[issuers]]), got \(Self.describe(value))")
            return []
        }
        var owners: [String: String] = [:]  // issuer → key path of the block naming it
        var issuers: [IssuerConfig] = []
        for (index, element) in array.enumerated() {
            let path = "issuers[\(index)]"
            guard let table = element.table else {
                error(path, "expected a table, got \(Self.describe(element))")
                continue
            }
            if let issuer = readIssuer(table, at: path, owners: &owners) { issuers.append(issuer) }
        }
        return issuers
    }

    /// One issuer, or nil when a required key was refused (already reported). Optional
    /// keys that were refused are left at their defaults: the error fails the load anyway.
    private mutating func readIssuer(
        _ table: TOMLTable, at path: String, owners: inout [String: String]
    ) -> IssuerConfig? {
        checkKeys(table, at: path, known: Self.issuerKeys)
        let name = issuerName(table, at: path, owners: &owners)
        let audiences = issuerAudiences(table, at: path)
        let algorithms = issuerAlgorithms(table, at: path)

        let keys = issuerKeyFiles(table, at: path)
        var jwksFile: String?
        var jwksURL: String?
        var secretFile: String?
        if let text = string(table, "jwks_file", at: path) {
            jwksFile = readableFile(text, at: KeyPath.join(path, "jwks_file"))
        }
        if let text = string(table, "jwks_url", at: path) {
            do {
                jwksURL = try JWKSURL.validate(text)
            } catch {
                self.error(KeyPath.join(path, "jwks_url"), error.message)
            }
        }
        if let text = string(table, "hs256_secret_file", at: path) {
            secretFile = readableFile(text, at: KeyPath.join(path, "hs256_secret_file"))
        }
        checkKeySources(table, at: path, algorithms: algorithms)

        var claims = ClaimMapping()
        if let mapping = self.table(table, "claims", at: path) {
            readClaimMapping(mapping, at: KeyPath.join(path, "claims"), into: &claims)
        }
        let refresh = duration(table, "jwks_refresh", at: path, atLeast: Self.minimumJWKSRefresh)
        if refresh != nil && table["jwks_url"] == nil {
            warning(KeyPath.join(path, "jwks_refresh"), "has no effect without jwks_url: there is nothing to refetch")
        }
        let leeway = duration(table, "leeway", at: path, atLeast: .zero, atMost: Self.maximumLeeway)
        let lifetime = duration(table, "max_token_lifetime", at: path)
        let required = distinctStrings(table, "require_claims", at: path)

        guard let name, let audiences, let algorithms else { return nil }
        var issuer = IssuerConfig(issuer: name, audiences: audiences, algorithms: algorithms.map(\.algorithm))
        issuer.keys = keys
        issuer.jwksFile = jwksFile
        issuer.jwksURL = jwksURL
        issuer.hs256SecretFile = secretFile
        if let refresh { issuer.jwksRefresh = refresh }
        if let leeway { issuer.leeway = leeway }
        issuer.maxTokenLifetime = lifetime
        if let required { issuer.requireClaims = required.map(\.text) }
        issuer.claims = claims
        return issuer
    }

    private mutating func issuerName(_ table: TOMLTable, at path: String, owners: inout [String: String]) -> String? {
        guard table["issuer"] != nil else {
            missing("issuer", in: path, "missing; write the exact `iss` value of this issuer's tokens")
            return nil
        }
        guard let name = string(table, "issuer", at: path) else { return nil }
        let keyPath = KeyPath.join(path, "issuer")
        guard !name.isEmpty else {
            error(keyPath, "must not be empty; write the exact `iss` value of this issuer's tokens")
            return nil
        }
        // Two blocks for one `iss` would leave it ambiguous which keys and audiences apply.
        if let owner = owners[name] {
            error(keyPath, "\(name.configQuoted) is already the issuer of \(owner); list each issuer once")
            return nil
        }
        owners[name] = path
        return name
    }

    private mutating func issuerAudiences(_ table: TOMLTable, at path: String) -> [String]? {
        guard table["audiences"] != nil else {
            missing(
                "audiences", in: path,
                "missing; list the `aud` values that mark a token as meant for this gateway, "
                    + "or any service accepting this issuer's tokens could replay them here")
            return nil
        }
        guard let entries = distinctStrings(table, "audiences", at: path) else { return nil }
        guard !entries.isEmpty else {
            error(KeyPath.join(path, "audiences"), "must not be empty: a token must be meant for this gateway")
            return nil
        }
        return entries.map(\.text)
    }

    /// The algorithms with their key paths, or nil when absent or anything was refused.
    private mutating func issuerAlgorithms(
        _ table: TOMLTable, at path: String
    ) -> [(algorithm: JWTAlgorithm, path: String)]? {
        let keyPath = KeyPath.join(path, "algorithms")
        guard table["algorithms"] != nil else {
            missing("algorithms", in: path, "missing; list the signing algorithms this issuer uses, e.g. [\"RS256\"]")
            return nil
        }
        guard let entries = strings(table, "algorithms", at: path) else { return nil }
        guard !entries.isEmpty else {
            error(keyPath, "must not be empty; list the signing algorithms this issuer uses, e.g. [\"RS256\"]")
            return nil
        }
        let names = JWTAlgorithm.allCases.map(\.rawValue)
        var algorithms: [(algorithm: JWTAlgorithm, path: String)] = []
        var ok = true
        for (text, elementPath) in entries {
            if text.lowercased() == "none" {
                error(elementPath, "\"none\" can never be allowed: it accepts unsigned tokens, which anyone can forge")
                ok = false
            } else if let algorithm = JWTAlgorithm(rawValue: text) {
                if algorithms.contains(where: { $0.algorithm == algorithm }) {
                    error(elementPath, "\(text) is listed twice")
                    ok = false
                } else {
                    algorithms.append((algorithm, elementPath))
                }
            } else {
                // Names are case-sensitive in JWS headers, so "rs256" is refused, with a hint.
                let list = names.joined(separator: ", ")
                let hint = DidYouMean.suggestion(for: text, among: names).map { "; did you mean \($0.configQuoted)?" }
                error(elementPath, "unknown or unsupported algorithm \(text.configQuoted) (use \(list))" + (hint ?? ""))
                ok = false
            }
        }
        return ok ? algorithms : nil
    }

    /// `keys`: paths, or `{ path = "…", kid = "…" }` tables pinning a key to a `kid`.
    private mutating func issuerKeyFiles(_ table: TOMLTable, at path: String) -> [KeyFileReference] {
        guard let value = table["keys"] else { return [] }
        let keyPath = KeyPath.join(path, "keys")
        let expected = "a key file path or a { path = \"…\", kid = \"…\" } table"
        guard let array = value.array else {
            error(
                keyPath,
                "expected an array of key files (paths or { path = \"…\", kid = \"…\" }), got \(Self.describe(value))")
            return []
        }
        guard !array.isEmpty else {
            error(keyPath, "must not be empty; leave `keys` out when the issuer has no PEM key files")
            return []
        }
        var keys: [KeyFileReference] = []
        for (index, element) in array.enumerated() {
            let elementPath = "\(keyPath)[\(index)]"
            if let text = element.string {
                if let file = readableFile(text, at: elementPath) { keys.append(KeyFileReference(path: file)) }
            } else if let entry = element.table {
                checkKeys(entry, at: elementPath, known: ["path", "kid"])
                var kid: String?
                if let text = string(entry, "kid", at: elementPath) {
                    if text.isEmpty {
                        error(
                            KeyPath.join(elementPath, "kid"),
                            "must not be empty; leave `kid` out for a key tried with any token of its type")
                    } else {
                        kid = text
                    }
                }
                guard entry["path"] != nil else {
                    error(
                        KeyPath.join(elementPath, "path"),
                        "missing; write { path = \"keys/issuer.pub.pem\", kid = \"…\" }")
                    continue
                }
                if let text = string(entry, "path", at: elementPath),
                    let file = readableFile(text, at: KeyPath.join(elementPath, "path"))
                {
                    keys.append(KeyFileReference(path: file, kid: kid))
                }
            } else {
                error(elementPath, "expected \(expected), got \(Self.describe(element))")
            }
        }
        return keys
    }

    /// SPEC §2: at least one key source, and every algorithm with a key of its kind. A
    /// source with no algorithm to use it is refused too: it says the operator expects
    /// tokens that would in fact all be refused. Judged on which keys are *written*, so
    /// that a refused value does not also produce a misleading "no key source".
    private mutating func checkKeySources(
        _ table: TOMLTable, at path: String, algorithms: [(algorithm: JWTAlgorithm, path: String)]?
    ) {
        let publicSources = Self.publicKeySources.filter { table[$0] != nil }
        let hasSecret = table["hs256_secret_file"] != nil
        guard !publicSources.isEmpty || hasSecret else {
            error(path, "has no key source: set keys, jwks_file, jwks_url or hs256_secret_file")
            return
        }
        guard let algorithms else { return }
        for (algorithm, elementPath) in algorithms {
            if algorithm.isSymmetric && !hasSecret {
                error(
                    elementPath,
                    "\(algorithm.rawValue) is verified with a shared secret: set hs256_secret_file "
                        + "(a public key never verifies an HMAC token)")
            } else if !algorithm.isSymmetric && publicSources.isEmpty {
                error(
                    elementPath,
                    "\(algorithm.rawValue) is verified with a public key: set keys, jwks_file or jwks_url "
                        + "(a shared secret never verifies \(algorithm.rawValue))")
            }
        }
        if hasSecret && !algorithms.contains(where: { $0.algorithm.isSymmetric }) {
            error(
                KeyPath.join(path, "hs256_secret_file"),
                "is set but algorithms lists no HS256, HS384 or HS512, so the secret would never be used")
        }
        if let source = publicSources.first, !algorithms.contains(where: { !$0.algorithm.isSymmetric }) {
            error(
                KeyPath.join(path, source),
                "is set but algorithms lists only HMAC algorithms, so public keys would never be used")
        }
    }

    private mutating func readClaimMapping(_ table: TOMLTable, at path: String, into mapping: inout ClaimMapping) {
        let fields = Self.claimFields
        checkKeys(table, at: path, known: fields.map(\.key))
        for (key, field) in fields {
            guard let text = string(table, key, at: path) else { continue }
            if let problem = ClaimPath.problem(in: text) {
                error(KeyPath.join(path, key), problem)
            } else {
                mapping[keyPath: field] = text
            }
        }
    }
}
