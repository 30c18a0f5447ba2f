import Foundation
import Gatehouse
import NIOCore
import NIOPosix

/// A real `GatewayServer` on 127.0.0.1 (ephemeral ports) in front of a real `TestUpstream`,
/// forwarding through real libcurl.
struct GatewayFixture: Sendable {
    let server: GatewayServer
    let upstream: TestUpstream

    var port: Int { server.publicPort }
    var adminPort: Int { server.adminPort ?? 0 }

    func url(_ pathAndQuery: String) -> String { "http://127.0.0.1:\(port)\(pathAndQuery)" }

    /// Routes every fixture has. `/dead` points at a port nothing listens on.
    static func standardRoutes(upstreamPort: Int, closedPort: Int) -> [RouteConfig] {
        func upstream(_ base: String, port: Int = upstreamPort) -> UpstreamURL {
            UpstreamURL(scheme: "http", host: "127.0.0.1", port: port, basePath: base)
        }
        return [
            RouteConfig(name: "api", path: "/api", upstream: upstream(""), auth: .none),
            RouteConfig(name: "github", path: "/mcp/github", upstream: upstream("/mcp"), auth: .none),
            RouteConfig(
                name: "limited", path: "/limited", methods: ["GET", "POST"], upstream: upstream(""), auth: .none),
            RouteConfig(name: "dead", path: "/dead", upstream: upstream("", port: closedPort), auth: .none),
        ]
    }

    /// `server.upstream_threads` values for tests that must hold in both ways the gateway
    /// drives libcurl: 0, on the event loop's own engine (the default), and 1, on a
    /// dedicated curl thread that hands results back to the loop.
    static let upstreamThreadModes = [0, 1]

    /// - Parameter upstreamThreads: `server.upstream_threads`; 0 (as shipped) runs libcurl
    ///   on the event loop, see `upstreamThreadModes`.
    static func with<T: Sendable>(
        upstreamThreads: Int = 0,
        configure: @Sendable (inout GatewayConfig) -> Void = { _ in },
        _ body: @Sendable (GatewayFixture) async throws -> T
    ) async throws -> T {
        try await TestUpstream.with { upstream in
            let closed = try await closedPort()
            var config = GatewayConfig(routes: standardRoutes(upstreamPort: upstream.port, closedPort: closed))
            config.server.listen = ListenAddress(host: "127.0.0.1", port: 0)
            config.admin.listen = ListenAddress(host: "127.0.0.1", port: 0)
            config.logs.access = .off
            config.server.eventLoops = 1
            config.server.upstreamThreads = upstreamThreads
            // Limits out of the way unless a test sets its own: suites send many requests,
            // and many bad credentials, from one identity and one address.
            config.rateLimits.defaultPolicy = RateLimitPolicy(name: "default", requests: 1_000_000, per: .seconds(1))
            config.rateLimits.authFailures = AuthFailureSettings(max: 1_000_000, per: .seconds(60), block: .seconds(1))
            configure(&config)
            let server = try GatewayServer(config: config)
            try await server.start()
            let fixture = GatewayFixture(server: server, upstream: upstream)
            do {
                let result = try await body(fixture)
                await server.shutdown()
                return result
            } catch {
                await server.shutdown()
                throw error
            }
        }
    }

    /// A loopback port that was free a moment ago and has no listener now, for configs
    /// handed to the real binary. Picked below the kernel's ephemeral range (32768+), so
    /// the many client connections tests open in parallel cannot take it in the meantime.
    static func closedPort() async throws -> Int {
        for _ in 0..<50 {
            let candidate = Int.random(in: 20_000..<32_000)
            guard
                let channel = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .bind(host: "127.0.0.1", port: candidate)
                    .get()
            else { continue }
            try await channel.close()
            return candidate
        }
        throw FixtureError.noFreePort
    }
}

enum FixtureError: Error {
    case noFreePort
}

extension Array where Element == (String, String) {
    func values(_ name: String) -> [String] {
        filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
}
