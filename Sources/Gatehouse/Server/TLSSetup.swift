import NIOSSL

/// The HTTPS listener's TLS context (swift-nio-ssl): TLS 1.2 or newer, HTTP/1.1 offered
/// through ALPN. Built at start-up so unreadable, unparseable or mismatched files stop the
/// gateway with a clear message instead of failing every handshake later.
enum TLSSetup {
    static func makeContext(_ files: TLSFiles, sourcePath: String?) throws(ConfigErrors) -> NIOSSLContext {
        func failure(_ key: String, _ message: String) -> ConfigErrors {
            ConfigErrors(issues: [
                ConfigIssue(severity: .error, keyPath: key, line: nil, message: message, sourcePath: sourcePath)
            ])
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
        } catch {
            throw failure("server.tls_cert", "\(files.certificate): not a PEM certificate chain (\(error))")
        }
        guard !chain.isEmpty else {
            throw failure("server.tls_cert", "\(files.certificate): no certificate in the file")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem)
        } catch {
            throw failure("server.tls_key", "\(files.privateKey): not a PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw failure(
                "server.tls_key",
                "\(files.privateKey) does not match the certificate in \(files.certificate) (\(error))"
            )
        }
    }
}
