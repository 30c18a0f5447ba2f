import Foundation
import Gatehouse
import Testing

/// The HTTPS listener (`tls_cert` / `tls_key`), with a certificate made at test time.
@Suite("TLS") struct TLSTests {
    /// A self-signed certificate for 127.0.0.1 (and a second, unrelated key), via openssl.
    static func makeCertificate(in folder: TempFolder) async throws -> (cert: String, key: String, otherKey: String) {
        let cert = folder.file("server.crt")
        let key = folder.file("server.key")
        let otherKey = folder.file("other.key")
        let made = try await runTool(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert,
            ]
        )
        #expect(made == 0, "openssl req failed")
        let other = try await runTool(
            "/usr/bin/openssl",
            ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", otherKey]
        )
        #expect(other == 0, "openssl genpkey failed")
        return (cert, key, otherKey)
    }

    static func runTool(_ path: String, _ arguments: [String]) async throws -> Int32 {
        let child = try ChildProcess.spawn(path, arguments)
        defer { child.removeOutputFiles() }
        return await child.wait(timeout: .seconds(30))
    }

    @Test("HTTPS listener serves requests; the upstream sees X-Forwarded-Proto https")
    func https() async throws {
        let folder = try TempFolder("tls")
        let files = try await Self.makeCertificate(in: folder)
        try await GatewayFixture.with(configure: { config in
            config.server.tls = TLSFiles(certificate: files.cert, privateKey: files.key)
        }) { gw in
            var options = CurlClient.Options()
            options.caFile = files.cert
            let response = try await CurlClient.request(url: "https://127.0.0.1:\(gw.port)/api/x", options: options)
            #expect(response.status == 200, "\(response.curlError ?? "")")
            #expect(gw.upstream.received().last?.header("X-Forwarded-Proto") == "https")
            // Plain HTTP on the TLS port is not served.
            let plain = try await CurlClient.request(url: "http://127.0.0.1:\(gw.port)/api/x", timeout: .seconds(5))
            #expect(plain.status != 200)
            // A client that does not trust the certificate refuses it (nothing is downgraded).
            let untrusted = try await CurlClient.request(url: "https://127.0.0.1:\(gw.port)/api/x")
            #expect(!untrusted.succeeded)
        }
    }

    @Test("unreadable, unparseable or mismatched files stop start-up with a clear error")
    func badFiles() async throws {
        let folder = try TempFolder("tls-bad")
        let files = try await Self.makeCertificate(in: folder)
        let garbage = try folder.write("garbage.pem", "not a certificate\n")
        let cases: [(TLSFiles, String)] = [
            (TLSFiles(certificate: files.cert, privateKey: files.otherKey), "server.tls_key"),
            (TLSFiles(certificate: garbage, privateKey: files.key), "server.tls_cert"),
            (TLSFiles(certificate: files.cert, privateKey: garbage), "server.tls_key"),
        ]
        for (tls, key) in cases {
            var config = GatewayConfig(
                routes: [
                    RouteConfig(
                        name: "r",
                        path: "/",
                        upstream: UpstreamURL(scheme: "http", host: "127.0.0.1", port: 1, basePath: ""),
                        auth: .none
                    )
                ]
            )
            config.apiKeys = APIKeySettings(store: folder.file("keys.db"))
            config.server.tls = tls
            config.logs.access = .off
            config.logs.denials = nil
            do {
                let server = try GatewayServer(config: config)
                await server.shutdown()
                Issue.record("\(key): the server started with bad TLS files")
            } catch let errors as ConfigErrors {
                #expect(errors.issues.contains { $0.keyPath == key }, "\(errors)")
            }
        }
    }
}
