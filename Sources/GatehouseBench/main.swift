import Crypto
import Foundation
import Gatehouse
import NIOConcurrencyHelpers
import _CryptoExtras

// Micro benchmarks of the per-request work. Every figure is printed with a reference
// measured in the same run (absolute numbers drift on shared 2-core machines):
// - JWT verification against the bare signature check of the same algorithm (the floor
//   no verifier can beat), cold (every token new to the cache) and cached;
// - path normalisation and routing against a plain string copy of the same path.
// Every loop is bounded by a time budget. Build with -c release (`make bench`).

let budget = Double(CommandLine.arguments.dropFirst().first ?? "") ?? 1.0

func measure(_ label: String, _ body: (Int) -> Void) -> Double {
    var iterations = 0
    let start = DispatchTime.now().uptimeNanoseconds
    var elapsed: UInt64 = 0
    while elapsed < UInt64(budget * 1e9) {
        for _ in 0..<64 { body(iterations); iterations += 1 }
        elapsed = DispatchTime.now().uptimeNanoseconds - start
    }
    let perOp = Double(elapsed) / Double(iterations) / 1000
    let padded = label.padding(toLength: 48, withPad: " ", startingAt: 0)
    print(padded + String(format: "%10.2f µs/op  %12.0f ops/s", perOp, 1e6 / perOp))
    return perOp
}

func b64(_ bytes: [UInt8]) -> String { Base64URL.encode(bytes) }
func json(_ object: [String: Any]) -> [UInt8] {
    Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
}

let now = Int64(Date().timeIntervalSince1970)
let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gh-bench-\(getpid())")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }

let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
let ec = P256.Signing.PrivateKey()
let secret = SymmetricKey(data: Array(repeating: UInt8(7), count: 64))
let rsaPath = directory.appendingPathComponent("rsa.pem").path
let ecPath = directory.appendingPathComponent("ec.pem").path
let secretPath = directory.appendingPathComponent("hs.secret").path
try rsa.publicKey.pemRepresentation.write(toFile: rsaPath, atomically: true, encoding: .utf8)
try ec.publicKey.pemRepresentation.write(toFile: ecPath, atomically: true, encoding: .utf8)
try Data(Array(repeating: UInt8(7), count: 64)).write(to: URL(fileURLWithPath: secretPath))

var issuer = IssuerConfig(issuer: "https://auth.bench", audiences: ["bench"], algorithms: [.rs256, .es256])
issuer.keys = [KeyFileReference(path: rsaPath, kid: "rsa"), KeyFileReference(path: ecPath, kid: "ec")]
var hsIssuer = IssuerConfig(issuer: "https://hs.bench", audiences: ["bench"], algorithms: [.hs256])
hsIssuer.hs256SecretFile = secretPath
var config = GatewayConfig(
    issuers: [issuer, hsIssuer],
    apiKeys: APIKeySettings(store: directory.appendingPathComponent("keys.db").path),
    routes: []
)
config.routes = []
let setup = try CredentialSetup.build(config, apiKeys: APIKeyVerifier(prefix: "ghk"))
let authenticator = setup.authenticator

func token(alg: String, kid: String, iss: String, sub: String) throws -> (
    String, signingInput: [UInt8], signature: [UInt8]
) {
    let header = b64(json(["alg": alg, "typ": "JWT", "kid": kid]))
    let payload = b64(
        json([
            "iss": iss, "aud": "bench", "sub": sub, "email": "\(sub)@bench", "org": "org-1", "role": "developer",
            "scope": "mcp:read mcp:write", "iat": now, "exp": now + 3600,
        ])
    )
    let input = Array((header + "." + payload).utf8)
    let signature: [UInt8]
    switch alg {
    case "RS256": signature = Array(try rsa.signature(for: input, padding: .insecurePKCS1v1_5).rawRepresentation)
    case "ES256": signature = Array(try ec.signature(for: input).rawRepresentation)
    default: signature = Array(HMAC<SHA256>.authenticationCode(for: input, using: secret))
    }
    return (header + "." + payload + "." + b64(signature), input, signature)
}

print("JWT verification (cold = a token the cache has never seen; reference = bare signature check)")
for (alg, kid, iss) in [
    ("RS256", "rsa", "https://auth.bench"), ("ES256", "ec", "https://auth.bench"), ("HS256", "", "https://hs.bench"),
] {
    let pool = try (0..<2000).map { try token(alg: alg, kid: kid, iss: iss, sub: "user-\($0)") }
    let (sample, input, signature) = pool[0]
    let reference = measure("\(alg) bare signature check (reference)") { _ in
        switch alg {
        case "RS256":
            _ = rsa.publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: input, padding: .insecurePKCS1v1_5)
        case "ES256":
            _ = (try? P256.Signing.ECDSASignature(rawRepresentation: signature)).map {
                ec.publicKey.isValidSignature($0, for: input)
            }
        default:
            _ = HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: secret)
        }
    }
    // Cold: a fresh authenticator per pass over the pool, so no token is cached.
    var cold = try CredentialSetup.build(config, apiKeys: APIKeyVerifier(prefix: "ghk")).authenticator
    let coldCost = measure("\(alg) full verification, cold") { i in
        if i % pool.count == 0 {
            cold = (try? CredentialSetup.build(config, apiKeys: APIKeyVerifier(prefix: "ghk")).authenticator) ?? cold
        }
        guard case .success = cold.authenticate(.jwt(pool[i % pool.count].0), now: now) else {
            fatalError("token refused")
        }
    }
    _ = authenticator.authenticate(.jwt(sample), now: now)
    let cachedCost = measure("\(alg) full verification, cached") { _ in
        guard case .success = authenticator.authenticate(.jwt(sample), now: now) else { fatalError("token refused") }
    }
    print(
        String(
            format: "    cold / reference = %.2f   cached / cold = %.3f", coldCost / reference, cachedCost / coldCost))
}

print("Path normalisation and routing (reference = copying the path into a new String)")
let routes = (0..<50).map {
    RouteConfig(
        name: "r\($0)", path: "/svc\($0)/api",
        upstream: UpstreamURL(scheme: "http", host: "127.0.0.1", port: 1, basePath: ""), auth: .none)
}
let router = Router(routes: routes)
let paths = ["/svc7/api/users/42?x=1", "/svc49/api//a/./b/../c", "/svc3/api/%7Euser/files"]
let copyCost = measure("String copy of the target (reference)") { i in
    _ = String(decoding: Array(paths[i % 3].utf8), as: UTF8.self)
}
let normalizeCost = measure("PathNormalizer.normalize") { i in _ = PathNormalizer.normalize(target: paths[i % 3]) }
let routeCost = measure("Router.match (50 routes)") { i in _ = router.match(path: "/svc\(i % 50)/api/x") }
print(
    String(format: "    normalise / copy = %.2f   route / copy = %.2f", normalizeCost / copyCost, routeCost / copyCost))

print("Denial log (reference = writing the same pre-encoded lines straight to a file)")
let sample = DenialRecord(
    requestID: "0af7651916cd43dd8448eb211c80319c", clientIP: "203.0.113.7", method: "POST", path: "/mcp/github",
    route: "github-mcp", status: 403, reason: "insufficient_scope",
    identity: Identity(method: .jwt, subject: "user-123", email: "u@example.com", org: "org-1", role: "viewer"),
    authentication: nil, tokenFingerprint: "0123456789abcdef", requiredScopes: ["mcp:write"],
    grantedScopes: ["mcp:read"],
    policy: nil, detail: "route github-mcp needs mcp:write for POST"
)
let encoded = Array((sample.jsonLine(timestamp: Timestamp.now()) + "\n").utf8)
let rawPath = directory.appendingPathComponent("raw.jsonl").path
_ = FileManager.default.createFile(atPath: rawPath, contents: nil)
let rawHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: rawPath))
var pending: [UInt8] = []
let rawCost = measure("pre-encoded line appended to a file (reference)") { _ in
    pending += encoded
    if pending.count > 64 * 1024 {
        rawHandle.write(Data(pending))
        pending.removeAll(keepingCapacity: true)
    }
}
try rawHandle.close()
let denialLog = try DenialLog(path: directory.appendingPathComponent("denials.jsonl").path, maxBytes: 1 << 40, keep: 0)
let logCost = measure("DenialLog.record (encode + buffered write)") { _ in denialLog.record(sample) }
let closeStart = DispatchTime.now().uptimeNanoseconds
denialLog.close()
print(
    String(
        format:
            "    log / reference = %.2f   (final flush %.1f ms; nothing dropped: producers wait when the buffer is full)",
        logCost / rawCost, Double(DispatchTime.now().uptimeNanoseconds - closeStart) / 1e6))

print("Rate limiter (reference = one dictionary update under a lock)")
let limiter = RateLimiter(settings: RateLimitSettings(), routes: [])
let policy = RateLimitPolicy(name: "default", requests: 1_000_000_000, per: .seconds(1))
let referenceBox = NIOLockedValueBox<[String: Double]>([:])
let keys = (0..<100_000).map { "user-\($0)" }
let dictCost = measure("locked dictionary update (reference)") { i in
    referenceBox.withLockedValue { $0[keys[i % keys.count], default: 0] += 1 }
}
let limiterCost = measure("RateLimiter.consume (100k identities)") { i in
    _ = limiter.consume(key: keys[i % keys.count], policy: policy, now: MonotonicClock.seconds())
}
print(String(format: "    consume / reference = %.2f", limiterCost / dictCost))

print("The whole gate per request: route, credential, scopes, rate limit, upstream headers")
print("(reference = copying the request's header list into new Strings)")
var gateConfig = config
gateConfig.routes = [
    RouteConfig(
        name: "open", path: "/open", upstream: UpstreamURL(scheme: "http", host: "127.0.0.1", port: 1, basePath: ""),
        auth: .none),
    RouteConfig(
        name: "mcp", path: "/mcp", upstream: UpstreamURL(scheme: "http", host: "127.0.0.1", port: 1, basePath: ""),
        scopes: ["mcp:read"]),
]
gateConfig.rateLimits.defaultPolicy = RateLimitPolicy(name: "default", requests: 1_000_000_000, per: .seconds(1))
let gateRuntime = Runtime(
    config: gateConfig,
    authenticator: try CredentialSetup.build(gateConfig, apiKeys: APIKeyVerifier(prefix: "ghk")).authenticator)
let gate = Gate(runtime: gateRuntime)
let hsToken = try token(alg: "HS256", kid: "", iss: "https://hs.bench", sub: "user-1").0
let browserHeaders: [(name: String, value: String)] = [
    ("Host", "gateway.example"), ("User-Agent", "bench/1.0"), ("Accept", "application/json, text/event-stream"),
    ("Content-Type", "application/json"), ("X-User-Id", "spoofed"), ("traceparent", "00-0af7651916cd43dd-01"),
    ("Mcp-Session-Id", "3f2a9c"),
]
let peer = IPAddress.parse("127.0.0.1")
let headerCopyCost = measure("header list copied into new Strings (reference)") { _ in
    _ = browserHeaders.map { (name: String(decoding: Array($0.name.utf8), as: UTF8.self), value: $0.value) }
}
let openRequest = IncomingRequest(method: "POST", target: "/open/tools/call", headers: browserHeaders, peer: peer)
let openCost = measure("Gate.decide, no-auth route") { _ in
    guard case .forward = gate.decide(openRequest, facts: gate.facts(for: openRequest), now: now) else {
        fatalError("refused")
    }
}
let jwtRequest = IncomingRequest(
    method: "POST", target: "/mcp/tools/call", headers: browserHeaders + [("Authorization", "Bearer " + hsToken)],
    peer: peer)
let jwtCost = measure("Gate.decide, JWT route, cached token") { _ in
    guard case .forward = gate.decide(jwtRequest, facts: gate.facts(for: jwtRequest), now: now) else {
        fatalError("refused")
    }
}
print(
    String(
        format: "    no-auth / reference = %.2f   JWT / reference = %.2f", openCost / headerCopyCost,
        jwtCost / headerCopyCost))
