import Foundation
import Testing

@testable import Gatehouse

// `[roles]` and the routes' `scopes`, `roles` and `method_scopes` (SPEC §2 validation).

/// The single error at `keyPath`, checked to exist.
private func error(
    at keyPath: String, in text: String, sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigIssue? {
    let found = issues(text, sourceLocation: sourceLocation).filter { $0.keyPath == keyPath && $0.severity == .error }
    #expect(found.count == 1, "errors at \(keyPath): \(issues(text))", sourceLocation: sourceLocation)
    return found.first
}

/// The warnings of a config expected to load.
private func warnings(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigIssue] {
    do {
        return try load(text).warnings
    } catch {
        Issue.record("config did not load:\n\(error)", sourceLocation: sourceLocation)
        return []
    }
}

/// SPEC §2's `[roles]` table: lines 1–4.
private let roles = """
    [roles]
    admin = ["mcp:read", "mcp:write", "logs:read", "admin:users", "admin:organization"]
    developer = ["mcp:read", "logs:read"]
    viewer = ["mcp:read"]

    """

/// A protected route (lines 1–5 of it) with `extra` lines appended.
private func route(_ extra: String = "", auth: String = "required") -> String {
    """
    [[routes]]
    name = "github-mcp"
    path = "/mcp/github"
    upstream = "http://127.0.0.1:3001/mcp"
    auth = "\(auth)"
    \(extra)

    """
}

@Suite struct ConfigLoaderRolesTests {
    @Test func everyKeyIsRead() throws {
        let result = try load(
            roles
                + route(
                    """
                    methods = ["GET", "POST", "DELETE"]
                    scopes = ["mcp:read"]
                    roles = ["admin", "developer"]
                    method_scopes = { DELETE = ["mcp:write"], post = ["mcp:write", "logs:read"] }
                    """))
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        let config = result.config
        #expect(
            config.roles == [
                "admin": ["mcp:read", "mcp:write", "logs:read", "admin:users", "admin:organization"],
                "developer": ["mcp:read", "logs:read"], "viewer": ["mcp:read"],
            ])
        let route = try #require(config.routes.first)
        #expect(route.scopes == ["mcp:read"])
        #expect(route.roles == ["admin", "developer"])
        #expect(route.methodScopes == ["DELETE": ["mcp:write"], "POST": ["mcp:write", "logs:read"]])
    }

    @Test func absentKeysKeepTheDefaults() throws {
        let config = try load(route()).config
        #expect(config.roles == nil)
        #expect(config.routes[0].scopes.isEmpty)
        #expect(config.routes[0].roles == nil)
        #expect(config.routes[0].methodScopes.isEmpty)
    }

    @Test func methodScopesAsASubTable() throws {
        let config = try load(roles + route() + "[routes.method_scopes]\nDELETE = [\"mcp:write\"]\n").config
        #expect(config.routes[0].methodScopes == ["DELETE": ["mcp:write"]])
    }

    @Test func withoutRolesTableRouteScopesLoadQuietly() {
        // Nothing to compare them with: credentials' scopes are used as they are.
        #expect(warnings(route("scopes = [\"anything:goes\"]")).isEmpty)
    }

    @Test func emptyRolesTableIsAWarning() throws {
        let result = try load("[roles]\n" + route())
        #expect(result.config.roles == [:])
        #expect(result.warnings.map(\.keyPath) == ["roles"])
        #expect(
            result.warnings.first?.message.hasPrefix("[roles] is empty: every identity with a role gets no scopes")
                == true)
        #expect(result.warnings.first?.line == 1)
    }

    @Test func aRoleMayHoldNoScopes() throws {
        let config = try load("[roles]\nguest = []\n" + route("roles = [\"guest\"]")).config
        #expect(config.roles == ["guest": []])
        #expect(config.routes[0].roles == ["guest"])
    }

    @Test(arguments: [
        ("roles = 5", "roles", "expected a table ([roles]), got an integer (5)", 1),
        ("[roles]\nviewer = \"mcp:read\"", "roles.viewer", "expected an array of scope strings, got a string", 2),
        ("[roles.viewer]\nscope = \"mcp:read\"", "roles.viewer", "expected an array of scope strings, got a table", 1),
        ("[roles]\nviewer = [1]", "roles.viewer[0]", "expected a string, got an integer (1)", 2),
        ("[roles]\nviewer = [\"mcp:read\", \"mcp:read\"]", "roles.viewer[1]", "\"mcp:read\" is listed twice", 2),
        ("[roles]\nviewer = [\"\"]", "roles.viewer[0]", "must not be empty", 2),
        ("[roles]\nviewer = [\"mcp:read logs:read\"]", "roles.viewer[0]", "contains whitespace", 2),
        ("[roles]\nviewer = [\"mcp\\\"read\"]", "roles.viewer[0]", "is not a valid scope", 2),
        ("[roles]\nviewer = [\"mcp:réad\"]", "roles.viewer[0]", "is not a valid scope", 2),
        ("[roles]\n\"read only\" = []", "roles.\"read only\"", "must not contain whitespace", 2),
        ("[roles]\n\"\" = []", "roles.\"\"", "a role name must not be empty", 2),
    ])
    func badRoles(text: String, keyPath: String, message: String, line: Int) {
        let issue = error(at: keyPath, in: text + "\n" + route())
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == line)
    }

    @Test func duplicateRoleIsInvalidTOML() {
        let found = issues("[roles]\nviewer = []\nviewer = [\"mcp:read\"]\n" + route())
        #expect(found.count == 1)
        #expect(found.first?.message.hasPrefix("invalid TOML") == true)
        #expect(found.first?.line == 3)
    }

    @Test func misspeltSectionHasHint() {
        let issue = error(at: "role", in: "[role]\nviewer = []\n" + route())
        #expect(issue?.message == "unknown top-level key `role`; did you mean `roles`?")
    }

    @Test func exampleConfigDefinesTheSpecRoles() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let result = try ConfigLoader.load(path: root.appendingPathComponent("proxy.conf.example").path)
        #expect(result.warnings.isEmpty)
        #expect(result.config.roles?["viewer"] == ["mcp:read"])
        #expect(result.config.roles?.keys.sorted() == ["admin", "developer", "viewer"])
    }
}

@Suite struct ConfigLoaderRouteAccessTests {
    @Test(arguments: [
        ("scopes = \"mcp:read\"", "routes[0].scopes", "expected an array of strings, got a string (\"mcp:read\")"),
        ("scopes = [\"mcp:read\", \"mcp:read\"]", "routes[0].scopes[1]", "\"mcp:read\" is listed twice"),
        ("scopes = [\"\"]", "routes[0].scopes[0]", "must not be empty"),
        ("scopes = [\"mcp:read mcp:write\"]", "routes[0].scopes[0]", "contains whitespace"),
        ("scopes = [\"a\\\\b\"]", "routes[0].scopes[0]", "is not a valid scope"),
        ("roles = \"admin\"", "routes[0].roles", "expected an array of strings"),
        ("roles = []", "routes[0].roles", "must not be empty (no role could pass)"),
        ("roles = [\"admin\", \"admin\"]", "routes[0].roles[1]", "\"admin\" is listed twice"),
        (
            "roles = [\"devloper\"]", "routes[0].roles[0]",
            "unknown role \"devloper\": [roles] does not define it; did you mean \"developer\"?"
        ),
        ("roles = [\"root\"]", "routes[0].roles[0]", "unknown role \"root\": [roles] does not define it"),
        ("method_scopes = [\"mcp:write\"]", "routes[0].method_scopes", "expected a table of method = [scopes]"),
        (
            "method_scopes = { DELETE = \"mcp:write\" }", "routes[0].method_scopes.DELETE",
            "expected an array of strings"
        ),
        (
            "method_scopes = { DELETE = [\"mcp:write\", \"mcp:write\"] }", "routes[0].method_scopes.DELETE[1]",
            "listed twice"
        ),
        (
            "method_scopes = { \"GE T\" = [] }", "routes[0].method_scopes.\"GE T\"",
            "\"GE T\" is not a valid HTTP method"
        ),
        ("method_scopes = { CONNECT = [] }", "routes[0].method_scopes.CONNECT", "CONNECT cannot be routed"),
        (
            "method_scopes = { DELETE = [], delete = [] }", "routes[0].method_scopes.delete",
            "\"delete\" is the same method as \"DELETE\""
        ),
    ])
    func badRouteKeys(line: String, keyPath: String, message: String) {
        let issue = error(at: keyPath, in: roles + route(line))
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 10)
    }

    @Test func routeRolesNeedARolesTable() {
        let issue = error(at: "routes[0].roles", in: route("roles = [\"admin\"]"))
        #expect(
            issue?.message.hasPrefix("needs a [roles] table: every role a route names must be defined there") == true)
        #expect(issue?.line == 6)
    }

    @Test func anUnreadableRolesTableIsReportedOnce() {
        let found = issues("roles = 5\n" + route("roles = [\"admin\"]"))
        #expect(found.map(\.keyPath) == ["roles"])
    }

    @Test func methodScopesMustBeAllowedByMethods() {
        let issue = error(
            at: "routes[0].method_scopes.DELETE",
            in: roles + route("methods = [\"GET\", \"POST\"]\nmethod_scopes = { DELETE = [\"mcp:write\"] }"))
        #expect(
            issue?.message == "DELETE is not in this route's `methods` (GET, POST): it is answered 405 before scopes "
                + "are checked; add it to `methods`, or remove it here")
        #expect(issue?.line == 11)
    }

    @Test func headIsAllowedWithGet() throws {
        let config = try load(roles + route("methods = [\"GET\"]\nmethod_scopes = { head = [\"mcp:read\"] }")).config
        #expect(config.routes[0].methodScopes == ["HEAD": ["mcp:read"]])
    }

    @Test func methodScopesWithoutMethodsAllowAnyMethod() throws {
        let result = try load(roles + route("method_scopes = { PUT = [\"mcp:write\"], PURGE = [\"mcp:write\"] }"))
        #expect(result.config.routes[0].methodScopes == ["PUT": ["mcp:write"], "PURGE": ["mcp:write"]])
        #expect(result.warnings.map(\.keyPath) == ["routes[0].method_scopes.PURGE"])
        #expect(result.warnings.first?.message == "PURGE is not a standard HTTP method; check the spelling")
    }

    @Test(arguments: ["scopes = [\"mcp:read\"]", "roles = [\"admin\"]", "method_scopes = { DELETE = [\"mcp:write\"] }"])
    func authNoneHasNothingToCheck(line: String) {
        let key = String(line.prefix { $0 != " " })
        let issue = error(at: "routes[0].\(key)", in: roles + route(line, auth: "none"))
        #expect(
            issue?.message == "cannot be used with auth = \"none\": nothing authenticates the caller, so there is no "
                + "identity to check it against; remove it, or set auth = \"required\"")
        #expect(issue?.line == 10)
    }

    @Test func authNoneReportsEachKeyOnce() {
        let found = issues(roles + route("scopes = [\"\"]\nroles = [\"nobody\"]", auth: "none"))
        #expect(found.map(\.keyPath) == ["routes[0].scopes", "routes[0].roles"])
    }

    @Test func authOptionalMayCarryRequirements() throws {
        let config = try load(roles + route("scopes = [\"mcp:read\"]", auth: "optional")).config
        #expect(config.routes[0].scopes == ["mcp:read"])
    }

    @Test func unknownRouteKeysHaveHints() {
        #expect(
            error(at: "routes[0].scope", in: roles + route("scope = [\"mcp:read\"]"))?.message
                == "unknown key `scope`; did you mean `scopes`?")
        #expect(
            error(at: "routes[0].method_scope", in: roles + route("method_scope = {}"))?.message
                == "unknown key `method_scope`; did you mean `method_scopes`?")
    }

    @Test func everyProblemIsReportedAtOnce() {
        let found = issues(
            roles
                + route(
                    """
                    methods = ["GET"]
                    scopes = ["a b"]
                    roles = ["devloper"]
                    method_scopes = { POST = ["mcp:write"] }
                    """))
        #expect(
            found.filter { $0.severity == .error }.map(\.keyPath) == [
                "routes[0].scopes[0]", "routes[0].roles[0]", "routes[0].method_scopes.POST",
            ])
    }
}

@Suite struct ConfigLoaderScopeWarningTests {
    @Test func aScopeNoRoleHoldsIsAWarningWithHint() throws {
        let result = try load(roles + route("scopes = [\"mcp:read\", \"mcp:wirte\"]"))
        #expect(result.config.routes[0].scopes == ["mcp:read", "mcp:wirte"])
        #expect(result.warnings.count == 1)
        let warning = try #require(result.warnings.first)
        #expect(warning.severity == .warning)
        #expect(warning.keyPath == "routes[0].scopes[1]")
        #expect(
            warning.message == "no role in [roles] holds \"mcp:wirte\", so no identity with a role can be granted it; "
                + "did you mean \"mcp:write\"?")
        #expect(warning.line == 10)
        #expect(warning.description.hasPrefix("proxy.conf:10: warning: routes[0].scopes[1]: "))
    }

    @Test func methodScopesAreCheckedToo() {
        let found = warnings(roles + route("method_scopes = { DELETE = [\"repo:delete\"] }"))
        #expect(found.map(\.keyPath) == ["routes[0].method_scopes.DELETE[0]"])
        #expect(
            found.first?.message
                == "no role in [roles] holds \"repo:delete\", so no identity with a role can be granted it")
        #expect(found.first?.line == 10)
    }

    @Test func noWarningWhenTheRolesTableHadErrors() {
        // Which scopes the refused role held is unknown: a warning could be wrong.
        let found = issues("[roles]\nviewer = [\"mcp:read\"]\nbroken = \"x\"\n" + route("scopes = [\"logs:read\"]"))
        #expect(found.map(\.keyPath) == ["roles.broken"])
    }

    @Test func warnsWhenNoListedRoleCanPass() throws {
        let base = warnings(roles + route("scopes = [\"logs:read\"]\nroles = [\"viewer\"]"))
        #expect(base.map(\.keyPath) == ["routes[0].roles"])
        #expect(
            base.first?.message
                == "none of this route's roles (viewer) holds all of its scopes (logs:read): every request is refused")
        let method = warnings(
            roles
                + route(
                    "scopes = [\"mcp:read\"]\nroles = [\"developer\", \"viewer\"]\n"
                        + "method_scopes = { POST = [\"mcp:write\"] }"))
        #expect(method.map(\.keyPath) == ["routes[0].method_scopes"])
        #expect(
            method.first?.message
                == "none of this route's roles (developer, viewer) holds all the scopes POST needs "
                + "(mcp:read mcp:write): every POST request is refused")
        #expect(warnings(roles + route("scopes = [\"logs:read\"]\nroles = [\"viewer\", \"developer\"]")).isEmpty)
    }
}
