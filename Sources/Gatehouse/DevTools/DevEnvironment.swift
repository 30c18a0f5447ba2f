import Crypto
import Foundation

/// The files behind `gatehouse dev`: a signing key pair, a config and a key store under
/// one folder (default `./.gatehouse-dev/`). Existing files are reused, so tokens minted
/// by an earlier run stay valid; only the config is rewritten (ports may differ per run).
public struct DevEnvironment: Sendable {
    public static let issuer = "https://gatehouse.dev.local"
    public static let audience = "gatehouse-dev"
    public static let keyID = "dev-es256-1"

    public let directory: String
    public var configPath: String { directory + "/proxy.conf" }
    public var privateKeyPath: String { directory + "/signing-key.pem" }
    public var publicKeyPath: String { directory + "/signing-key.pub.pem" }
    public var storePath: String { directory + "/keys.db" }

    public init(directory: String) {
        self.directory = directory
    }

    /// Creates the folder (0700) and the key pair if missing; returns the private key.
    public func prepareSigningKey() throws -> DevSigningKey {
        let files = FileManager.default
        try files.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if files.fileExists(atPath: privateKeyPath) {
            let pem = try String(contentsOfFile: privateKeyPath, encoding: .utf8)
            let key = try P256.Signing.PrivateKey(pemRepresentation: pem)
            try key.publicKey.pemRepresentation.write(toFile: publicKeyPath, atomically: true, encoding: .utf8)
            return DevSigningKey(key: key)
        }
        let key = P256.Signing.PrivateKey()
        try key.pemRepresentation.write(toFile: privateKeyPath, atomically: true, encoding: .utf8)
        try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: privateKeyPath)
        try key.publicKey.pemRepresentation.write(toFile: publicKeyPath, atomically: true, encoding: .utf8)
        return DevSigningKey(key: key)
    }

    /// The demo config: two authenticated routes and one public route in front of the echo
    /// upstream, ES256 tokens from the dev issuer, API keys from `keys.db`.
    public func writeConfig(listen: String, admin: String, upstreamPort: Int) throws {
        let text = """
            # Written by `gatehouse dev`; rewritten on every run. See proxy.conf.example for every key.
            [server]
            listen = "\(listen)"

            [admin]
            listen = "\(admin)"

            [logs]
            access = "off"
            denials = "logs/denials.jsonl"

            [[issuers]]
            issuer = "\(Self.issuer)"
            audiences = ["\(Self.audience)"]
            algorithms = ["ES256"]
            keys = [{ path = "signing-key.pub.pem", kid = "\(Self.keyID)" }]

            [api_keys]
            store = "keys.db"

            [roles]
            admin = ["mcp:read", "mcp:write", "logs:read", "admin:users", "admin:organization"]
            developer = ["mcp:read", "logs:read"]
            viewer = ["mcp:read"]

            [[routes]]
            name = "echo"
            path = "/echo"
            upstream = "http://127.0.0.1:\(upstreamPort)/"

            [[routes]]
            name = "events"
            path = "/events"
            upstream = "http://127.0.0.1:\(upstreamPort)/sse"
            scopes = ["mcp:read"]

            [[routes]]
            name = "admin"
            path = "/admin"
            upstream = "http://127.0.0.1:\(upstreamPort)/"
            scopes = ["admin:users"]
            roles = ["admin"]

            [[routes]]
            name = "public"
            path = "/public"
            upstream = "http://127.0.0.1:\(upstreamPort)/"
            auth = "none"

            """
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// A sample token for the dev issuer, valid for `lifetime`.
    public static func mintToken(
        key: DevSigningKey,
        subject: String = "dev-user",
        email: String = "dev@example.com",
        org: String = "org-dev",
        role: String = "developer",
        scopes: String = "mcp:read logs:read",
        lifetime: Int64 = 24 * 3600,
        now: Int64 = WallClock.seconds()
    ) throws -> String {
        var header = JSONObjectWriter()
        header.field("alg", "ES256")
        header.field("typ", "JWT")
        header.field("kid", keyID)
        var claims = JSONObjectWriter()
        claims.field("iss", issuer)
        claims.field("aud", audience)
        claims.field("sub", subject)
        claims.field("email", email)
        claims.field("org", org)
        claims.field("role", role)
        claims.field("scope", scopes)
        claims.field("iat", Int(now))
        claims.field("exp", Int(now + lifetime))
        claims.field("jti", UUID().uuidString.lowercased())  // random, unlike request ids
        let signingInput =
            Base64URL.encode(Array(header.finish().utf8)) + "." + Base64URL.encode(Array(claims.finish().utf8))
        let signature = try key.key.signature(for: Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(Array(signature.rawRepresentation))
    }
}

/// The dev issuer's private key (ES256), kept opaque so the CLI needs no crypto import.
public struct DevSigningKey: Sendable {
    let key: P256.Signing.PrivateKey
}
