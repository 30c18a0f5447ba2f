import Foundation
import Gatehouse
import Testing

/// Routes the authentication tests add to a `GatewayFixture`, all in front of its upstream:
///
/// - `/secure` — `auth = required`;
/// - `/open` — `auth = optional`;
/// - `/passthru` — `auth = required`, `forward_authorization = true`.
enum AuthRoutes {
    static func install(into config: inout GatewayConfig) {
        // The fixture's standard routes all point at its TestUpstream; reuse that origin.
        let origin = config.routes[0].upstream
        let upstream = UpstreamURL(scheme: origin.scheme, host: origin.host, port: origin.port, basePath: "")
        config.routes += [
            RouteConfig(name: "secure", path: "/secure", upstream: upstream, auth: .required),
            RouteConfig(name: "open", path: "/open", upstream: upstream, auth: .optional),
            RouteConfig(
                name: "passthru", path: "/passthru", upstream: upstream, auth: .required, forwardAuthorization: true),
        ]
    }
}

/// Seconds since the epoch, as JWT NumericDates are written.
func unixNow() -> Int { Int(Date().timeIntervalSince1970) }

/// The identity header names of SPEC §2's defaults (what the fixture's config uses).
enum IdentityHeader {
    static let subject = "X-User-Id"
    static let email = "X-User-Email"
    static let org = "X-Org-Id"
    static let role = "X-User-Role"
    static let scopes = "X-User-Scopes"
    static let authMethod = "X-Auth-Method"
    static let keyID = "X-Api-Key-Id"
    static let all = [subject, email, org, role, scopes, authMethod, keyID]
}

extension RecordedRequest {
    /// Every value sent under `name` or any spelling that differs only in case or in `_`
    /// for `-` (what a lax upstream framework would read as the same header).
    func identityValues(_ name: String) -> [String] {
        let wanted = name.lowercased().replacingOccurrences(of: "_", with: "-")
        return headers.filter { $0.0.lowercased().replacingOccurrences(of: "_", with: "-") == wanted }.map(\.1)
    }
}

extension CurlResponse {
    /// The gateway's own JSON error body (SPEC §7), if the body is one.
    var errorBody: [String: String]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        return object.compactMapValues { $0 as? String }
    }

    var reason: String? { errorBody?["reason"] }
    var errorCode: String? { errorBody?["error"] }
}

enum AuthExpect {
    static let invalidTokenChallenge = #"Bearer realm="gatehouse", error="invalid_token""#

    /// A 401 `invalid_token` refusal per SPEC §7, with one of `reasons` and the challenge.
    static func unauthorized(
        _ response: CurlResponse,
        reasons: [String],
        _ label: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(
            response.status == 401, "\(label): status \(response.status) body \(response.bodyString)",
            sourceLocation: sourceLocation)
        #expect(
            response.errorCode == "invalid_token", "\(label): \(response.bodyString)", sourceLocation: sourceLocation)
        #expect(
            reasons.contains(response.reason ?? "<none>"),
            "\(label): reason \(response.reason ?? "<none>"), expected \(reasons.joined(separator: " or "))",
            sourceLocation: sourceLocation)
        let challenges = response.headerValues("WWW-Authenticate")
        if reasons == ["missing_credentials"] {
            #expect(
                challenges == [#"Bearer realm="gatehouse""#], "\(label): \(challenges)", sourceLocation: sourceLocation)
        } else {
            #expect(challenges == [invalidTokenChallenge], "\(label): \(challenges)", sourceLocation: sourceLocation)
        }
        #expect(
            response.header("Content-Type")?.hasPrefix("application/json") == true, "\(label)",
            sourceLocation: sourceLocation)
        #expect(response.header("Cache-Control") == "no-store", "\(label)", sourceLocation: sourceLocation)
        #expect(
            response.errorBody?["request_id"] == response.header("X-Request-Id"), "\(label)",
            sourceLocation: sourceLocation)
    }
}
