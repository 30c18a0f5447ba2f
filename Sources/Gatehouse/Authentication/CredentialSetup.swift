/// Turns the `[[issuers]]` of a config into verification keys and a verifier: the step
/// that reads key files, shared by `serve` (start and reload) and `check`, so a bad key
/// file is reported the same way by both.
public enum CredentialSetup {
    public struct Result: Sendable {
        public var authenticator: Authenticator
        /// Issuers with a `jwks_url`, for the refresher.
        public var jwksSources: [(issuer: String, url: String, refresh: Duration, keys: IssuerKeys)]
        public var warnings: [ConfigIssue]
    }

    public static func build(_ config: GatewayConfig, apiKeys: APIKeyVerifier) throws(ConfigErrors) -> Result {
        var issues: [ConfigIssue] = []
        var verifierIssuers: [(config: IssuerConfig, keys: IssuerKeys)] = []
        var sources: [(issuer: String, url: String, refresh: Duration, keys: IssuerKeys)] = []
        for (index, issuer) in config.issuers.enumerated() {
            var keys: [VerificationKey] = []
            for (keyIndex, reference) in issuer.keys.enumerated() {
                do {
                    keys.append(try KeyLoading.loadPEMKey(reference))
                } catch {
                    issues.append(issue(config, "issuers[\(index)].keys[\(keyIndex)]", error.description))
                }
            }
            if let path = issuer.jwksFile {
                do {
                    let set = try KeyLoading.loadJWKSFile(atPath: path)
                    if set.keys.isEmpty {
                        issues.append(issue(config, "issuers[\(index)].jwks_file", "\(path): no usable signing key"))
                    }
                    keys += set.keys
                } catch {
                    issues.append(issue(config, "issuers[\(index)].jwks_file", error.description))
                }
            }
            if let path = issuer.hs256SecretFile {
                do {
                    let secret = try KeyLoading.loadHMACSecret(atPath: path)
                    keys.append(secret.key)
                    if let warning = secret.warning {
                        issues.append(issue(config, "issuers[\(index)].hs256_secret_file", warning, severity: .warning))
                    }
                } catch {
                    issues.append(issue(config, "issuers[\(index)].hs256_secret_file", error.description))
                }
            }
            let issuerKeys = IssuerKeys(staticKeys: keys, hasJWKSURL: issuer.jwksURL != nil)
            verifierIssuers.append((issuer, issuerKeys))
            if let url = issuer.jwksURL {
                sources.append((issuer.issuer, url, issuer.jwksRefresh, issuerKeys))
            }
        }
        if issues.contains(where: { $0.severity == .error }) { throw ConfigErrors(issues: issues) }
        let authenticator = Authenticator(
            jwt: JWTVerifier(issuers: verifierIssuers),
            apiKeys: apiKeys,
            issuerKeys: verifierIssuers.map { ($0.config.issuer, $0.keys) }
        )
        return Result(authenticator: authenticator, jwksSources: sources, warnings: issues)
    }

    private static func issue(
        _ config: GatewayConfig,
        _ keyPath: String,
        _ message: String,
        severity: ConfigIssue.Severity = .error
    ) -> ConfigIssue {
        ConfigIssue(severity: severity, keyPath: keyPath, line: nil, message: message, sourcePath: config.sourcePath)
    }
}
