import Foundation
import Testing

@testable import Gatehouse

// `[rate_limits]` and the routes' `rate_limit` (SPEC §2, §5).

/// A protected route (line 1 is `[[routes]]`), then `extra` lines inside it.
private func route(_ extra: String = "", name: String = "api", auth: String = "required") -> String {
    """
    [[routes]]
    name = "\(name)"
    path = "/\(name)"
    upstream = "http://127.0.0.1:3001/"
    auth = "\(auth)"
    \(extra)

    """
}

/// The single error at `keyPath`, checked to be the only error of the config.
private func error(
    at keyPath: String, in text: String, sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigIssue? {
    let errors = issues(text, sourceLocation: sourceLocation).filter { $0.severity == .error }
    #expect(errors.count == 1, "errors: \(errors)", sourceLocation: sourceLocation)
    let found = errors.filter { $0.keyPath == keyPath }
    #expect(found.count == 1, "errors at \(keyPath): \(errors)", sourceLocation: sourceLocation)
    return found.first
}

/// SPEC §2's example section, lines 1–11.
private let specExample = """
    [rate_limits]
    by = "subject"
    default = { requests = 600, per = "1m", burst = 100 }
    [rate_limits.policies]
    viewer = { requests = 60, per = "1m" }
    [rate_limits.roles]
    viewer = "viewer"
    [rate_limits.auth_failures]
    max = 20
    per = "1m"
    block = "5m"

    """

@Suite struct ConfigLoaderRateLimitTests {
    @Test func absentSectionMeansDefaultLimitsOn() throws {
        let result = try load(route())
        #expect(result.warnings.isEmpty)
        let limits = result.config.rateLimits
        #expect(limits == RateLimitSettings())
        #expect(limits.by == .subject)
        #expect(limits.defaultPolicy == RateLimitPolicy(name: "default", requests: 600, per: .seconds(60), burst: 100))
        #expect(limits.defaultPolicy.policyHeaderValue == "\"default\";q=600;w=60")
        #expect(limits.policies.isEmpty && limits.roles.isEmpty)
        #expect(limits.authFailures == AuthFailureSettings(max: 20, per: .seconds(60), block: .seconds(300)))
        #expect(result.config.routes[0].rateLimit == nil)
    }

    @Test func specExampleLoads() throws {
        let result = try load(specExample + route("rate_limit = \"viewer\""))
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        let limits = result.config.rateLimits
        #expect(limits.by == .subject)
        #expect(limits.defaultPolicy == RateLimitPolicy(name: "default", requests: 600, per: .seconds(60), burst: 100))
        #expect(limits.policies == ["viewer": RateLimitPolicy(name: "viewer", requests: 60, per: .seconds(60))])
        #expect(limits.policies["viewer"]?.burst == 60)
        #expect(limits.roles == ["viewer": "viewer"])
        #expect(limits.authFailures == AuthFailureSettings(max: 20, per: .seconds(60), block: .seconds(300)))
        #expect(result.config.routes[0].rateLimit == "viewer")
        #expect(limits.policy(named: "viewer")?.policyHeaderValue == "\"viewer\";q=60;w=60")
        #expect(limits.policy(named: "default") == limits.defaultPolicy)
        #expect(limits.policy(named: "nope") == nil)
    }

    @Test func exampleConfigHasTheSpecSection() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let result = try ConfigLoader.load(path: root.appendingPathComponent("proxy.conf.example").path)
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        let limits = result.config.rateLimits
        #expect(limits.defaultPolicy.policyHeaderValue == "\"default\";q=600;w=60" && limits.defaultPolicy.burst == 100)
        #expect(limits.policies.mapValues(\.policyHeaderValue) == ["viewer": "\"viewer\";q=60;w=60"])
        #expect(limits.roles == ["viewer": "viewer"])
        #expect(limits.authFailures == AuthFailureSettings())
    }

    @Test func everyKeyIsRead() throws {
        let text = """
            [rate_limits]
            by = "credential"
            [rate_limits.default]
            requests = 5
            per = "90s"
            [rate_limits.policies]
            bulk-export_2 = { requests = 1, per = "1h", burst = 3 }
            [rate_limits.roles]
            admin = "default"
            robot = "bulk-export_2"
            [rate_limits.auth_failures]
            max = 1
            per = "10s"
            block = "1h"

            """ + route("rate_limit = \"default\"", name: "a") + route(name: "b")
        let result = try load(text)
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        let limits = result.config.rateLimits
        #expect(limits.by == .credential)
        #expect(limits.defaultPolicy == RateLimitPolicy(name: "default", requests: 5, per: .seconds(90), burst: 5))
        let bulk = limits.policies["bulk-export_2"]
        #expect(bulk == RateLimitPolicy(name: "bulk-export_2", requests: 1, per: .seconds(3600), burst: 3))
        #expect(bulk?.policyHeaderValue == "\"bulk-export_2\";q=1;w=3600")
        #expect(limits.roles == ["admin": "default", "robot": "bulk-export_2"])
        #expect(limits.authFailures == AuthFailureSettings(max: 1, per: .seconds(10), block: .seconds(3600)))
        #expect(result.config.routes.map(\.rateLimit) == ["default", nil])
    }

    @Test func authFailuresKeysAreOptional() throws {
        let limits = try load("[rate_limits.auth_failures]\nmax = 5\n" + route()).config.rateLimits
        #expect(limits.authFailures == AuthFailureSettings(max: 5, per: .seconds(60), block: .seconds(300)))
        #expect(limits.defaultPolicy.requests == 600)
    }

    // MARK: Keys and types

    @Test(arguments: [
        ("[rate_limits]\npolices = {}", "rate_limits.polices", "unknown key `polices`; did you mean `policies`?"),
        ("[rate_limits]\nBy = \"subject\"", "rate_limits.By", "unknown key `By`; did you mean `by`?"),
        (
            "[rate_limits.auth_failures]\nmax_failures = 3", "rate_limits.auth_failures.max_failures",
            "unknown key `max_failures`; did you mean `max`?"
        ),
        (
            "[rate_limits]\ndefault = { request = 5, requests = 5, per = \"1m\" }", "rate_limits.default.request",
            "unknown key `request`; did you mean `requests`?"
        ),
        (
            "[rate_limits.policies]\nv = { requests = 5, per = \"1m\", brust = 2 }", "rate_limits.policies.v.brust",
            "unknown key `brust`; did you mean `burst`?"
        ),
        (
            "[rate_limits]\nbackend = \"redis://cache:6379\"", "rate_limits.backend",
            "`backend` is not supported yet in this build (arrives with scale-out support)"
        ),
    ])
    func unknownAndLaterKeys(section: String, keyPath: String, message: String) {
        let issue = error(at: keyPath, in: section + "\n" + route())
        #expect(issue?.message == message)
        #expect(issue?.line == 2)
    }

    @Test(arguments: [
        ("[rate_limits]\nby = \"user\"", "rate_limits.by", "must be one of \"subject\", \"credential\", got \"user\""),
        ("[rate_limits]\nby = \"subjects\"", "rate_limits.by", "did you mean \"subject\"?"),
        ("[rate_limits]\nby = 1", "rate_limits.by", "expected a string, got an integer (1)"),
        ("rate_limits = 5", "rate_limits", "expected a table"),
        ("[rate_limits]\ndefault = 600", "rate_limits.default", "expected a table"),
        ("[rate_limits]\npolicies = []", "rate_limits.policies", "expected a table"),
        ("[rate_limits]\nroles = \"viewer\"", "rate_limits.roles", "expected a table"),
        ("[rate_limits]\nauth_failures = 20", "rate_limits.auth_failures", "expected a table"),
    ])
    func wrongValuesAndTypes(section: String, keyPath: String, message: String) {
        let issue = error(at: keyPath, in: section + "\n" + route())
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
    }

    // MARK: Policies

    @Test(arguments: [
        ("{ per = \"1m\" }", "requests", "missing; write how many requests each `per` allows"),
        ("{ requests = 5 }", "per", "missing; write the window as a duration"),
        ("{ requests = 0, per = \"1m\" }", "requests", "must be between 1 and 1000000000, got 0"),
        ("{ requests = -3, per = \"1m\" }", "requests", "must be between 1 and 1000000000, got -3"),
        ("{ requests = \"5\", per = \"1m\" }", "requests", "expected an integer, got a string (\"5\")"),
        ("{ requests = 2000000000, per = \"1m\" }", "requests", "must be between 1 and 1000000000"),
        ("{ requests = 5, per = \"1m\", burst = 0 }", "burst", "must be between 1 and 1000000000, got 0"),
        ("{ requests = 5, per = \"500ms\" }", "per", "must be at least 1s, got \"500ms\""),
        ("{ requests = 5, per = \"0s\" }", "per", "must be at least 1s"),
        ("{ requests = 5, per = \"1500ms\" }", "per", "must be a whole number of seconds, got \"1500ms\""),
        ("{ requests = 5, per = 60 }", "per", "expected a duration string like \"30s\", got an integer (60)"),
        ("{ requests = 5, per = \"1 minute\" }", "per", "must not contain spaces"),
    ])
    func badPolicies(policy: String, key: String, message: String) {
        for (section, path) in [
            ("[rate_limits]\ndefault = \(policy)", "rate_limits.default"),
            (
                "[rate_limits.policies]\nviewer = \(policy)\n[rate_limits.roles]\nviewer = \"viewer\"",
                "rate_limits.policies.viewer"
            ),
        ] {
            let issue = error(at: path + "." + key, in: section + "\n" + route())
            #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
            #expect(issue?.line == 2)
        }
    }

    @Test func policyMayBeASubtable() throws {
        let text = "[rate_limits.policies.viewer]\nrequests = 6\nper = \"1m\"\n[rate_limits.roles]\nv = \"viewer\"\n"
        let limits = try load(text + route()).config.rateLimits
        #expect(limits.policies["viewer"] == RateLimitPolicy(name: "viewer", requests: 6, per: .seconds(60)))
    }

    @Test(arguments: [
        ("\"a b\"", "rate_limits.policies.\"a b\"", "policy name \"a b\" must be 1–64 letters, digits, \"-\" or \"_\""),
        ("\"x.y\"", "rate_limits.policies.\"x.y\"", "must be 1–64 letters"),
        ("\"\"", "rate_limits.policies.\"\"", "must be 1–64 letters"),
        ("\"é\"", "rate_limits.policies.\"é\"", "must be 1–64 letters"),
        (String(repeating: "p", count: 65), "rate_limits.policies." + String(repeating: "p", count: 65), "1–64"),
        ("default", "rate_limits.policies.default", "\"default\" is the policy of rate_limits.default; set it there"),
    ])
    func badPolicyNames(name: String, keyPath: String, message: String) {
        let issue = error(
            at: keyPath, in: "[rate_limits.policies]\n\(name) = { requests = 1, per = \"1s\" }\n" + route())
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 2)
    }

    @Test func policyMustBeATable() {
        let issue = error(at: "rate_limits.policies.viewer", in: "[rate_limits.policies]\nviewer = 60\n" + route())
        #expect(
            issue?.message == "expected a policy table like { requests = 60, per = \"1m\" }, got an integer (60)")
    }

    @Test func unusedPolicyIsAWarning() throws {
        let result = try load("[rate_limits.policies]\nspare = { requests = 1, per = \"1s\" }\n" + route())
        #expect(result.warnings.map(\.keyPath) == ["rate_limits.policies.spare"])
        #expect(result.warnings.first?.message.contains("is not used") == true)
        #expect(result.warnings.first?.line == 2)
    }

    // MARK: Roles

    @Test func rolePolicyMustExist() {
        let text = specExample.replacingOccurrences(of: "viewer = \"viewer\"", with: "viewer = \"veiwer\"")
        let issue = error(at: "rate_limits.roles.viewer", in: text + route("rate_limit = \"viewer\""))
        #expect(
            issue?.message == "unknown rate-limit policy \"veiwer\": use \"default\" or a policy defined in "
                + "[rate_limits.policies]; did you mean \"viewer\"?")
        #expect(issue?.line == 7)
    }

    @Test func rolePolicyMustBeAString() {
        let issue = error(at: "rate_limits.roles.viewer", in: "[rate_limits.roles]\nviewer = [\"default\"]\n" + route())
        #expect(issue?.message == "expected a string, got an array")
    }

    @Test func roleMayNameDefault() throws {
        let limits = try load("[rate_limits.roles]\nadmin = \"default\"\n" + route()).config.rateLimits
        #expect(limits.roles == ["admin": "default"])
    }

    @Test func roleMissingFromRolesTableIsAWarning() throws {
        let text = """
            [roles]
            viewer = ["mcp:read"]
            [rate_limits.roles]
            viewer = "default"
            veiwer = "default"

            """
        let result = try load(text + route())
        #expect(result.warnings.map(\.keyPath) == ["rate_limits.roles.veiwer"])
        #expect(
            result.warnings.first?.message == "role \"veiwer\" is not defined in [roles]; did you mean \"viewer\"?")
    }

    // MARK: Routes

    @Test func routeRateLimitMustNameAPolicy() {
        let issue = error(at: "routes[0].rate_limit", in: specExample + route("rate_limit = \"viewers\""))
        #expect(issue?.message.hasPrefix("unknown rate-limit policy \"viewers\"") == true)
        #expect(issue?.message.hasSuffix("did you mean \"viewer\"?") == true)
        #expect(issue?.line == 17)
    }

    @Test func routeRateLimitWithoutAnyPolicies() {
        let issue = error(at: "routes[0].rate_limit", in: route("rate_limit = \"viewer\""))
        #expect(
            issue?.message == "unknown rate-limit policy \"viewer\": use \"default\" or a policy defined in "
                + "[rate_limits.policies]")
    }

    @Test func routeRateLimitMustBeAString() {
        let issue = error(at: "routes[0].rate_limit", in: specExample + route("rate_limit = true"))
        #expect(issue?.message == "expected a string, got a boolean (true)")
    }

    @Test func routeRateLimitNeedsAuthentication() {
        let issue = error(at: "routes[0].rate_limit", in: specExample + route("rate_limit = \"viewer\"", auth: "none"))
        #expect(issue?.message.hasPrefix("cannot be used with auth = \"none\"") == true)
    }

    @Test func routeRateLimitOnOptionalAuth() throws {
        let config = try load(specExample + route("rate_limit = \"viewer\"", auth: "optional")).config
        #expect(config.routes[0].rateLimit == "viewer")
    }

    @Test func routeRateLimitsAreMatchedToTheirRoutes() throws {
        let text =
            specExample + "[rate_limits.policies.heavy]\nrequests = 1\nper = \"1m\"\n"
            + route(name: "a") + route("rate_limit = \"heavy\"", name: "b")
            + route("rate_limit = \"viewer\"", name: "c")
        let result = try load(text)
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        #expect(result.config.routes.map(\.rateLimit) == [nil, "heavy", "viewer"])
    }

    @Test func aRefusedPolicyIsReportedOnce() {
        // The route and role naming `bad` are not reported again: the policy's own error says it all.
        let text =
            "[rate_limits.policies]\nbad = { requests = 0, per = \"1m\" }\n[rate_limits.roles]\nr = \"bad\"\n"
            + route("rate_limit = \"bad\"")
        let issue = error(at: "rate_limits.policies.bad.requests", in: text)
        #expect(issue?.line == 2)
    }

    @Test func everyErrorIsReportedAtOnce() {
        let text = """
            [rate_limits]
            by = "everyone"
            default = { requests = 0, per = "1m" }
            [rate_limits.policies]
            "bad name" = { requests = 1, per = "1s" }
            [rate_limits.roles]
            viewer = "missing"
            [rate_limits.auth_failures]
            max = 0
            per = "0s"
            block = "forever"

            """ + route("rate_limit = \"nope\"")
        let errors = issues(text).filter { $0.severity == .error }
        #expect(
            errors.map(\.keyPath) == [
                "rate_limits.by", "rate_limits.default.requests", "rate_limits.policies.\"bad name\"",
                "rate_limits.roles.viewer", "rate_limits.auth_failures.max", "rate_limits.auth_failures.per",
                "rate_limits.auth_failures.block", "routes[0].rate_limit",
            ])
        #expect(errors.map(\.line) == [2, 3, 5, 7, 9, 10, 11, 17])
    }

    @Test(arguments: [
        ("max = 0", "max", "must be between 1 and 1000000, got 0"),
        ("max = \"20\"", "max", "expected an integer"),
        ("per = \"500ms\"", "per", "must be at least 1s"),
        ("block = \"0s\"", "block", "must be at least 1s"),
        ("block = 300", "block", "expected a duration string"),
    ])
    func badAuthFailures(line: String, key: String, message: String) {
        let issue = error(
            at: "rate_limits.auth_failures." + key, in: "[rate_limits.auth_failures]\n\(line)\n" + route())
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 2)
    }
}
