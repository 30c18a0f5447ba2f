import Testing

@testable import Gatehouse

private func makeGate(trusted: [String] = ["127.0.0.1/32"]) -> Gate {
    var server = ServerSettings()
    server.trustedProxies = trusted.compactMap(CIDR.parse)
    let routes = [
        RouteConfig(
            name: "github",
            path: "/mcp/github",
            methods: ["GET", "POST"],
            upstream: UpstreamURL(scheme: "http", host: "127.0.0.1", port: 3001, basePath: "/mcp"),
            auth: .none
        ),
        RouteConfig(
            name: "v6",
            path: "/v6",
            upstream: UpstreamURL(scheme: "https", host: "::1", port: 8443, basePath: ""),
            auth: .none
        ),
    ]
    return Gate(runtime: Runtime(config: GatewayConfig(server: server, routes: routes)))
}

private func request(
    _ target: String,
    method: String = "GET",
    headers: [(name: String, value: String)] = [],
    peer: String = "203.0.113.7"
) -> IncomingRequest {
    IncomingRequest(method: method, target: target, headers: headers, peer: IPAddress.parse(peer))
}

private func decide(_ gate: Gate, _ request: IncomingRequest) -> Decision {
    gate.decide(request, facts: gate.facts(for: request))
}

@Suite struct GateTests {
    @Test func forwardsWithRewrittenPathAndRawQuery() throws {
        let gate = makeGate()
        guard case .forward(let plan) = decide(gate, request("/mcp/github/a/../b?x=%00&y=1")) else {
            Issue.record("expected forward")
            return
        }
        #expect(plan.route.name == "github")
        #expect(plan.path == "/mcp/github/b")
        #expect(plan.upstream.url == "http://127.0.0.1:3001/mcp/b?x=%00&y=1")
    }

    @Test func ipv6UpstreamGetsBrackets() {
        guard case .forward(let plan) = decide(makeGate(), request("/v6/x")) else {
            Issue.record("expected forward")
            return
        }
        #expect(plan.upstream.url == "https://[::1]:8443/x")
    }

    @Test(arguments: [
        ("/nothing", DenialReason.noRoute, 404),
        ("/mcp/githubx", .noRoute, 404),
        ("/mcp/github/%2e%2e%3bx", .invalidPath, 400),
        ("/mcp/github/../../..", .invalidPath, 400),
        ("http://evil.example/mcp/github", .malformedRequest, 400),
        ("*", .malformedRequest, 400),
    ])
    func refusals(target: String, reason: DenialReason, status: Int) {
        guard case .deny(let denial) = decide(makeGate(), request(target)) else {
            Issue.record("expected a denial for \(target)")
            return
        }
        #expect(denial.reason == reason)
        #expect(denial.reason.status == status)
        #expect(!denial.path.contains("?"))
    }

    @Test func methodNotAllowedCarriesAllow() {
        guard case .deny(let denial) = decide(makeGate(), request("/mcp/github/x", method: "DELETE")) else {
            Issue.record("expected 405")
            return
        }
        #expect(denial.reason == .methodNotAllowed)
        #expect(denial.route == "github")
        #expect(denial.headers.first { $0.name == "Allow" }?.value == "GET, POST, HEAD")
    }

    @Test func deniedPathKeepsRawFormWithoutQuery() {
        guard case .deny(let denial) = decide(makeGate(), request("/a/%00b?token=secret")) else {
            Issue.record("expected 400")
            return
        }
        #expect(denial.path == "/a/%00b")
    }

    @Test func requestIDFromClientOnlyWhenWellFormed() {
        let gate = makeGate()
        #expect(
            gate.facts(for: request("/", headers: [("X-Request-Id", "abc-123:x.y_z")])).requestID == "abc-123:x.y_z")
        let replaced = gate.facts(for: request("/", headers: [("x-request-id", "bad id\u{7}")])).requestID
        #expect(replaced.count == 32 && replaced.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        let tooLong = String(repeating: "a", count: 129)
        #expect(gate.facts(for: request("/", headers: [("X-Request-Id", tooLong)])).requestID != tooLong)
    }
}

@Suite struct RequestHeaderRewriterTests {
    private func upstreamHeaders(
        _ headers: [(name: String, value: String)],
        peer: String = "203.0.113.7"
    ) -> [(name: String, value: String)] {
        let gate = makeGate()
        guard case .forward(let plan) = decide(gate, request("/mcp/github", headers: headers, peer: peer)) else {
            return []
        }
        return plan.upstream.headers
    }

    private func values(_ headers: [(name: String, value: String)], _ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    @Test func identityHeadersStrippedInEveryCaseAndSpelling() {
        let spoofed: [(name: String, value: String)] = [
            ("X-User-Id", "a"), ("x-user-id", "b"), ("X_USER_ID", "c"), ("x_user-Id", "d"), ("X-User-Email", "e"),
            ("X-Org-Id", "f"), ("X-User-Role", "admin"), ("X-User-Scopes", "admin:users"), ("X-Auth-Method", "jwt"),
            ("X-Api-Key-Id", "k"), ("X-Kept", "yes"),
        ]
        let out = upstreamHeaders(spoofed)
        for name in IdentityHeaderNames().all { #expect(values(out, name).isEmpty, "\(name) reached upstream") }
        #expect(!out.contains { $0.name.replacingOccurrences(of: "_", with: "-").lowercased().hasPrefix("x-user-") })
        #expect(values(out, "X-Kept") == ["yes"])
    }

    @Test func hopByHopAndConnectionNamedRemoved() {
        let out = upstreamHeaders([
            ("Connection", "keep-alive, X-Secret-Hop"), ("X-Secret-Hop", "1"), ("Keep-Alive", "timeout=5"),
            ("Proxy-Authorization", "Basic x"), ("TE", "trailers"), ("Trailer", "X"), ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"), ("Proxy-Connection", "keep-alive"), ("Content-Length", "5"),
            ("Expect", "100-continue"),
            ("Host", "gw.example:8080"), ("Authorization", "Bearer secret"), ("traceparent", "00-abc-def-01"),
        ])
        for name in [
            "Connection", "X-Secret-Hop", "Keep-Alive", "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding",
            "Upgrade", "Proxy-Connection", "Content-Length", "Expect", "Host", "Authorization",
        ] {
            #expect(values(out, name).isEmpty, "\(name) reached upstream")
        }
        #expect(values(out, "traceparent") == ["00-abc-def-01"])
        #expect(values(out, "X-Forwarded-Host") == ["gw.example:8080"])
    }

    @Test func untrustedPeerForwardingClaimsReplaced() {
        let out = upstreamHeaders(
            [
                ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Host", "evil"), ("X-Forwarded-Proto", "https"),
                ("Host", "h:1"),
            ],
            peer: "198.51.100.9"
        )
        #expect(values(out, "X-Forwarded-For") == ["198.51.100.9"])
        #expect(values(out, "X-Forwarded-Host") == ["h:1"])
        #expect(values(out, "X-Forwarded-Proto") == ["http"])
    }

    @Test func trustedPeerChainExtended() {
        let out = upstreamHeaders(
            [
                ("X-Forwarded-For", "1.2.3.4, 10.0.0.1"), ("X-Forwarded-Host", "public.example"),
                ("X-Forwarded-Proto", "https"),
            ],
            peer: "127.0.0.1"
        )
        #expect(values(out, "X-Forwarded-For") == ["1.2.3.4, 10.0.0.1, 127.0.0.1"])
        #expect(values(out, "X-Forwarded-Host") == ["public.example"])
        #expect(values(out, "X-Forwarded-Proto") == ["https"])
    }
}

@Suite struct ClientAddressTests {
    private let trusted = ["127.0.0.1/32", "10.0.0.0/8", "::1/128"].compactMap(CIDR.parse)

    @Test func untrustedPeerIsTheClient() {
        let result = ClientAddress.resolve(
            peer: IPAddress.parse("203.0.113.7"), forwardedFor: ["1.1.1.1"], trustedProxies: trusted)
        #expect(result.ip == "203.0.113.7")
        #expect(result.forwardedFor == "203.0.113.7")
        #expect(!result.peerIsTrusted)
    }

    @Test func rightmostUntrustedAddressWins() {
        let result = ClientAddress.resolve(
            peer: IPAddress.parse("127.0.0.1"),
            forwardedFor: ["6.6.6.6, 203.0.113.7", "10.1.2.3"],
            trustedProxies: trusted
        )
        #expect(result.ip == "203.0.113.7")
        #expect(result.forwardedFor == "6.6.6.6, 203.0.113.7, 10.1.2.3, 127.0.0.1")
    }

    @Test func garbageStopsTheWalk() {
        let result = ClientAddress.resolve(
            peer: IPAddress.parse("127.0.0.1"),
            forwardedFor: ["6.6.6.6, not-an-ip, 10.0.0.5"],
            trustedProxies: trusted
        )
        #expect(result.ip == "10.0.0.5")
    }

    @Test func trustedPeerWithoutChainIsTheClient() {
        let result = ClientAddress.resolve(peer: IPAddress.parse("::1"), forwardedFor: [], trustedProxies: trusted)
        #expect(result.ip == "::1")
        #expect(result.forwardedFor == "::1")
    }

    @Test func mappedIPv4PeerMatchesIPv4Range() {
        let result = ClientAddress.resolve(
            peer: IPAddress.parse("::ffff:127.0.0.1"),
            forwardedFor: ["198.51.100.1"],
            trustedProxies: trusted
        )
        #expect(result.peerIsTrusted)
        #expect(result.ip == "198.51.100.1")
    }
}

@Suite struct LogFormattingTests {
    @Test func jsonEscapesControlAndQuotes() {
        var json = JSONObjectWriter()
        json.field("a", "x\"y\\z\n\u{1}é")
        json.field("n", nil as String?)
        json.field("list", ["p", "q\"r"])
        #expect(json.finish() == #"{"a":"x\"y\\z\n\u0001é","n":null,"list":["p","q\"r"]}"#)
    }

    @Test func timestampIsRFC3339UTCWithMilliseconds() {
        #expect(Timestamp.format(seconds: 1_795_000_000, milliseconds: 7) == "2026-11-18T11:06:40.007Z")
        #expect(Timestamp.now().count == 24)
    }

    @Test func responseHopByHopFilter() {
        let filtered = HopByHopHeaders.filterResponse([
            ("Connection", "close, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "x"), ("Transfer-Encoding", "chunked"),
            ("Proxy-Authenticate", "x"), ("Upgrade", "h2c"), ("Trailer", "X"), ("Content-Length", "3"), ("X-Kept", "y"),
        ])
        #expect(filtered.map(\.name) == ["Content-Length", "X-Kept"])
    }

    @Test(
        "Connection tokens: commas, blanks and empty items in any mix",
        arguments: [
            ("keep-alive", []),
            ("", []),
            (",,", []),
            ("X-A", ["x-a"]),
            (" X-A ,\tx-b\t, ,keep-alive,close", ["x-a", "x-b", "close"]),
            (",x-c,", ["x-c"]),
        ] as [(String, [String])])
    func connectionTokens(value: String, expected: [String]) {
        #expect(HopByHopHeaders.namedInConnection([("connection", value), ("Other", "a, b")]) == Set(expected))
    }

    @Test("comma-separated tokens: trimmed, empty ones skipped")
    func listTokens() {
        var tokens: [String] = []
        HopByHopHeaders.forEachListToken(in: " a ,, b\t,\tc d ,") { tokens.append(String($0)) }
        #expect(tokens == ["a", "b", "c d"])
        tokens = []
        HopByHopHeaders.forEachListToken(in: "") { tokens.append(String($0)) }
        HopByHopHeaders.forEachListToken(in: " , ,") { tokens.append(String($0)) }
        #expect(tokens.isEmpty)
        HopByHopHeaders.forEachListToken(in: "ünï, x") { tokens.append(String($0)) }
        #expect(tokens == ["ünï", "x"])
    }
}
