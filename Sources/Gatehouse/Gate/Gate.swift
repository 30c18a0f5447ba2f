/// The request pipeline of SPEC §3–6 as a pure function: normalise → route → method →
/// plan the upstream request. No sockets, no threads, no curl: the server, the tests and
/// `gatehouse explain` all run exactly this code.
public struct Gate: Sendable {
    public let runtime: Runtime

    public init(runtime: Runtime) {
        self.runtime = runtime
    }

    /// Facts every outcome needs (request id, real client address), settled first so
    /// that even a refused request is logged and answered with them.
    public func facts(for request: IncomingRequest) -> RequestFacts {
        var forwardedFor: [String] = []
        var requestIDCandidate: String?
        for field in request.headers {
            switch field.name.utf8.count {
            case 15 where field.name.equalsASCIICaseInsensitive("x-forwarded-for"): forwardedFor.append(field.value)
            case 12 where requestIDCandidate == nil && field.name.equalsASCIICaseInsensitive("x-request-id"):
                requestIDCandidate = field.value
            default: break
            }
        }
        let client = ClientAddress.resolve(
            peer: request.peer,
            forwardedFor: forwardedFor,
            trustedProxies: runtime.trustedProxies
        )
        return RequestFacts(requestID: RequestID.accepting(requestIDCandidate), client: client)
    }

    /// - Parameters:
    ///   - now: wall-clock seconds, for token and key expiry.
    ///   - monotonicNow: monotonic seconds, for rate-limit buckets and lock-outs.
    public func decide(
        _ request: IncomingRequest,
        facts: RequestFacts,
        now: Int64 = WallClock.seconds(),
        monotonicNow: Double = MonotonicClock.seconds()
    ) -> Decision {
        let target: NormalizedTarget
        switch PathNormalizer.normalize(target: request.target) {
        case .success(let normalized):
            target = normalized
        case .failure(.invalidPath):
            return .deny(
                Denial(
                    reason: .invalidPath, path: Self.rawPath(request.target), detail: "path refused by normalisation")
            )
        case .failure(.malformedRequest):
            return .deny(
                Denial(
                    reason: .malformedRequest,
                    path: Self.rawPath(request.target),
                    detail: "request target is not origin-form (/path?query)"
                )
            )
        }

        guard let match = runtime.router.match(path: target.path) else {
            return .deny(Denial(reason: .noRoute, path: target.path, detail: "no route matches \(target.path)"))
        }
        let route = match.route
        guard route.allows(method: request.method) else {
            return .deny(
                Denial(
                    reason: .methodNotAllowed,
                    headers: [("Allow", route.allowHeaderValue)],
                    route: route.name,
                    path: target.path,
                    detail: "route \(route.name) does not allow \(request.method)"
                )
            )
        }

        var identity: Identity?
        var rateLimit: RateLimitDecision?
        if route.auth != .none {
            // A client locked out for failed credentials gets no token work at all.
            let block = runtime.authFailures.isBlocked(ip: facts.client.ip, now: monotonicNow)
            if block.blocked {
                return .deny(
                    Denial(
                        reason: .clientBlocked,
                        headers: [("Retry-After", String(block.retryAfter))],
                        route: route.name,
                        path: target.path,
                        detail: "\(facts.client.ip) is blocked after repeated authentication failures"
                    )
                )
            }
            switch authenticate(
                request, route: route, path: target.path, now: now, monotonicNow: monotonicNow, client: facts.client.ip)
            {
            case .authenticated(let verified): identity = verified
            case .anonymous: identity = nil
            case .refused(let decision): return decision
            }
            let authorizer = runtime.authorizers[match.index]
            if let verified = identity {
                switch authorizer.authorize(identity: verified, method: request.method) {
                case .allowed(let effectiveScopes):
                    // Upstream sees what the caller may actually do, not what it claimed.
                    identity?.scopes = effectiveScopes
                case .refused(let reason, let required, let granted, let detail, let challenge):
                    var denial = Denial(
                        reason: reason,
                        headers: [("WWW-Authenticate", challenge)],
                        route: route.name,
                        path: target.path,
                        detail: detail,
                        identity: verified
                    )
                    denial.requiredScopes = required
                    denial.grantedScopes = granted
                    return .deny(denial)
                }
                if let verified = identity {
                    let decision = runtime.rateLimiter.consume(identity: verified, route: route.name, now: monotonicNow)
                    guard decision.allowed else {
                        var denial = Denial(
                            reason: .rateLimited,
                            headers: decision.headers,
                            route: route.name,
                            path: target.path,
                            detail: "\(verified.subject) is over policy \(decision.policy.name)",
                            identity: verified
                        )
                        denial.policy = decision.policy.name
                        return .deny(denial)
                    }
                    rateLimit = decision
                }
            } else if !authorizer.requirement.isUnrestricted {
                // An anonymous caller on an optional route cannot hold scopes or a role.
                return .deny(
                    Denial(
                        reason: .missingCredentials,
                        headers: [("WWW-Authenticate", #"Bearer realm="gatehouse""#)],
                        route: route.name,
                        path: target.path,
                        detail: "route \(route.name) needs a credential for \(request.method)"
                    )
                )
            }
        }

        let headers = RequestHeaderRewriter.rewrite(
            request.headers,
            context: .init(
                identityHeaderKeys: runtime.identityHeaderKeys,
                identityHeaderNames: runtime.config.identityHeaders,
                apiKeyHeaderKey: runtime.apiKeyHeaderKey,
                client: facts.client,
                requestID: facts.requestID,
                scheme: request.scheme,
                identity: identity,
                forwardAuthorization: route.forwardAuthorization,
                upstreamHeaders: route.upstreamHeaders
            )
        )
        var url = route.upstream.origin + match.upstreamPath
        if let query = target.query {
            url += "?"
            url += query
        }
        let upstream = UpstreamRequest(
            method: request.method,
            url: url,
            headers: headers,
            body: request.body,
            connectTimeoutMilliseconds: runtime.connectTimeoutMilliseconds
        )
        var plan = ForwardPlan(route: route, path: target.path, upstream: upstream, identity: identity)
        if let rateLimit {
            plan.responseHeaders = rateLimit.headers
            plan.ratePolicy = rateLimit.policy.name
        }
        if route.auth != .none {
            plan.requiredScopes = runtime.authorizers[match.index].requirement.requirement(for: request.method).scopes
        }
        return .forward(plan)
    }

    private enum AuthenticationOutcome {
        case authenticated(Identity)
        case anonymous
        case refused(Decision)
    }

    /// SPEC §3: find the credential, verify it; `auth = "optional"` lets a request without
    /// any credential through anonymously, never one whose credential fails.
    private func authenticate(
        _ request: IncomingRequest,
        route: RouteConfig,
        path: String,
        now: Int64,
        monotonicNow: Double,
        client: String
    ) -> AuthenticationOutcome {
        let credential = PresentedCredential.find(
            in: request.headers,
            apiKeyHeader: runtime.config.apiKeys.header,
            apiKeyPrefix: runtime.config.apiKeys.prefix
        )
        switch credential {
        case .ambiguous:
            return .refused(
                .deny(
                    Denial(
                        reason: .ambiguousCredentials,
                        route: route.name,
                        path: path,
                        detail: "two different credentials in one request"
                    )
                )
            )
        case .none:
            if route.auth == .optional { return .anonymous }
            return .refused(
                .deny(
                    Denial(
                        reason: .missingCredentials,
                        headers: [("WWW-Authenticate", #"Bearer realm="gatehouse""#)],
                        route: route.name,
                        path: path,
                        detail: "route \(route.name) requires a bearer token or API key"
                    )
                )
            )
        case .jwt, .apiKey, .emptyBearer:
            break
        }
        guard let authenticator = runtime.authenticator else {
            return .refused(
                .keysUnavailable(route: route.name, path: path, detail: "no credential verifier configured"))
        }
        switch authenticator.authenticate(credential, now: now) {
        case .failure(let failure):
            if failure.keysUnavailable {
                return .refused(.keysUnavailable(route: route.name, path: path, detail: failure.detail))
            }
            // A presented credential that failed: it counts toward the client's lock-out
            // (this one is still answered 401).
            runtime.authFailures.recordFailure(ip: client, now: monotonicNow)
            var denial = Self.unauthorized(failure, route: route, path: path)
            if case .jwt(let token) = credential { denial.tokenFingerprint = DenialRecord.fingerprint(token) }
            return .refused(.deny(denial))
        case .success(let identity):
            guard RequestHeaderRewriter.identityIsSafe(identity) else {
                let failure = AuthenticationFailure(
                    .malformedToken,
                    detail: "identity claims contain control characters",
                    issuer: identity.issuer,
                    subject: nil,
                    jti: identity.jti,
                    keyID: identity.keyID
                )
                var denial = Self.unauthorized(failure, route: route, path: path)
                if case .jwt(let token) = credential { denial.tokenFingerprint = DenialRecord.fingerprint(token) }
                return .refused(.deny(denial))
            }
            return .authenticated(identity)
        }
    }

    static func unauthorized(_ failure: AuthenticationFailure, route: RouteConfig, path: String) -> Denial {
        Denial(
            reason: failure.reason,
            headers: [("WWW-Authenticate", #"Bearer realm="gatehouse", error="invalid_token""#)],
            route: route.name,
            path: path,
            detail: failure.detail,
            authentication: failure
        )
    }

    /// The path part of a raw target, for logging a target that could not be normalised.
    static func rawPath(_ target: String) -> String {
        guard let question = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target }
        return String(target[..<question])
    }
}
