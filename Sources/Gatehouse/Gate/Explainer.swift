/// `gatehouse explain`: the gate's own decision for one request, told step by step. It
/// builds a runtime from the config exactly as `serve` does (key files, JWKS fetched once,
/// the key store's current snapshot) and runs `Gate.decide`; every line printed is read
/// from that decision, not recomputed.
public struct Explanation: Sendable {
    public struct Step: Sendable {
        public var label: String
        public var text: String
    }

    public var steps: [Step] = []
    public var decision: Decision?

    mutating func add(_ label: String, _ text: String) {
        steps.append(Step(label: label, text: text))
    }
}

public enum Explainer {
    public static func explain(
        config: GatewayConfig,
        method: String,
        target: String,
        token: String?,
        apiKey: String?,
        clientIP: String,
        now: Int64 = WallClock.seconds()
    ) throws(ConfigErrors) -> Explanation {
        let verifier = APIKeyVerifier(prefix: config.apiKeys.prefix)
        var explanation = Explanation()
        do {
            let store = try APIKeyStore(path: config.apiKeys.store, prefix: config.apiKeys.prefix)
            verifier.replace(try store.snapshot())
        } catch {
            explanation.add(
                "key store", "cannot read \(config.apiKeys.store): \(error) — API keys and revocations unknown")
        }
        let setup = try CredentialSetup.build(config, apiKeys: verifier)
        for source in setup.jwksSources {
            switch HTTPFetch.get(source.url) {
            case .success(let body):
                if let set = try? KeyLoading.parseJWKS(body, source: source.url) { source.keys.replaceJWKS(set.keys) }
            case .failure(let failure):
                explanation.add("jwks", "\(source.issuer): \(source.url) could not be fetched (\(failure))")
            }
        }
        let runtime = Runtime(config: config, authenticator: setup.authenticator)
        let gate = Gate(runtime: runtime)
        var headers: [(name: String, value: String)] = [("Host", "explain")]
        if let token { headers.append(("Authorization", "Bearer " + token)) }
        if let apiKey { headers.append((config.apiKeys.header, apiKey)) }
        let request = IncomingRequest(
            method: method,
            target: target,
            headers: headers,
            peer: IPAddress.parse(clientIP)
        )
        let facts = gate.facts(for: request)
        explanation.add("request", "\(method) \(target) from \(facts.client.ip)")
        switch PathNormalizer.normalize(target: target) {
        case .success(let normalized):
            explanation.add("path", "normalised to \(normalized.path)")
        case .failure(let rejection):
            explanation.add("path", "refused by normalisation (\(rejection))")
        }
        let decision = gate.decide(request, facts: facts, now: now)
        explanation.decision = decision
        switch decision {
        case .forward(let plan):
            explanation.add("route", "\(plan.route.name) (\(plan.route.path), auth \(plan.route.auth.rawValue))")
            if let identity = plan.identity {
                explanation.add("credential", describe(identity))
                explanation.add(
                    "scopes",
                    "required [\(plan.requiredScopes.joined(separator: " "))], granted [\(identity.scopes.joined(separator: " "))]"
                )
            } else {
                explanation.add(
                    "credential", plan.route.auth == .none ? "not checked (auth = none)" : "none presented (anonymous)")
            }
            if let policy = plan.ratePolicy {
                explanation.add(
                    "rate limit",
                    "policy \(policy): \(plan.responseHeaders.map { "\($0.name): \($0.value)" }.joined(separator: "; "))"
                )
            }
            explanation.add("upstream", "\(plan.upstream.method) \(plan.upstream.url)")
            explanation.add("verdict", "FORWARD")
        case .deny(let denial):
            if let route = denial.route {
                explanation.add("route", route)
            } else {
                explanation.add("route", "none matched")
            }
            if let identity = denial.identity { explanation.add("credential", describe(identity)) }
            if let failure = denial.authentication {
                explanation.add("credential", "refused: \(failure.logReason) — \(failure.detail)")
            }
            if let required = denial.requiredScopes {
                explanation.add(
                    "scopes",
                    "required [\(required.joined(separator: " "))], granted [\((denial.grantedScopes ?? []).joined(separator: " "))]"
                )
            }
            if let policy = denial.policy { explanation.add("rate limit", "policy \(policy)") }
            explanation.add(
                "verdict",
                "DENY \(denial.reason.status) \(denial.reason.error) (reason \(denial.logReason)): \(denial.detail)")
        case .keysUnavailable(let route, _, let detail):
            explanation.add("route", route)
            explanation.add("verdict", "503 keys_unavailable: \(detail)")
        }
        return explanation
    }

    private static func describe(_ identity: Identity) -> String {
        var parts = ["\(identity.method.rawValue) for \(identity.subject)"]
        if let role = identity.role { parts.append("role \(role)") }
        if let org = identity.org { parts.append("org \(org)") }
        if let keyID = identity.keyID { parts.append("key \(keyID)") }
        if let issuer = identity.issuer { parts.append("issuer \(issuer)") }
        return "valid: " + parts.joined(separator: ", ")
    }
}
