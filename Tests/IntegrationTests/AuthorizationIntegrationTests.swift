import Foundation
import Gatehouse
import Testing

/// SPEC §4 through a real socket: every role × route × method, the least-privilege
/// intersection, and what reaches the upstream.
@Suite("Authorization") struct AuthorizationIntegrationTests {
    static let roles: [String: [String]] = [
        "admin": ["mcp:read", "mcp:write", "logs:read", "admin:users", "admin:organization"],
        "developer": ["mcp:read", "logs:read"],
        "viewer": ["mcp:read"],
    ]
    static let secret = Array("authorization-integration-secret-0123456789".utf8)

    struct RouteSpec: Sendable {
        var name: String
        var scopes: [String]
        var roles: [String]?
        var methodScopes: [String: [String]]
    }

    static let routes: [RouteSpec] = [
        RouteSpec(
            name: "mcp", scopes: ["mcp:read"], roles: nil,
            methodScopes: ["POST": ["mcp:write"], "DELETE": ["mcp:write"]]),
        RouteSpec(name: "logs", scopes: ["logs:read"], roles: nil, methodScopes: [:]),
        RouteSpec(name: "users", scopes: ["admin:users"], roles: ["admin"], methodScopes: [:]),
        RouteSpec(name: "users-by-scope", scopes: ["admin:users"], roles: nil, methodScopes: [:]),
        RouteSpec(name: "team", scopes: [], roles: ["admin", "developer"], methodScopes: [:]),
    ]

    static func withGateway(_ body: @Sendable (GatewayFixture) async throws -> Void) async throws {
        let folder = try TempFolder("authz")
        let secretPath = try folder.write("hs.secret", secret)
        try await GatewayFixture.with(
            configure: { config in
                var issuer = IssuerConfig(issuer: "https://issuer.test", audiences: ["gw"], algorithms: [.hs256])
                issuer.hs256SecretFile = secretPath
                config.issuers = [issuer]
                config.apiKeys = APIKeySettings(store: folder.file("keys.db"))
                config.roles = roles
                let origin = config.routes[0].upstream
                for spec in routes {
                    config.routes.append(
                        RouteConfig(
                            name: spec.name,
                            path: "/\(spec.name)",
                            upstream: UpstreamURL(
                                scheme: origin.scheme, host: origin.host, port: origin.port, basePath: ""),
                            auth: .required,
                            scopes: spec.scopes,
                            roles: spec.roles,
                            methodScopes: spec.methodScopes
                        )
                    )
                }
            }, body)
    }

    static func token(role: String, scopes: [String]?) -> String {
        let now = unixNow()
        var claims: [String: Any] = [
            "iss": "https://issuer.test", "aud": "gw", "sub": "user-\(role)", "role": role, "iat": now,
            "exp": now + 600,
        ]
        if let scopes { claims["scope"] = scopes.joined(separator: " ") }
        return TokenMinter.mint(header: ["alg": "HS256"], claims: claims, key: .hmac(secret))
    }

    static func expectedAllowed(role: String, route: RouteSpec, method: String) -> Bool {
        let held = Set(roles[role] ?? [])
        if let allowed = route.roles, !allowed.contains(role) { return false }
        let required = route.scopes + (route.methodScopes[method] ?? [])
        return required.allSatisfy(held.contains)
    }

    @Test(
        "role × route × method matrix, with role-only tokens and tokens claiming every scope",
        arguments: ["admin", "developer", "viewer"]
    )
    func matrix(role: String) async throws {
        try await Self.withGateway { gw in
            let everything = Self.roles["admin"] ?? []
            for claimed in [nil, everything] as [[String]?] {
                let token = Self.token(role: role, scopes: claimed)
                for route in Self.routes {
                    for method in ["GET", "POST", "DELETE"] {
                        gw.upstream.clearReceived()
                        let response = try await CurlClient.request(
                            method: method,
                            url: gw.url("/\(route.name)/x"),
                            headers: [("Authorization", "Bearer \(token)")]
                        )
                        let allowed = Self.expectedAllowed(role: role, route: route, method: method)
                        let label =
                            "\(role) \(method) /\(route.name) claiming \(claimed == nil ? "nothing" : "everything")"
                        if allowed {
                            #expect(response.status == 200, "\(label): \(response.bodyString)")
                            let seen = gw.upstream.received().last?.header("X-User-Scopes") ?? "<none>"
                            // Least privilege: the upstream sees the role's scopes, never the claim's extra ones.
                            #expect(
                                Set(seen.split(separator: " ").map(String.init)) == Set(Self.roles[role] ?? []),
                                "\(label): \(seen)")
                        } else {
                            #expect(response.status == 403, "\(label)")
                            #expect(gw.upstream.received().isEmpty, "\(label) reached the upstream")
                            let reason =
                                route.roles.map { !$0.contains(role) } == true
                                ? "role_not_allowed" : "insufficient_scope"
                            #expect(
                                response.bodyString.contains(#""reason":"\#(reason)""#),
                                "\(label): \(response.bodyString)")
                            #expect(response.bodyString.contains(#""error":"insufficient_scope""#))
                            #expect(
                                response.header("WWW-Authenticate")?.hasPrefix(#"Bearer error="insufficient_scope""#)
                                    == true)
                        }
                    }
                }
            }
        }
    }

    @Test("a viewer token claiming admin:users is refused on an admin route; the 403 names the scope")
    func intersection() async throws {
        try await Self.withGateway { gw in
            let token = Self.token(role: "viewer", scopes: ["mcp:read", "admin:users"])
            let response = try await CurlClient.request(
                url: gw.url("/users-by-scope/x"),
                headers: [("Authorization", "Bearer \(token)")]
            )
            #expect(response.status == 403)
            #expect(response.header("WWW-Authenticate") == #"Bearer error="insufficient_scope", scope="admin:users""#)
            #expect(gw.upstream.received().isEmpty)
        }
    }

    @Test("an unknown role holds no scopes; a token with no role keeps its own scopes when it has none required")
    func unknownRole() async throws {
        try await Self.withGateway { gw in
            let intruder = Self.token(role: "superuser", scopes: ["mcp:read", "admin:users"])
            let response = try await CurlClient.request(
                url: gw.url("/mcp/x"), headers: [("Authorization", "Bearer \(intruder)")])
            #expect(response.status == 403)
        }
    }
}
