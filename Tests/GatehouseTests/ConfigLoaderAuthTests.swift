import Foundation
import Testing

@testable import Gatehouse

// `[[issuers]]`, `[api_keys]` and the routes' `auth`, `forward_authorization` and
// `upstream_headers`. Key and credential files live in a fresh folder per test, which is
// also the config's folder, so relative paths in the texts below resolve into it.

/// A temporary config folder holding the files the configs below refer to; removed when released.
private final class ConfigFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-auth-\(UUID())").path
        for folder in ["keys", "secrets", "a-directory.pem"] {
            try FileManager.default.createDirectory(
                atPath: path + "/" + folder, withIntermediateDirectories: true)
        }
        try write("keys/a.pem", "-----BEGIN PUBLIC KEY-----\n")
        try write("keys/b.pem", "-----BEGIN PUBLIC KEY-----\n")
        try write("keys/jwks.json", "{\"keys\": []}\n")
        try write("secrets/jwt.secret", "s3cret\n")
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ contents: String) throws {
        try contents.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
    }

    func load(_ text: String, environment: [String: String] = [:]) throws(ConfigErrors) -> ConfigLoadResult {
        try ConfigLoader.load(text: text, sourcePath: "proxy.conf", baseDirectory: path, environment: environment)
    }

    /// The issues of a config expected not to load.
    func issues(
        _ text: String, environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation
    ) -> [ConfigIssue] {
        do {
            _ = try load(text, environment: environment)
            Issue.record("config loaded, expected errors", sourceLocation: sourceLocation)
            return []
        } catch {
            return error.issues
        }
    }

    /// The single error at `keyPath`, checked to exist.
    func error(
        at keyPath: String, in text: String, environment: [String: String] = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> ConfigIssue? {
        let found = issues(text, environment: environment, sourceLocation: sourceLocation)
            .filter { $0.keyPath == keyPath && $0.severity == .error }
        #expect(found.count == 1, "errors at \(keyPath): \(found)", sourceLocation: sourceLocation)
        return found.first
    }
}

private let route = """
    [[routes]]
    name = "echo"
    path = "/echo"
    upstream = "http://127.0.0.1:3001/"
    auth = "none"

    """

/// An issuer block (lines 1–5) with `extra` lines appended, then a route.
private func issuer(_ extra: String = "", algorithms: String = "[\"RS256\"]", keys: String? = "[\"keys/a.pem\"]")
    -> String
{
    var text = """
        [[issuers]]
        issuer = "https://auth.example.com"
        audiences = ["https://gw.example.com/mcp"]
        algorithms = \(algorithms)

        """
    if let keys { text += "keys = \(keys)\n" }
    if !extra.isEmpty { text += extra + "\n" }
    return text + route
}

@Suite struct ConfigLoaderIssuerTests {
    @Test func everyIssuerKeyIsRead() throws {
        let folder = try ConfigFolder()
        let text = """
            [[issuers]]
            issuer = "https://auth.example.com"
            audiences = ["https://gw.example.com/mcp", "gatehouse"]
            algorithms = ["RS256", "ES256", "EdDSA", "HS512"]
            keys = ["keys/a.pem", { path = "./keys/b.pem", kid = "2024-10" }, "\(folder.path)/keys/a.pem"]
            jwks_file = "keys/jwks.json"
            jwks_url = "https://auth.example.com/.well-known/jwks.json?p=signin"
            jwks_refresh = "1h"
            hs256_secret_file = "secrets/jwt.secret"
            leeway = "0s"
            max_token_lifetime = "24h"
            require_claims = ["sub", "exp", "jti"]
            [issuers.claims]
            subject = "user_id"
            email = "profile.email"
            org = "app_metadata.org_id"
            role = "https:role"
            scopes = "scp"

            [[issuers]]
            issuer = "supabase"
            audiences = ["authenticated"]
            algorithms = ["HS256"]
            hs256_secret_file = "secrets/jwt.secret"

            """ + route
        let result = try folder.load(text)
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        let issuers = result.config.issuers
        #expect(issuers.count == 2)
        let first = try #require(issuers.first)
        #expect(first.issuer == "https://auth.example.com")
        #expect(first.audiences == ["https://gw.example.com/mcp", "gatehouse"])
        #expect(first.algorithms == [.rs256, .es256, .edDSA, .hs512])
        #expect(
            first.keys == [
                KeyFileReference(path: folder.path + "/keys/a.pem"),
                KeyFileReference(path: folder.path + "/keys/b.pem", kid: "2024-10"),
                KeyFileReference(path: folder.path + "/keys/a.pem"),
            ])
        #expect(first.jwksFile == folder.path + "/keys/jwks.json")
        #expect(first.jwksURL == "https://auth.example.com/.well-known/jwks.json?p=signin")
        #expect(first.jwksRefresh == .seconds(3600))
        #expect(first.hs256SecretFile == folder.path + "/secrets/jwt.secret")
        #expect(first.leeway == .zero)
        #expect(first.maxTokenLifetime == .seconds(86_400))
        #expect(first.requireClaims == ["sub", "exp", "jti"])
        #expect(first.claims.subject == "user_id")
        #expect(first.claims.email == "profile.email")
        #expect(first.claims.org == "app_metadata.org_id")
        #expect(first.claims.role == "https:role")
        #expect(first.claims.scopes == "scp")

        let second = issuers[1]
        #expect(second.algorithms == [.hs256])
        #expect(second.keys.isEmpty)
        #expect(second.jwksFile == nil && second.jwksURL == nil)
    }

    @Test func issuerDefaults() throws {
        let folder = try ConfigFolder()
        let config = try folder.load(issuer()).config
        let only = try #require(config.issuers.first)
        #expect(only.jwksRefresh == .seconds(600))
        #expect(only.leeway == .seconds(30))
        #expect(only.maxTokenLifetime == nil)
        #expect(only.requireClaims == ["sub", "exp"])
        #expect(only.claims == ClaimMapping())
        #expect(only.hs256SecretFile == nil)
    }

    @Test func noIssuersIsFine() throws {
        let folder = try ConfigFolder()
        #expect(try folder.load(route).config.issuers.isEmpty)
        #expect(try folder.load("issuers = []\n" + route).config.issuers.isEmpty)
    }

    @Test func issuersMustBeAnArrayOfTables() throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: "issuers", in: "[issuers]\nissuer = \"x\"\n" + route)
        #expect(issue?.message == "expected an array of tables ([[issuers]]), got a table")
        let element = folder.error(at: "issuers[0]", in: "issuers = [\"x\"]\n" + route)
        #expect(element?.message == "expected a table, got a string (\"x\")")
    }

    @Test func requiredKeysPointAtTheHeader() throws {
        let folder = try ConfigFolder()
        let found = folder.issues(route + "[[issuers]]\nkeys = [\"keys/a.pem\"]\n")
        #expect(
            Set(found.map(\.keyPath)) == ["issuers[0].issuer", "issuers[0].audiences", "issuers[0].algorithms"])
        #expect(found.allSatisfy { $0.line == 6 && $0.message.hasPrefix("missing") }, "\(found)")
    }

    @Test func unknownIssuerKeyHasHint() throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: "issuers[0].audience", in: issuer("audience = [\"x\"]"))
        #expect(issue?.message == "unknown key `audience`; did you mean `audiences`?")
        #expect(issue?.line == 6)
        let claims = folder.error(at: "issuers[0].claims.subjet", in: issuer("[issuers.claims]\nsubjet = \"sub\""))
        #expect(claims?.message == "unknown key `subjet`; did you mean `subject`?")
        #expect(claims?.line == 7)
    }

    @Test func issuerNamesAreNonEmptyAndUnique() throws {
        let folder = try ConfigFolder()
        let empty = folder.error(
            at: "issuers[0].issuer",
            in: "[[issuers]]\nissuer = \"\"\naudiences = [\"a\"]\nalgorithms = [\"RS256\"]\nkeys = [\"keys/a.pem\"]\n"
                + route)
        #expect(empty?.message.hasPrefix("must not be empty") == true)

        let block =
            "[[issuers]]\nissuer = \"https://a\"\naudiences = [\"a\"]\nalgorithms = [\"RS256\"]\nkeys = [\"keys/a.pem\"]\n"
        let duplicate = folder.error(at: "issuers[1].issuer", in: block + block + route)
        #expect(duplicate?.message == "\"https://a\" is already the issuer of issuers[0]; list each issuer once")
        #expect(duplicate?.line == 7)
    }

    @Test(arguments: [
        ("audiences = []", "issuers[0].audiences", "must not be empty"),
        ("audiences = [\"\"]", "issuers[0].audiences[0]", "must not be empty"),
        ("audiences = [\"a\", \"a\"]", "issuers[0].audiences[1]", "\"a\" is listed twice"),
        ("audiences = \"a\"", "issuers[0].audiences", "expected an array of strings"),
    ])
    func badAudiences(line: String, keyPath: String, message: String) throws {
        let folder = try ConfigFolder()
        let text = "[[issuers]]\nissuer = \"i\"\n\(line)\nalgorithms = [\"RS256\"]\nkeys = [\"keys/a.pem\"]\n" + route
        let issue = folder.error(at: keyPath, in: text)
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 3)
    }

    @Test(arguments: ["none", "None", "NONE"])
    func noneIsNeverAllowed(name: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: "issuers[0].algorithms[1]", in: issuer(algorithms: "[\"RS256\", \"\(name)\"]"))
        #expect(
            issue?.message == "\"none\" can never be allowed: it accepts unsigned tokens, which anyone can forge")
        #expect(issue?.line == 4)
    }

    @Test(arguments: [
        ("[\"rs256\"]", "issuers[0].algorithms[0]", "unknown or unsupported algorithm \"rs256\""),
        ("[\"rs256\"]", "issuers[0].algorithms[0]", "; did you mean \"RS256\"?"),
        ("[\"EDDSA\"]", "issuers[0].algorithms[0]", "did you mean \"EdDSA\"?"),
        (
            "[\"PS256\"]", "issuers[0].algorithms[0]",
            "(use RS256, RS384, RS512, ES256, ES384, HS256, HS384, HS512, EdDSA)"
        ),
        ("[\"RS256\", \"RS256\"]", "issuers[0].algorithms[1]", "RS256 is listed twice"),
        ("[]", "issuers[0].algorithms", "must not be empty"),
        ("\"RS256\"", "issuers[0].algorithms", "expected an array of strings"),
        ("[256]", "issuers[0].algorithms[0]", "expected a string"),
    ])
    func badAlgorithms(algorithms: String, keyPath: String, message: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: keyPath, in: issuer(algorithms: algorithms))
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 4)
    }

    @Test func issuerNeedsAKeySource() throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: "issuers[0]", in: issuer(keys: nil))
        #expect(issue?.message == "has no key source: set keys, jwks_file, jwks_url or hs256_secret_file")
        #expect(issue?.line == 1)
        // Each source alone is enough.
        for source in [
            "keys = [\"keys/a.pem\"]", "jwks_file = \"keys/jwks.json\"", "jwks_url = \"https://a.example/jwks\"",
        ] {
            #expect(throws: Never.self) { try folder.load(issuer(source, keys: nil)) }
        }
        #expect(throws: Never.self) {
            try folder.load(issuer("hs256_secret_file = \"secrets/jwt.secret\"", algorithms: "[\"HS256\"]", keys: nil))
        }
    }

    @Test(arguments: ["HS256", "HS384", "HS512"])
    func hmacNeedsTheSecret(algorithm: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(
            at: "issuers[0].algorithms[1]", in: issuer(algorithms: "[\"RS256\", \"\(algorithm)\"]"))
        #expect(
            issue?.message.hasPrefix("\(algorithm) is verified with a shared secret: set hs256_secret_file") == true)
    }

    @Test(arguments: ["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"])
    func asymmetricNeedsPublicKeys(algorithm: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(
            at: "issuers[0].algorithms[0]",
            in: issuer(
                "hs256_secret_file = \"secrets/jwt.secret\"", algorithms: "[\"\(algorithm)\", \"HS256\"]", keys: nil))
        #expect(
            issue?.message
                == "\(algorithm) is verified with a public key: set keys, jwks_file or jwks_url "
                + "(a shared secret never verifies \(algorithm))")
    }

    @Test func unusedKeySourcesAreErrors() throws {
        let folder = try ConfigFolder()
        let secret = folder.error(
            at: "issuers[0].hs256_secret_file", in: issuer("hs256_secret_file = \"secrets/jwt.secret\""))
        #expect(
            secret?.message
                == "is set but algorithms lists no HS256, HS384 or HS512, so the secret would never be used")
        #expect(secret?.line == 6)

        let found = folder.issues(
            issuer("hs256_secret_file = \"secrets/jwt.secret\"", algorithms: "[\"HS256\"]", keys: "[\"keys/a.pem\"]"))
        #expect(found.map(\.keyPath) == ["issuers[0].keys"])
        #expect(found.first?.message.hasSuffix("so public keys would never be used") == true)
    }

    @Test func mixedSecretAndPublicKeysLoad() throws {
        let folder = try ConfigFolder()
        let config = try folder.load(
            issuer("hs256_secret_file = \"secrets/jwt.secret\"", algorithms: "[\"ES256\", \"HS256\"]")
        ).config
        #expect(config.issuers.first?.algorithms == [.es256, .hs256])
    }

    @Test func keyFilesMustBeReadable() throws {
        let folder = try ConfigFolder()
        let found = folder.issues(
            issuer(
                keys: "[\"keys/a.pem\", \"keys/missing.pem\", { path = \"a-directory.pem\", kid = \"k\" }]"))
        #expect(found.map(\.keyPath) == ["issuers[0].keys[1]", "issuers[0].keys[2].path"])
        #expect(
            found.first?.message
                == "cannot read \"\(folder.path)/keys/missing.pem\": No such file or directory")
        #expect(found.last?.message == "\"\(folder.path)/a-directory.pem\" is not a regular file")
        #expect(found.allSatisfy { $0.line == 5 })
    }

    @Test(arguments: [
        ("jwks_file = \"keys/nope.json\"", "issuers[0].jwks_file"),
        ("hs256_secret_file = \"secrets/nope\"", "issuers[0].hs256_secret_file"),
    ])
    func otherKeyFilesMustBeReadable(line: String, keyPath: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: keyPath, in: issuer(line, algorithms: "[\"RS256\", \"HS256\"]"))
        #expect(issue?.message.hasPrefix("cannot read \"\(folder.path)/") == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 6)
    }

    @Test(arguments: [
        ("[]", "issuers[0].keys", "must not be empty"),
        ("[\"\"]", "issuers[0].keys[0]", "must not be empty"),
        ("[1]", "issuers[0].keys[0]", "expected a key file path or a { path = \"…\", kid = \"…\" } table"),
        ("\"keys/a.pem\"", "issuers[0].keys", "expected an array of key files"),
        ("[{ kid = \"k\" }]", "issuers[0].keys[0].path", "missing"),
        ("[{ path = \"keys/a.pem\", kid = \"\" }]", "issuers[0].keys[0].kid", "must not be empty"),
        ("[{ path = \"keys/a.pem\", kidd = \"k\" }]", "issuers[0].keys[0].kidd", "did you mean `kid`?"),
        ("[{ path = 1 }]", "issuers[0].keys[0].path", "expected a string"),
    ])
    func badKeys(keys: String, keyPath: String, message: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: keyPath, in: issuer(keys: keys))
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 5)
    }

    @Test(arguments: [
        "https://auth.example.com/jwks", "HTTPS://auth.example.com:8443/.well-known/jwks.json",
        "http://127.0.0.1:8080/jwks", "http://127.9.8.7/jwks", "http://localhost:9000/jwks", "http://LOCALHOST/jwks",
        "http://[::1]:9000/jwks", "https://[2001:db8::1]/keys?p=b2c_1_signin",
    ])
    func goodJWKSURLs(url: String) throws {
        let folder = try ConfigFolder()
        let config = try folder.load(issuer("jwks_url = \"\(url)\"", keys: nil)).config
        #expect(config.issuers.first?.jwksURL == url)
    }

    @Test(arguments: [
        ("http://auth.example.com/jwks", "uses plain http"),
        ("http://10.0.0.1/jwks", "uses plain http"),
        ("http://[::2]/jwks", "uses plain http"),
        ("http://localhost.example.com/jwks", "uses plain http"),
        ("ftp://auth.example.com/jwks", "must be an https:// URL"),
        ("auth.example.com/jwks", "must be an https:// URL"),
        ("https://", "has no host"),
        ("https://user:pw@auth.example.com/jwks", "must not contain credentials"),
        ("https://auth.example.com/jwks#x", "must not have a fragment"),
        ("https://auth.example.com:0/jwks", "port must be a number from 1 to 65535"),
        ("https://auth example.com/jwks", "contains a space"),
        ("https://auth.example.com/%zz", "invalid percent-escape"),
    ])
    func badJWKSURLs(url: String, message: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: "issuers[0].jwks_url", in: issuer("jwks_url = \"\(url)\"", keys: nil))
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 5)
    }

    @Test func plainHTTPMessageSaysWhy() throws {
        let folder = try ConfigFolder()
        let issue = folder.error(
            at: "issuers[0].jwks_url", in: issuer("jwks_url = \"http://auth.example.com/jwks\"", keys: nil))
        #expect(issue?.message.contains("anyone can forge tokens; use https://") == true)
        #expect(issue?.message.contains("127.0.0.0/8, ::1, localhost") == true)
    }

    @Test(arguments: [
        ("jwks_refresh = \"5s\"", "issuers[0].jwks_refresh", "must be at least 10s, got \"5s\""),
        ("jwks_refresh = \"9999ms\"", "issuers[0].jwks_refresh", "must be at least 10s"),
        ("jwks_refresh = 600", "issuers[0].jwks_refresh", "expected a duration string"),
        ("leeway = \"6m\"", "issuers[0].leeway", "must be at most 5m, got \"6m\""),
        ("leeway = \"301s\"", "issuers[0].leeway", "must be at most 5m"),
        ("leeway = \"-1s\"", "issuers[0].leeway", "must not be negative"),
        ("max_token_lifetime = \"0s\"", "issuers[0].max_token_lifetime", "must be greater than 0"),
        ("max_token_lifetime = \"1y\"", "issuers[0].max_token_lifetime", "unknown duration unit"),
        ("require_claims = [\"sub\", \"sub\"]", "issuers[0].require_claims[1]", "listed twice"),
        ("require_claims = [\"\"]", "issuers[0].require_claims[0]", "must not be empty"),
        ("require_claims = \"sub\"", "issuers[0].require_claims", "expected an array of strings"),
        ("claims = \"sub\"", "issuers[0].claims", "expected a table"),
    ])
    func badIssuerValues(line: String, keyPath: String, message: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: keyPath, in: issuer("jwks_url = \"https://a.example/jwks\"\n" + line))
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 7)
    }

    @Test func durationBoundsAreInclusive() throws {
        let folder = try ConfigFolder()
        let config = try folder.load(
            issuer(
                "jwks_url = \"https://a.example/jwks\"\njwks_refresh = \"10s\"\nleeway = \"5m\"\nrequire_claims = []")
        ).config
        #expect(config.issuers.first?.jwksRefresh == .seconds(10))
        #expect(config.issuers.first?.leeway == .seconds(300))
        #expect(config.issuers.first?.requireClaims == [])
    }

    @Test func refreshWithoutURLIsAWarning() throws {
        let folder = try ConfigFolder()
        let result = try folder.load(issuer("jwks_refresh = \"1m\""))
        #expect(result.warnings.map(\.keyPath) == ["issuers[0].jwks_refresh"])
        #expect(result.warnings.first?.message.contains("no effect without jwks_url") == true)
        #expect(result.warnings.first?.line == 6)
    }

    @Test(arguments: ["", "a..b", "a.", ".a", "a b", "https://x.example/roles", "a/b", "é"])
    func badClaimPaths(path: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: "issuers[0].claims.org", in: issuer("[issuers.claims]\norg = \"\(path)\""))
        #expect(issue?.message.contains("is not a dotted claim path") == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 7)
    }

    @Test func inlineClaimsTable() throws {
        let folder = try ConfigFolder()
        let config = try folder.load(issuer("claims = { role = \"app_metadata.role\", scopes = \"scp\" }")).config
        var expected = ClaimMapping()
        expected.role = "app_metadata.role"
        expected.scopes = "scp"
        #expect(config.issuers.first?.claims == expected)
        let issue = folder.error(at: "issuers[0].claims.role", in: issuer("claims = { role = \"a..b\" }"))
        #expect(issue?.line == 6)
    }
}

@Suite struct ConfigLoaderAPIKeyTests {
    @Test func defaultStoreIsAbsoluteEvenWithoutTheSection() throws {
        let folder = try ConfigFolder()
        let settings = try folder.load(route).config.apiKeys
        #expect(settings.store == folder.path + "/data/keys.db")
        #expect(settings.header == "X-Api-Key")
        #expect(settings.prefix == "ghk")
        // An empty section changes nothing.
        #expect(try folder.load("[api_keys]\n" + route).config.apiKeys == settings)
    }

    @Test func defaultStoreFollowsTheConfigFile() throws {
        let folder = try ConfigFolder()
        try folder.write("proxy.conf", route)
        let config = try ConfigLoader.load(path: folder.path + "/proxy.conf").config
        #expect(config.apiKeys.store == folder.path + "/data/keys.db")
    }

    @Test func everyAPIKeyKeyIsRead() throws {
        let folder = try ConfigFolder()
        let settings = try folder.load(
            "[api_keys]\nstore = \"./state//keys.sqlite\"\nheader = \"X-Gatehouse-Key\"\nprefix = \"acme2\"\n" + route
        ).config.apiKeys
        #expect(settings.store == folder.path + "/state/keys.sqlite")
        #expect(settings.header == "X-Gatehouse-Key")
        #expect(settings.prefix == "acme2")
        let absolute = try folder.load("[api_keys]\nstore = \"/var/lib/gatehouse/keys.db\"\n" + route).config.apiKeys
        #expect(absolute.store == "/var/lib/gatehouse/keys.db")
    }

    @Test func postgresStoreIsNotSupportedYet() throws {
        let folder = try ConfigFolder()
        for url in ["postgres://gate:hunter2@db.internal/gatehouse", "postgresql://db/g", "POSTGRES://db/g"] {
            let issue = folder.error(at: "api_keys.store", in: "[api_keys]\nstore = \"\(url)\"\n" + route)
            #expect(
                issue?.message
                    == "`store = \"postgres://…\"` is not supported yet in this build (arrives with scale-out support)")
            #expect(issue?.description.contains("hunter2") == false)
            #expect(issue?.line == 2)
        }
        let other = folder.error(at: "api_keys.store", in: "[api_keys]\nstore = \"mysql://u:pw@db/g\"\n" + route)
        #expect(other?.message == "must be the path of the SQLite file, not a mysql:// URL")
    }

    @Test(arguments: [
        ("store = \"\"", "api_keys.store", "must not be empty"),
        ("store = 1", "api_keys.store", "expected a string"),
        ("header = \"X Key\"", "api_keys.header", "not a valid HTTP header name"),
        ("header = \"\"", "api_keys.header", "not a valid HTTP header name"),
        ("header = \"Authorization\"", "api_keys.header", "already accepted as \"Authorization: Bearer <key>\""),
        ("header = \"Host\"", "api_keys.header", "is reserved"),
        ("header = \"Cookie\"", "api_keys.header", "is reserved"),
        ("header = \"X-Forwarded-For\"", "api_keys.header", "is reserved"),
        ("header = \"Connection\"", "api_keys.header", "is reserved"),
        ("header = \"Proxy-Key\"", "api_keys.header", "is reserved"),
        ("header = \"X-User-Id\"", "api_keys.header", "is identity_headers.subject"),
        ("header = \"x_auth_method\"", "api_keys.header", "is identity_headers.auth_method"),
        ("prefix = \"\"", "api_keys.prefix", "must be 1–16 lowercase letters or digits"),
        ("prefix = \"GHK\"", "api_keys.prefix", "must be 1–16"),
        ("prefix = \"gh_k\"", "api_keys.prefix", "must be 1–16"),
        ("prefix = \"gh-k\"", "api_keys.prefix", "must be 1–16"),
        ("prefix = \"abcdefghijklmnopq\"", "api_keys.prefix", "must be 1–16"),
        ("prefx = \"a\"", "api_keys.prefx", "did you mean `prefix`?"),
    ])
    func badAPIKeyValues(line: String, keyPath: String, message: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: keyPath, in: "[api_keys]\n\(line)\n" + route)
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 2)
    }

    @Test func headerIsCheckedAgainstRenamedIdentityHeaders() throws {
        let folder = try ConfigFolder()
        let issue = folder.error(
            at: "api_keys.header",
            in: "[identity_headers]\nkey_id = \"X-Key\"\n[api_keys]\nheader = \"x-key\"\n" + route)
        #expect(issue?.message == "\"x-key\" is identity_headers.key_id: it carries the verified identity")
        // The default X-Api-Key is fine, and so is a one-character prefix and a 16-character one.
        for prefix in ["a", "abcdefghijklmnop", "0x7"] {
            #expect(throws: Never.self) {
                try folder.load("[api_keys]\nheader = \"x-api-key\"\nprefix = \"\(prefix)\"\n" + route)
            }
        }
    }
}

@Suite struct ConfigLoaderRouteAuthTests {
    private func route(_ extra: String) -> String {
        "[[routes]]\nname = \"gh\"\npath = \"/gh\"\nupstream = \"http://127.0.0.1:3001\"\n" + extra + "\n"
    }

    @Test func authDefaultsToRequired() throws {
        let folder = try ConfigFolder()
        let only = try #require(try folder.load(route("")).config.routes.first)
        #expect(only.auth == .required)
        #expect(only.forwardAuthorization == false)
        #expect(only.upstreamHeaders.isEmpty)
    }

    @Test(arguments: [("required", AuthMode.required), ("optional", .optional), ("none", .none)])
    func everyAuthModeIsAccepted(text: String, mode: AuthMode) throws {
        let folder = try ConfigFolder()
        // API keys need no configuration, so a protected route without [[issuers]] loads.
        let result = try folder.load(route("auth = \"\(text)\""))
        #expect(result.config.routes.first?.auth == mode)
        #expect(result.warnings.isEmpty)
    }

    @Test func authValuesAreChecked() throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: "routes[0].auth", in: route("auth = \"requried\""))
        #expect(
            issue?.message
                == "must be one of \"required\", \"optional\", \"none\", got \"requried\"; did you mean \"required\"?")
        #expect(issue?.line == 5)
    }

    @Test func forwardAuthorizationIsRead() throws {
        let folder = try ConfigFolder()
        #expect(
            try folder.load(route("forward_authorization = true")).config.routes.first?.forwardAuthorization == true)
        #expect(
            try folder.load(route("forward_authorization = false")).config.routes.first?.forwardAuthorization == false)
        let issue = folder.error(at: "routes[0].forward_authorization", in: route("forward_authorization = \"yes\""))
        #expect(issue?.message == "expected a boolean (true or false), got a string (\"yes\")")
        #expect(issue?.line == 5)
    }

    @Test func headersFromTheEnvironment() throws {
        let folder = try ConfigFolder()
        let config = try folder.load(
            route("upstream_headers = { Authorization = { env = \"GH_TOKEN\" }, X-Extra = { env = \"EXTRA\" } }"),
            environment: ["GH_TOKEN": "Bearer ghp_abc", "EXTRA": "a\tb c"]
        ).config
        #expect(
            config.routes.first?.upstreamHeaders == [
                UpstreamHeader(name: "Authorization", source: .environment("GH_TOKEN"), value: "Bearer ghp_abc"),
                UpstreamHeader(name: "X-Extra", source: .environment("EXTRA"), value: "a\tb c"),
            ])
    }

    @Test func headersFromFiles() throws {
        let folder = try ConfigFolder()
        try folder.write("secrets/lf", "token-lf\n")
        try folder.write("secrets/crlf", "token-crlf\r\n")
        try folder.write("secrets/bare", " token bare ")
        let text = route(
            """
            [routes.upstream_headers]
            A = { file = "secrets/lf" }
            B = { file = "./secrets/crlf" }
            C = { file = "\(folder.path)/secrets/bare" }
            """)
        let headers = try folder.load(text).config.routes.first?.upstreamHeaders
        #expect(
            headers == [
                UpstreamHeader(name: "A", source: .file(folder.path + "/secrets/lf"), value: "token-lf"),
                UpstreamHeader(name: "B", source: .file(folder.path + "/secrets/crlf"), value: "token-crlf"),
                UpstreamHeader(name: "C", source: .file(folder.path + "/secrets/bare"), value: " token bare "),
            ])
    }

    @Test func theProcessEnvironmentIsTheDefault() throws {
        let folder = try ConfigFolder()
        let variable = "GATEHOUSE_TEST_\(UUID().uuidString.replacingOccurrences(of: "-", with: "_"))"
        setenv(variable, "from-the-process", 1)
        defer { unsetenv(variable) }
        try folder.write("proxy.conf", route("upstream_headers = { X-Token = { env = \"\(variable)\" } }"))
        let config = try ConfigLoader.load(path: folder.path + "/proxy.conf").config
        #expect(config.routes.first?.upstreamHeaders.first?.value == "from-the-process")
    }

    @Test func missingEnvironmentVariableIsNamed() throws {
        let folder = try ConfigFolder()
        let issue = folder.error(
            at: "routes[0].upstream_headers.Authorization.env",
            in: route("upstream_headers = { Authorization = { env = \"GH_TOKEN\" } }"), environment: ["OTHER": "x"])
        #expect(issue?.message == "environment variable GH_TOKEN is not set")
        #expect(issue?.line == 5)
    }

    @Test(arguments: [
        (
            "Authorization = { env = \"1TOKEN\" }", "Authorization.env",
            "is not a valid environment variable name"
        ),
        ("Authorization = { env = \"\" }", "Authorization.env", "is not a valid environment variable name"),
        (
            "Authorization = { env = \"EMPTY\" }", "Authorization.env",
            "the value of environment variable EMPTY is empty"
        ),
        ("Authorization = { env = \"T\", file = \"f\" }", "Authorization", "set either env or file, not both"),
        ("Authorization = {}", "Authorization", "needs env = \"NAME\" or file = \"path\""),
        ("Authorization = { evn = \"T\" }", "Authorization.evn", "unknown key `evn`; did you mean `env`?"),
        ("Authorization = \"Bearer x\"", "Authorization", "expected { env = \"NAME\" } or { file = \"path\" }"),
        ("Authorization = { env = 1 }", "Authorization.env", "expected a string"),
        ("Authorization = { file = \"\" }", "Authorization.file", "must not be empty"),
        ("Authorization = { file = \"secrets/none\" }", "Authorization.file", "cannot open: No such file"),
        ("Authorization = { file = \"secrets\" }", "Authorization.file", "not a regular file"),
        ("\"Bad Name\" = { env = \"T\" }", "\"Bad Name\"", "not a valid HTTP header name"),
        ("Host = { env = \"T\" }", "Host", "is reserved"),
        ("content-length = { env = \"T\" }", "content-length", "is reserved"),
        ("Transfer-Encoding = { env = \"T\" }", "Transfer-Encoding", "is reserved"),
        ("Connection = { env = \"T\" }", "Connection", "is reserved"),
        ("Keep-Alive = { env = \"T\" }", "Keep-Alive", "is reserved"),
        ("Proxy-Authorization = { env = \"T\" }", "Proxy-Authorization", "is reserved"),
        ("X_Forwarded_For = { env = \"T\" }", "X_Forwarded_For", "is reserved"),
        ("X-User-Id = { env = \"T\" }", "X-User-Id", "is identity_headers.subject"),
        ("x_user_role = { env = \"T\" }", "x_user_role", "is identity_headers.role"),
    ])
    func badUpstreamHeaders(entry: String, key: String, message: String) throws {
        let folder = try ConfigFolder()
        let issue = folder.error(
            at: "routes[0].upstream_headers.\(key)", in: route("upstream_headers = { \(entry) }"),
            environment: ["T": "t", "EMPTY": ""])
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 5)
    }

    @Test func upstreamHeadersMustBeATable() throws {
        let folder = try ConfigFolder()
        let issue = folder.error(at: "routes[0].upstream_headers", in: route("upstream_headers = [\"A\"]"))
        #expect(
            issue?.message
                == "expected a table of header name = { env = \"NAME\" } or { file = \"path\" }, got an array")
    }

    @Test func namesAreUniqueCaseInsensitively() throws {
        let folder = try ConfigFolder()
        let issue = folder.error(
            at: "routes[0].upstream_headers.authorization",
            in: route("upstream_headers = { Authorization = { env = \"T\" }, authorization = { env = \"T\" } }"),
            environment: ["T": "t"])
        #expect(issue?.message == "\"authorization\" is also set as \"Authorization\"")
    }

    @Test func forwardedCredentialsCannotAlsoBeSet() throws {
        let folder = try ConfigFolder()
        for name in ["Authorization", "X-Api-Key"] {
            let issue = folder.error(
                at: "routes[0].upstream_headers.\(name)",
                in: route("forward_authorization = true\nupstream_headers = { \(name) = { env = \"T\" } }"),
                environment: ["T": "t"])
            #expect(issue?.message.contains("while forward_authorization = true") == true)
        }
        // The key header as configured is the one that counts.
        let renamed = folder.error(
            at: "routes[0].upstream_headers.X-Key",
            in: "[api_keys]\nheader = \"X-Key\"\n"
                + route("forward_authorization = true\nupstream_headers = { X-Key = { env = \"T\" } }"),
            environment: ["T": "t"])
        #expect(renamed != nil)
        // Without forwarding, Gatehouse's own Authorization replaces the client's.
        #expect(throws: Never.self) {
            try folder.load(
                route("upstream_headers = { Authorization = { env = \"T\" } }"), environment: ["T": "t"])
        }
        #expect(throws: Never.self) {
            try folder.load(
                route("forward_authorization = true\nupstream_headers = { X-Upstream = { env = \"T\" } }"),
                environment: ["T": "t"])
        }
    }

    @Test func subtableEntriesHaveTheirOwnLines() throws {
        let folder = try ConfigFolder()
        let found = folder.issues(
            route("[routes.upstream_headers]\nA = { env = \"T\" }\nHost = { env = \"T\" }\nC = { env = \"MISSING\" }"),
            environment: ["T": "t"])
        #expect(found.map(\.keyPath) == ["routes[0].upstream_headers.Host", "routes[0].upstream_headers.C.env"])
        #expect(found.map(\.line) == [7, 8])
    }

    /// The resolved values are credentials: no message, warning or description may show
    /// them, whatever is wrong with them or around them.
    @Test func secretsNeverAppearInMessages() throws {
        let folder = try ConfigFolder()
        let secret = "s3cr3t-VALUE-4242"
        try folder.write("secrets/multi", secret + "\n\n")
        try folder.write("secrets/ok", secret + "\n")
        let environment = [
            "LINE_BREAK": secret + "\r\nX-Injected: 1", "NUL": secret + "\u{0}", "CONTROL": secret + "\u{1B}",
            "GOOD": secret,
        ]
        let text = route(
            """
            auth = "optional"
            upstream_headers = { A = { env = "LINE_BREAK" }, B = { env = "NUL" }, C = { env = "CONTROL" }, D = { file = "secrets/multi" }, Host = { env = "GOOD" }, X-User-Id = { file = "secrets/ok" }, E = { env = "GOOD", file = "secrets/ok" }, F = { env = "Bearer s3cr3t-pasted" }, G = "s3cr3t-inline" }
            """)
        let found = folder.issues(text, environment: environment)
        #expect(found.count == 9, "\(found)")
        for issue in found {
            #expect(!issue.description.contains("s3cr3t"), "\(issue)")
            #expect(!issue.message.contains("s3cr3t"), "\(issue)")
        }
        #expect(
            found.contains {
                $0.message == "the value of environment variable LINE_BREAK contains a line break; header values cannot"
            })
        #expect(
            found.contains {
                $0.message == "the value of environment variable NUL contains a NUL byte; header values cannot"
            })
        #expect(found.contains { $0.message.contains("CONTROL contains a control character") })
        #expect(
            found.contains {
                $0.message.hasSuffix("contains a line break; header values cannot (one trailing newline is ignored)")
            })

        // A config that loads does not show them either, however it is printed.
        let config = try folder.load(
            route("upstream_headers = { A = { env = \"GOOD\" }, B = { file = \"secrets/ok\" } }"),
            environment: environment
        ).config
        #expect(config.routes.first?.upstreamHeaders.map(\.value) == [secret, secret])
        var dumped = ""
        dump(config, to: &dumped)
        for rendering in [String(describing: config), String(reflecting: config), "\(config.routes)", dumped] {
            #expect(!rendering.contains("s3cr3t"), "\(rendering)")
        }
        #expect(
            config.routes.first?.upstreamHeaders.first?.description == "A: <from environment variable GOOD>")
    }
}
