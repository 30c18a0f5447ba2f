import Foundation
import Testing

@testable import Gatehouse

/// A route that loads in this build; most tests add the section under test to it.
private let echoRoute = """
    [[routes]]
    name = "echo"
    path = "/echo"
    upstream = "http://127.0.0.1:3001/"
    auth = "none"

    """

/// The single error at `keyPath`, checked to exist.
private func error(
    at keyPath: String, in text: String, sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigIssue? {
    let found = issues(text, sourceLocation: sourceLocation).filter { $0.keyPath == keyPath && $0.severity == .error }
    #expect(found.count == 1, "errors at \(keyPath): \(found)", sourceLocation: sourceLocation)
    return found.first
}

@Suite struct ConfigLoaderDefaultsTests {
    @Test func minimalConfigGetsSpecDefaults() throws {
        let result = try load(echoRoute)
        let config = result.config
        #expect(result.warnings.isEmpty)
        #expect(config.server.listen == ListenAddress(host: "0.0.0.0", port: 8080))
        #expect(config.server.publicURL == nil)
        #expect(config.server.trustedProxies == [CIDR.parse("127.0.0.1/32")])
        #expect(config.server.maxHeaderBytes == 16_384)
        #expect(config.server.maxBodyBytes == 10 * 1024 * 1024)
        #expect(config.server.headerTimeout == .seconds(10))
        #expect(config.server.upstreamConnectTimeout == .seconds(5))
        #expect(config.server.upstreamResponseTimeout == .seconds(30))
        #expect(config.server.streamIdleTimeout == .seconds(300))
        #expect(config.server.shutdownGrace == .seconds(30))
        #expect(config.server.eventLoops == 0)
        #expect(config.server.upstreamThreads == 0)
        #expect(config.admin.listen == ListenAddress(host: "127.0.0.1", port: 9090))
        #expect(config.logs.access == .stdout)
        #expect(config.logs.denials == "/etc/gatehouse/logs/denials.jsonl")
        #expect(config.logs.denialsMaxBytes == 100 * 1024 * 1024)
        #expect(config.logs.denialsKeep == 10)
        #expect(config.logs.level == .info)
        #expect(config.identityHeaders == IdentityHeaderNames())
        #expect(config.issuers.isEmpty)
        #expect(config.apiKeys == APIKeySettings(store: "/etc/gatehouse/data/keys.db"))
        #expect(config.sourcePath?.hasSuffix("/proxy.conf") == true)
        #expect(config.sourcePath?.hasPrefix("/") == true)
        #expect(
            config.routes == [
                RouteConfig(
                    name: "echo", path: "/echo", methods: nil,
                    upstream: UpstreamURL(scheme: "http", host: "127.0.0.1", port: 3001, basePath: ""), auth: .none)
            ])
    }

    @Test func everySupportedKeyIsRead() throws {
        let text = """
            [server]
            listen = "[::1]:8443"
            public_url = "https://gateway.example.com/"
            trusted_proxies = ["10.0.0.0/8", "fd00::/8", "192.0.2.7"]
            max_header_bytes = "32KiB"
            max_body_bytes = 1048576
            header_timeout = "2s"
            upstream_connect_timeout = "750ms"
            upstream_response_timeout = "1m"
            stream_idle_timeout = "1h"
            shutdown_grace = "1d"
            event_loops = 2
            upstream_threads = 1

            [admin]
            listen = "127.0.0.1:0"

            [logs]
            access = "access.jsonl"
            denials = "/var/log/gatehouse/denials.jsonl"
            denials_max_bytes = "1GiB"
            denials_keep = 0
            level = "debug"

            [identity_headers]
            subject = "X-Subject"
            email = "X-Email"
            org = "X-Org"
            role = "X-Role"
            scopes = "X-Scopes"
            auth_method = "X-Method"
            key_id = "X-Key"

            [[routes]]
            name = "mcp"
            path = "/mcp/github/"
            methods = ["get", "Post", "DELETE"]
            upstream = "HTTPS://[2001:DB8::1]/mcp/"
            auth = "none"

            [[routes]]
            name = "root"
            path = "/"
            upstream = "http://Backend.Internal:8080"
            auth = "none"
            """
        let config = try load(text).config
        #expect(config.server.listen == ListenAddress(host: "::1", port: 8443))
        #expect(config.server.listen.description == "[::1]:8443")
        #expect(config.server.publicURL == "https://gateway.example.com")
        #expect(config.server.trustedProxies.map(\.description) == ["10.0.0.0/8", "fd00::/8", "192.0.2.7/32"])
        #expect(config.server.maxHeaderBytes == 32_768)
        #expect(config.server.maxBodyBytes == 1_048_576)
        #expect(config.server.headerTimeout == .seconds(2))
        #expect(config.server.upstreamConnectTimeout == .milliseconds(750))
        #expect(config.server.upstreamResponseTimeout == .seconds(60))
        #expect(config.server.streamIdleTimeout == .seconds(3_600))
        #expect(config.server.shutdownGrace == .seconds(86_400))
        #expect(config.server.eventLoops == 2)
        #expect(config.server.upstreamThreads == 1)
        #expect(config.admin.listen == ListenAddress(host: "127.0.0.1", port: 0))
        #expect(config.logs.access == .file("/etc/gatehouse/access.jsonl"))
        #expect(config.logs.denials == "/var/log/gatehouse/denials.jsonl")
        #expect(config.logs.denialsMaxBytes == 1 << 30)
        #expect(config.logs.denialsKeep == 0)
        #expect(config.logs.level == .debug)
        #expect(
            config.identityHeaders.all == ["X-Subject", "X-Email", "X-Org", "X-Role", "X-Scopes", "X-Method", "X-Key"])
        #expect(config.routes.count == 2)
        let mcp = config.routes[0]
        #expect(mcp.path == "/mcp/github")
        #expect(mcp.methods == ["GET", "POST", "DELETE"])
        #expect(mcp.upstream == UpstreamURL(scheme: "https", host: "2001:db8::1", port: 443, basePath: "/mcp"))
        #expect(mcp.upstream.description == "https://[2001:db8::1]:443/mcp")
        let root = config.routes[1]
        #expect(root.path == "/")
        #expect(root.upstream == UpstreamURL(scheme: "http", host: "backend.internal", port: 8080, basePath: ""))
    }

    @Test func offSwitches() throws {
        let config = try load(
            """
            [admin]
            listen = "off"
            [logs]
            access = "off"
            denials = "off"
            """ + "\n" + echoRoute
        ).config
        #expect(config.admin.listen == nil)
        #expect(config.logs.access == .off)
        #expect(config.logs.denials == nil)
    }

    @Test func exampleConfigLoadsCleanly() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = root.appendingPathComponent("proxy.conf.example").path
        let result: ConfigLoadResult
        do {
            result = try ConfigLoader.load(path: path)
        } catch {
            Issue.record("proxy.conf.example does not load:\n\(error)")
            return
        }
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        let config = result.config
        #expect(config.server.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(config.admin.listen == ListenAddress(host: "127.0.0.1", port: 9090))
        #expect(config.logs.access == .stdout)
        #expect(config.logs.denials == root.appendingPathComponent("logs/denials.jsonl").path)
        #expect(config.routes.map(\.name) == ["echo", "events"])
        #expect(config.routes.map(\.path) == ["/echo", "/events"])
        #expect(config.routes.map(\.upstream.description) == ["http://127.0.0.1:3001/", "http://127.0.0.1:3001/sse"])
        #expect(config.routes.allSatisfy { $0.auth == .none })
        #expect(config.routes.allSatisfy { !$0.forwardAuthorization && $0.upstreamHeaders.isEmpty })
        #expect(config.issuers.isEmpty)
        #expect(config.apiKeys.store == root.appendingPathComponent("data/keys.db").path)
        #expect(config.apiKeys.header == "X-Api-Key")
        #expect(config.apiKeys.prefix == "ghk")
    }
}

@Suite struct ConfigLoaderPathTests {
    @Test func relativePathsResolveAgainstBaseDirectory() throws {
        let config = try load(
            """
            [logs]
            access = "./var//access.jsonl"
            denials = "../shared/denials.jsonl"
            """ + "\n" + echoRoute
        ).config
        #expect(config.logs.access == .file("/etc/gatehouse/var/access.jsonl"))
        #expect(config.logs.denials == "/etc/gatehouse/../shared/denials.jsonl")
    }

    @Test func loadFromFileResolvesAgainstItsFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-config-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("proxy.conf")
        try ("[logs]\ndenials = \"d/denials.jsonl\"\n" + echoRoute).write(to: file, atomically: true, encoding: .utf8)

        let config = try ConfigLoader.load(path: file.path).config
        #expect(config.logs.denials == folder.appendingPathComponent("d/denials.jsonl").path)
        #expect(config.sourcePath == file.path)
    }

    @Test func unreadableFileIsOneIssue() {
        let path = "/nonexistent/gatehouse/proxy.conf"
        do {
            _ = try ConfigLoader.load(path: path)
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.issues.count == 1)
            #expect(error.description.hasPrefix("\(path): cannot open: "))
        }
    }

    @Test func directoryIsRefused() {
        do {
            _ = try ConfigLoader.load(path: "/tmp")
            Issue.record("loaded a directory")
        } catch {
            #expect(error.issues.map(\.message) == ["not a regular file"])
        }
    }
}

@Suite struct ConfigLoaderReportingTests {
    @Test func parseErrorCarriesLine() {
        let found = issues("[server]\nlisten = \"127.0.0.1:8080\"\nbroken =\n")
        #expect(found.count == 1)
        #expect(found.first?.line == 3)
        #expect(found.first?.keyPath == "")
        #expect(found.first?.message.hasPrefix("invalid TOML") == true)
        #expect(found.first?.description.hasPrefix("proxy.conf:3: invalid TOML") == true)
    }

    @Test func everyErrorIsReportedAtOnce() {
        let found = issues(
            """
            [server]
            listen = "nowhere"
            max_body_bytes = "10MB"
            listn = "x"

            [logs]
            level = "loud"

            [[routes]]
            name = "a"
            path = "a"
            upstream = "ftp://x"
            auth = "none"
            """)
        let paths = Set(found.map(\.keyPath))
        #expect(
            paths == [
                "server.listen", "server.max_body_bytes", "server.listn", "logs.level", "routes[0].path",
                "routes[0].upstream",
            ])
        // In file order, each with its line.
        #expect(found.map(\.line) == [2, 3, 4, 7, 11, 12])
    }

    @Test func descriptionIsCompilerStyle() {
        let issue = error(
            at: "routes[1].upstream",
            in: echoRoute + """
                [[routes]]
                name = "other"
                path = "/other"
                upstream = "ftp://x"
                auth = "none"
                """)
        #expect(issue?.description == "proxy.conf:9: routes[1].upstream: must be an http(s) URL, got \"ftp://x\"")
        let warning = ConfigIssue(severity: .warning, keyPath: "a.b", line: nil, message: "m", sourcePath: nil)
        #expect(warning.description == "warning: a.b: m")
        let bare = ConfigIssue(severity: .error, keyPath: "", line: 4, message: "m")
        #expect(bare.description == "line 4: m")
    }

    @Test func errorsDescriptionListsEveryIssue() {
        do {
            _ = try load("[server]\nlisten = 1\nheader_timeout = 5\n" + echoRoute)
            Issue.record("loaded")
        } catch {
            #expect(
                error.description == """
                    proxy.conf:2: server.listen: expected a string, got an integer (1)
                    proxy.conf:3: server.header_timeout: expected a duration string like "30s", got an integer (5)
                    """)
            #expect(error.errors.count == 2)
        }
    }

    @Test func warningsTravelWithErrors() {
        let found = issues("[server]\ntrusted_proxies = [\"0.0.0.0/0\"]\nlisten = \"x\"\n" + echoRoute)
        #expect(found.map(\.severity) == [.warning, .error])
    }
}

@Suite struct ConfigLoaderKeyTests {
    @Test(arguments: [
        ("[server]\nlistn = \"x\"", "server.listn", "unknown key `listn`; did you mean `listen`?"),
        ("[server]\nmax-body-bytes = 1", "server.max-body-bytes", "did you mean `max_body_bytes`?"),
        (
            "[server]\nupstream_timeout = \"1s\"", "server.upstream_timeout",
            "unknown key `upstream_timeout`; did you mean `upstream_connect_timeout` or `upstream_response_timeout`?"
        ),
        ("[server]\nLISTEN = \"x\"", "server.LISTEN", "did you mean `listen`?"),
        ("[sever]\nlisten = \"x\"", "sever", "unknown top-level key `sever`; did you mean `server`?"),
        ("[logs]\ndenial = \"x\"", "logs.denial", "did you mean `denials`?"),
        ("[admin]\nport = 1", "admin.port", "unknown key `port`"),
        ("[identity_headers]\nuser = \"X-U\"", "identity_headers.user", "unknown key `user`"),
        ("[server]\n\"odd key\" = 1", "server.\"odd key\"", "unknown key `odd key`"),
    ])
    func unknownKeysAreErrorsWithHints(section: String, keyPath: String, message: String) {
        let issue = error(at: keyPath, in: section + "\n" + echoRoute)
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 2 || keyPath == "sever")
    }

    @Test func unknownRouteKeyHasHint() {
        let issue = error(at: "routes[0].upstrem", in: echoRoute + "upstrem = \"x\"\n")
        #expect(issue?.message == "unknown key `upstrem`; did you mean `upstream`?")
        #expect(issue?.line == 6)
    }

    @Test func unrelatedUnknownKeyHasNoHint() {
        let issue = error(at: "server.banana", in: "[server]\nbanana = 1\n" + echoRoute)
        #expect(issue?.message == "unknown key `banana`")
    }

    @Test(arguments: [
        ("[server]\ntls_cert = \"/etc/hostname\"", "server.tls_key", "is required with server.tls_cert"),
        ("[server]\ntls_key = \"/etc/hostname\"", "server.tls_cert", "is required with server.tls_key"),
    ])
    func tlsNeedsBothFiles(section: String, keyPath: String, message: String) {
        let issue = error(at: keyPath, in: section + "\n" + echoRoute)
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
    }

    @Test func tlsFilesMustBeReadable() {
        let issue = error(
            at: "server.tls_cert",
            in: "[server]\ntls_cert = \"/nonexistent/a.crt\"\ntls_key = \"/etc/hostname\"\n" + echoRoute
        )
        #expect(issue != nil)
    }

    @Test(arguments: [
        ("mcp = true", "mcp", "MCP"),
        ("resource = \"https://x/mcp\"", "resource", "MCP"),
        ("tools = { delete_repo = [\"mcp:write\"] }", "tools", "MCP"),
    ])
    func laterRouteKeysAreRefused(line: String, key: String, feature: String) {
        let issue = error(at: "routes[0].\(key)", in: echoRoute + line + "\n")
        #expect(
            issue?.message == "`\(key)` is not supported yet in this build (arrives with \(feature) support)")
        #expect(issue?.line == 6)
    }

    @Test func routeToolsSubtableIsRefused() {
        let issue = error(at: "routes[0].tools", in: echoRoute + "[routes.tools]\ndelete_repo = [\"mcp:write\"]\n")
        #expect(issue?.line == 6)
    }
}

@Suite struct ConfigLoaderTypeTests {
    @Test(arguments: [
        ("[server]\nlisten = 8080", "server.listen", "expected a string, got an integer (8080)"),
        ("[server]\nheader_timeout = 10", "server.header_timeout", "expected a duration string like \"30s\""),
        ("[server]\nmax_body_bytes = true", "server.max_body_bytes", "expected a size (an integer in bytes"),
        ("[server]\nmax_body_bytes = 1.5", "server.max_body_bytes", "got a floating-point number (1.5)"),
        ("[server]\ntrusted_proxies = \"10.0.0.0/8\"", "server.trusted_proxies", "expected an array of strings"),
        (
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", 7]", "server.trusted_proxies[1]",
            "expected a string, got an integer (7)"
        ),
        ("[server]\nevent_loops = \"2\"", "server.event_loops", "expected an integer, got a string (\"2\")"),
        ("server = 5", "server", "expected a table ([server]), got an integer (5)"),
        ("[logs]\ndenials_keep = \"10\"", "logs.denials_keep", "expected an integer"),
        ("[identity_headers]\nsubject = [\"X\"]", "identity_headers.subject", "expected a string, got an array"),
        ("[admin]\nlisten = false", "admin.listen", "expected a string, got a boolean (false)"),
    ])
    func wrongTypesNameTheExpectedType(section: String, keyPath: String, message: String) {
        let issue = error(at: keyPath, in: section + "\n" + echoRoute)
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
    }

    @Test func routesMustBeAnArrayOfTables() {
        let issue = error(at: "routes", in: "[routes]\nname = \"x\"\n")
        #expect(issue?.message == "expected an array of tables ([[routes]]), got a table")
        let element = error(at: "routes[0]", in: "routes = [1]\n")
        #expect(element?.message == "expected a table, got an integer (1)")
    }

    @Test func routeFieldTypes() {
        let found = issues(
            """
            [[routes]]
            name = 1
            path = ["/a"]
            upstream = 2
            auth = true
            methods = "GET"
            """)
        #expect(
            Set(found.map(\.keyPath)) == [
                "routes[0].name", "routes[0].path", "routes[0].upstream", "routes[0].auth", "routes[0].methods",
            ])
    }
}

@Suite struct ConfigLoaderRouteTests {
    private func route(_ body: String) -> String { "[[routes]]\n" + body + "\n" }

    @Test func atLeastOneRoute() {
        #expect(error(at: "routes", in: "[server]\nlisten = \"127.0.0.1:1\"\n")?.message.contains("[[routes]]") == true)
        #expect(error(at: "routes", in: "routes = []\n")?.message.hasPrefix("no routes configured") == true)
        #expect(error(at: "routes", in: "")?.line == nil)
    }

    @Test func requiredRouteKeysPointAtTheRouteHeader() {
        let found = issues(echoRoute + "[[routes]]\nmethods = [\"GET\"]\n")
        #expect(Set(found.map(\.keyPath)) == ["routes[1].name", "routes[1].path", "routes[1].upstream"])
        #expect(found.allSatisfy { $0.line == 6 })
        #expect(found.first { $0.keyPath == "routes[1].name" }?.message.hasPrefix("missing") == true)
    }

    @Test func misspelledAuthHasHint() {
        let issue = error(
            at: "routes[0].auth", in: route("name = \"a\"\npath = \"/a\"\nupstream = \"http://h\"\nauth = \"nnoe\""))
        #expect(
            issue?.message
                == "must be one of \"required\", \"optional\", \"none\", got \"nnoe\"; did you mean \"none\"?")
    }

    @Test(arguments: [
        ("echo", "must start with \"/\""),
        ("", "must start with \"/\""),
        ("/a?b=1", "must not contain \"?\""),
        ("/a#b", "must not contain \"#\""),
        ("/a%20b", "must not contain \"%\""),
        ("/a\\\\b", "must not contain a backslash"),
        ("/a\\tb", "must not contain control characters"),
        ("/a b", "could never match"),
        ("/caf\u{e9}", "could never match"),
        ("/a//b", "repeated slashes"),
        ("//", "repeated slashes"),
        ("/a/../b", "\".\" or \"..\" segments"),
        ("/a/./b", "\".\" or \"..\" segments"),
        ("/..", "\".\" or \"..\" segments"),
        ("/a/..;x", "\".\" or \"..\" segments"),
    ])
    func badRoutePaths(path: String, message: String) {
        let issue = error(
            at: "routes[0].path",
            in: route("name = \"a\"\npath = \"\(path)\"\nupstream = \"http://h\"\nauth = \"none\""))
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 3)
    }

    @Test(arguments: [("/a/", "/a"), ("/", "/"), ("/a/b.c/~d;v=1/", "/a/b.c/~d;v=1"), ("/..a/...", "/..a/...")])
    func routePathsAreNormalised(written: String, stored: String) throws {
        let config = try load(route("name = \"a\"\npath = \"\(written)\"\nupstream = \"http://h\"\nauth = \"none\""))
            .config
        #expect(config.routes.first?.path == stored)
    }

    @Test func duplicateNamesAndPaths() {
        let text =
            echoRoute
            + route("name = \"echo\"\npath = \"/other\"\nupstream = \"http://h\"\nauth = \"none\"")
            + route("name = \"third\"\npath = \"/echo/\"\nupstream = \"http://h\"\nauth = \"none\"")
        let found = issues(text)
        let name = found.first { $0.keyPath == "routes[1].name" }
        #expect(name?.message == "\"echo\" is already the name of routes[0]; route names must be unique")
        #expect(name?.line == 7)
        let path = found.first { $0.keyPath == "routes[2].path" }
        #expect(path?.message == "\"/echo\" is already the path of route \"echo\" (routes[0]); each path has one route")
        #expect(found.count == 2)
    }

    @Test(arguments: [
        ("", "must be 1–64"),
        ("has space", "must be 1–64"),
        ("none", "reserved"),
    ])
    func badRouteNames(name: String, message: String) {
        let issue = error(
            at: "routes[0].name",
            in: route("name = \"\(name)\"\npath = \"/a\"\nupstream = \"http://h\"\nauth = \"none\""))
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
    }

    @Test(arguments: [
        ("ftp://x", "must be an http(s) URL, got \"ftp://x\""),
        ("127.0.0.1:3001", "must be an http(s) URL"),
        ("http://", "has no host"),
        ("http:///path", "has no host"),
        ("http://:80/", "has no host"),
        ("http://user:pw@host/", "must not contain credentials"),
        ("http://host/a?b=1", "must not have a query string"),
        ("http://host/a#frag", "must not have a fragment"),
        ("http://host:0/", "port must be a number from 1 to 65535"),
        ("http://host:65536/", "port must be a number from 1 to 65535"),
        ("http://host:/", "port must be a number"),
        ("http://host:8o/", "port must be a number"),
        ("http://[::1/", "not a valid IPv6 address"),
        ("http://[1.2.3.4]/", "not a valid IPv6 address"),
        ("http://300.1.1.1/", "not a valid IPv4 address"),
        ("http://bad_host!/", "not a valid host name"),
        ("http://host/a b", "contains a space"),
        ("http://host/a/../b", "\".\" or \"..\" segments"),
        ("http://host/%zz", "invalid percent-escape"),
        ("http://host\\a/", "must not contain a backslash"),
    ])
    func badUpstreams(upstream: String, message: String) {
        let issue = error(
            at: "routes[0].upstream",
            in: route("name = \"a\"\npath = \"/a\"\nupstream = '\(upstream)'\nauth = \"none\""))
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 4)
    }

    @Test(arguments: [
        ("http://127.0.0.1:3001/mcp", UpstreamURL(scheme: "http", host: "127.0.0.1", port: 3001, basePath: "/mcp")),
        ("http://127.0.0.1:3001/mcp/", UpstreamURL(scheme: "http", host: "127.0.0.1", port: 3001, basePath: "/mcp")),
        ("https://api.example.com", UpstreamURL(scheme: "https", host: "api.example.com", port: 443, basePath: "")),
        ("http://[::1]:8080/a%2Fb", UpstreamURL(scheme: "http", host: "::1", port: 8080, basePath: "/a%2Fb")),
        ("http://h", UpstreamURL(scheme: "http", host: "h", port: 80, basePath: "")),
    ])
    func upstreamsAreParsed(text: String, expected: UpstreamURL) throws {
        #expect(try UpstreamURL.parse(text) == expected)
    }

    @Test func methodsAreUpperCasedAndChecked() throws {
        let config = try load(
            route(
                "name = \"a\"\npath = \"/a\"\nupstream = \"http://h\"\nauth = \"none\"\nmethods = [\"get\", \"Patch\"]")
        ).config
        #expect(config.routes.first?.methods == ["GET", "PATCH"])

        let found = issues(
            route(
                "name = \"a\"\npath = \"/a\"\nupstream = \"http://h\"\nauth = \"none\"\n"
                    + "methods = [\"GET\", \"get\", \"G T\", \"CONNECT\"]"))
        #expect(found.map(\.keyPath) == ["routes[0].methods[1]", "routes[0].methods[2]", "routes[0].methods[3]"])
        #expect(found.map(\.line) == [6, 6, 6])
        #expect(found[0].message == "GET is listed twice")

        let empty = error(
            at: "routes[0].methods",
            in: route("name = \"a\"\npath = \"/a\"\nupstream = \"http://h\"\nauth = \"none\"\nmethods = []"))
        #expect(empty?.message.hasPrefix("must not be empty") == true)
    }

    @Test func unusualMethodIsAWarning() throws {
        let result = try load(
            route(
                "name = \"a\"\npath = \"/a\"\nupstream = \"http://h\"\nauth = \"none\"\nmethods = [\"GET\", \"FETCH\"]")
        )
        #expect(result.config.routes.first?.methods == ["GET", "FETCH"])
        #expect(result.warnings.map(\.keyPath) == ["routes[0].methods[1]"])
        #expect(result.warnings.first?.description.hasPrefix("proxy.conf:6: warning: routes[0].methods[1]: ") == true)
    }
}

@Suite struct ConfigLoaderServerTests {
    @Test(arguments: [
        ("nowhere", "has no port"),
        (":8080", "has no host"),
        ("127.0.0.1:", "port must be a number"),
        ("127.0.0.1:65536", "port must be a number from 0 to 65535"),
        ("127.0.0.1:-1", "port must be a number"),
        ("::1:8080", "IPv6 addresses need brackets"),
        ("[::1]8080", "has no port"),
        ("[::1:8080", "missing \"]\""),
        ("[nope]:80", "not a valid IPv6 address"),
        ("999.0.0.1:80", "not a valid IPv4 address"),
        ("", "must not be empty"),
    ])
    func badListenAddresses(listen: String, message: String) {
        let issue = error(at: "server.listen", in: "[server]\nlisten = \"\(listen)\"\n" + echoRoute)
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 2)
    }

    @Test(arguments: [
        ("0.0.0.0:0", ListenAddress(host: "0.0.0.0", port: 0)),
        ("[::]:443", ListenAddress(host: "::", port: 443)),
        ("[0:0::1]:80", ListenAddress(host: "::1", port: 80)),
        ("LocalHost:8080", ListenAddress(host: "localhost", port: 8080)),
    ])
    func listenAddresses(text: String, expected: ListenAddress) throws {
        #expect(try ListenAddress.parse(text) == expected)
    }

    @Test(arguments: [
        ("127.0.0.1:8080", "127.0.0.1:8080"),
        ("0.0.0.0:9090", "127.0.0.1:9090"),
        ("127.0.0.1:9090", "[::]:9090"),
    ])
    func adminMustNotShareThePublicPort(server: String, admin: String) {
        let issue = error(
            at: "admin.listen", in: "[server]\nlisten = \"\(server)\"\n[admin]\nlisten = \"\(admin)\"\n" + echoRoute)
        #expect(issue?.message.hasPrefix("must differ from server.listen") == true)
        #expect(issue?.line == 4)
    }

    @Test func ephemeralPortsDoNotCollide() throws {
        let config = try load("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n" + echoRoute)
            .config
        #expect(config.server.listen.port == 0)
        #expect(config.admin.listen?.port == 0)
    }

    @Test func publicAdminListenerIsAWarning() throws {
        let result = try load("[admin]\nlisten = \"0.0.0.0:9090\"\n" + echoRoute)
        #expect(result.warnings.map(\.keyPath) == ["admin.listen"])
        #expect(result.warnings.first?.line == 2)
    }

    @Test(arguments: [
        ("header_timeout = \"0s\"", "server.header_timeout", "must be greater than 0"),
        ("shutdown_grace = \"-5s\"", "server.shutdown_grace", "must not be negative"),
        ("stream_idle_timeout = \"5 minutes\"", "server.stream_idle_timeout", "spaces"),
        ("upstream_connect_timeout = \"5w\"", "server.upstream_connect_timeout", "unknown duration unit"),
        ("upstream_response_timeout = \"\"", "server.upstream_response_timeout", "empty"),
        ("max_body_bytes = 0", "server.max_body_bytes", "must be greater than 0"),
        ("max_body_bytes = -1", "server.max_body_bytes", "must be greater than 0"),
        ("max_body_bytes = \"10MB\"", "server.max_body_bytes", "use \"MiB\""),
        ("max_header_bytes = 1023", "server.max_header_bytes", "must be between 1024 (1KiB) and 65536 (64KiB)"),
        ("max_header_bytes = \"128KiB\"", "server.max_header_bytes", "must be between 1024"),
        ("event_loops = -1", "server.event_loops", "must be between 0 and 1024, got -1"),
        ("upstream_threads = 5000", "server.upstream_threads", "must be between 0 and 1024"),
        ("public_url = \"gateway.example.com\"", "server.public_url", "must be an http(s) URL"),
        ("public_url = \"https://gw/?x=1\"", "server.public_url", "query string"),
        ("trusted_proxies = [\"10.0.0.0/33\"]", "server.trusted_proxies[0]", "expected an IP address or CIDR block"),
    ])
    func badServerValues(line: String, keyPath: String, message: String) {
        let issue = error(at: keyPath, in: "[server]\n\(line)\n" + echoRoute)
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 2)
    }

    @Test func trustedProxyElementsAreLocatedAndWarned() throws {
        let found = issues(
            """
            [server]
            trusted_proxies = [
                "10.0.0.0/8",
                "nonsense",
                "10.1.2.3/8",
            ]
            """ + "\n" + echoRoute)
        let error = found.first { $0.severity == .error }
        #expect(error?.keyPath == "server.trusted_proxies[1]")
        #expect(error?.line == 4)
        let warning = found.first { $0.severity == .warning }
        #expect(warning?.keyPath == "server.trusted_proxies[2]")
        #expect(warning?.message == "\"10.1.2.3/8\" has host bits set; it means 10.0.0.0/8")
        #expect(warning?.line == 5)
    }

    @Test func emptyTrustedProxiesTrustNoOne() throws {
        #expect(try load("[server]\ntrusted_proxies = []\n" + echoRoute).config.server.trustedProxies.isEmpty)
    }
}

@Suite struct ConfigLoaderLogsTests {
    @Test(arguments: [
        ("denials_keep = -1", "logs.denials_keep", "must be at least 0, got -1"),
        ("denials_max_bytes = \"0B\"", "logs.denials_max_bytes", "must be greater than 0"),
        ("level = \"warn\"", "logs.level", "did you mean \"warning\"?"),
        ("level = \"INFO\"", "logs.level", "did you mean \"info\"?"),
        ("access = \"\"", "logs.access", "must not be empty"),
        ("denials = \"\"", "logs.denials", "must not be empty"),
    ])
    func badLogValues(line: String, keyPath: String, message: String) {
        let issue = error(at: keyPath, in: "[logs]\n\(line)\n" + echoRoute)
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 2)
    }

    @Test func accessAndDenialsMustBeDifferentFiles() {
        let issue = error(at: "logs.denials", in: "[logs]\naccess = \"x.jsonl\"\ndenials = \"./x.jsonl\"\n" + echoRoute)
        #expect(issue?.message.contains("same file") == true)
    }
}

@Suite struct ConfigLoaderIdentityHeaderTests {
    @Test(arguments: [
        ("subject = \"X User\"", "identity_headers.subject", "not a valid HTTP header name"),
        ("email = \"\"", "identity_headers.email", "not a valid HTTP header name"),
        ("org = \"X-Org:\"", "identity_headers.org", "not a valid HTTP header name"),
        ("role = \"Authorization\"", "identity_headers.role", "is reserved"),
        ("role = \"host\"", "identity_headers.role", "is reserved"),
        ("scopes = \"Cookie\"", "identity_headers.scopes", "is reserved"),
        ("scopes = \"content-length\"", "identity_headers.scopes", "is reserved"),
        ("auth_method = \"Transfer-Encoding\"", "identity_headers.auth_method", "is reserved"),
        ("auth_method = \"Connection\"", "identity_headers.auth_method", "is reserved"),
        ("key_id = \"Proxy-Foo\"", "identity_headers.key_id", "is reserved"),
        ("key_id = \"X_Forwarded_For\"", "identity_headers.key_id", "is reserved"),
        ("key_id = \"X-API-KEY\"", "identity_headers.key_id", "is reserved"),
    ])
    func badHeaderNames(line: String, keyPath: String, message: String) {
        let issue = error(at: keyPath, in: "[identity_headers]\n\(line)\n" + echoRoute)
        #expect(issue?.message.contains(message) == true, "\(issue?.message ?? "")")
        #expect(issue?.line == 2)
    }

    @Test func namesMustBeDistinctCaseInsensitively() {
        let issue = error(
            at: "identity_headers.email", in: "[identity_headers]\nsubject = \"X-Who\"\nemail = \"x-who\"\n" + echoRoute
        )
        #expect(issue?.message == "\"x-who\" is also used by identity_headers.subject")
        #expect(issue?.line == 3)
    }

    @Test func collisionWithADefaultNameIsReportedOnTheWrittenKey() {
        let issue = error(at: "identity_headers.role", in: "[identity_headers]\nrole = \"X_User_Id\"\n" + echoRoute)
        #expect(issue?.message == "\"X_User_Id\" is also used by identity_headers.subject")
    }
}

@Suite struct SourceLocatorTests {
    @Test func findsKeysHeadersAndElements() {
        let text = """
            # comment with listen = "x"
            top = 1
            [server]
            listen = "a"   # trailing
              "quoted key" = 2
            dotted.inner = 3
            trusted_proxies = [
              "a", "b",
              # a comment inside
              "c",
            ]
            note = \"\"\"
            fake = "inside a string"
            [not-a-header]
            \"\"\"
            after = 4

            [[routes]]
            name = "one"
            [routes.tools]
            x = 1

            [[routes]]
            name = "two"
            inline = [{ a = 1 }, { b = 2 }]
            [ admin ]
            listen = "b"
            """
        let locator = SourceLocator(text: text)
        #expect(locator.line(of: "top") == 2)
        #expect(locator.line(of: "server") == 3)
        #expect(locator.line(of: "server.listen") == 4)
        #expect(locator.line(of: "server.\"quoted key\"") == 5)
        #expect(locator.line(of: "server.dotted") == 6)
        #expect(locator.line(of: "server.dotted.inner") == 6)
        #expect(locator.line(of: "server.trusted_proxies") == 7)
        #expect(locator.line(of: "server.trusted_proxies[0]") == 8)
        #expect(locator.line(of: "server.trusted_proxies[1]") == 8)
        #expect(locator.line(of: "server.trusted_proxies[2]") == 10)
        #expect(locator.line(of: "server.trusted_proxies[3]") == nil)
        #expect(locator.line(of: "server.fake") == nil)
        #expect(locator.line(of: "not-a-header") == nil)
        #expect(locator.line(of: "server.after") == 16)
        #expect(locator.line(of: "routes[0]") == 18)
        #expect(locator.line(of: "routes[0].name") == 19)
        #expect(locator.line(of: "routes[0].tools") == 20)
        #expect(locator.line(of: "routes[0].tools.x") == 21)
        #expect(locator.line(of: "routes[1]") == 23)
        #expect(locator.line(of: "routes[1].name") == 24)
        #expect(locator.line(of: "routes[1].inline[1]") == 25)
        #expect(locator.line(of: "routes[1].inline[1].b") == nil)
        #expect(locator.line(of: "admin.listen") == 27)
        #expect(locator.line(of: "logs") == nil)
    }

    @Test func inlineArrayOfRoutes() {
        let text = """
            routes = [
              { name = "a", path = "/a" },
              { name = "b", path = "a" },
            ]
            """
        let locator = SourceLocator(text: text)
        #expect(locator.line(of: "routes[0]") == 2)
        #expect(locator.line(of: "routes[1]") == 3)
        #expect(locator.line(of: "routes[1].path") == nil)
    }

    @Test func crlfLineEndings() {
        let locator = SourceLocator(text: "[server]\r\nlisten = \"a\"\r\n[[routes]]\r\nname = \"x\"\r\n")
        #expect(locator.line(of: "server.listen") == 2)
        #expect(locator.line(of: "routes[0].name") == 4)
    }
}
