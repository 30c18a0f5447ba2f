import TOMLKit

// `[server]`, `[admin]`, `[logs]` and `[identity_headers]`. Keys that are absent keep the
// model's defaults (GatewayConfig.swift), which match SPEC §2.
extension ConfigReader {
    static let serverKeys = [
        "listen", "public_url", "trusted_proxies", "max_header_bytes", "max_body_bytes", "header_timeout",
        "upstream_connect_timeout", "upstream_response_timeout", "stream_idle_timeout", "shutdown_grace",
        "event_loops", "upstream_threads", "tls_cert", "tls_key",
    ]
    /// NIO's HTTP parser caps a header block at about 80 KiB; below 1 KiB ordinary
    /// browsers' requests would be refused.
    static let headerBytesRange = 1024...65536

    mutating func readServer(_ root: TOMLTable) -> ServerSettings {
        var settings = ServerSettings()
        let path = "server"
        guard let table = table(root, path, at: "") else { return settings }
        checkKeys(table, at: path, known: Self.serverKeys)

        if let text = string(table, "listen", at: path), let address = listenAddress(text, at: "server.listen") {
            settings.listen = address
        }
        if let text = string(table, "public_url", at: path) {
            do {
                _ = try UpstreamURL.parse(text)
                var trimmed = Substring(text)
                while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
                settings.publicURL = String(trimmed)
            } catch {
                self.error("server.public_url", error.message)
            }
        }
        if let list = strings(table, "trusted_proxies", at: path) {
            settings.trustedProxies = list.compactMap { cidr($0.text, at: $0.path) }
        }
        if let bytes = size(table, "max_header_bytes", at: path) {
            if let value = Int(exactly: bytes), Self.headerBytesRange.contains(value) {
                settings.maxHeaderBytes = value
            } else {
                error(
                    "server.max_header_bytes",
                    "must be between 1024 (1KiB) and 65536 (64KiB), got \(bytes): the HTTP parser cannot go above ~80 KiB"
                )
            }
        }
        if let bytes = size(table, "max_body_bytes", at: path) { settings.maxBodyBytes = bytes }
        if let value = duration(table, "header_timeout", at: path) { settings.headerTimeout = value }
        if let value = duration(table, "upstream_connect_timeout", at: path) { settings.upstreamConnectTimeout = value }
        if let value = duration(table, "upstream_response_timeout", at: path) {
            settings.upstreamResponseTimeout = value
        }
        if let value = duration(table, "stream_idle_timeout", at: path) { settings.streamIdleTimeout = value }
        if let value = duration(table, "shutdown_grace", at: path) { settings.shutdownGrace = value }
        let certificate = string(table, "tls_cert", at: path).flatMap { readableFile($0, at: "server.tls_cert") }
        let key = string(table, "tls_key", at: path).flatMap { readableFile($0, at: "server.tls_key") }
        switch (table["tls_cert"] != nil, table["tls_key"] != nil) {
        case (true, false): error("server.tls_key", "is required with server.tls_cert (both set = HTTPS listener)")
        case (false, true): error("server.tls_cert", "is required with server.tls_key (both set = HTTPS listener)")
        default: break
        }
        if let certificate, let key { settings.tls = TLSFiles(certificate: certificate, privateKey: key) }
        if let count = integer(table, "event_loops", at: path, in: 0...1024) { settings.eventLoops = count }
        if let count = integer(table, "upstream_threads", at: path, in: 0...1024) { settings.upstreamThreads = count }
        return settings
    }

    mutating func readAdmin(_ root: TOMLTable, server: ServerSettings) -> AdminSettings {
        var settings = AdminSettings()
        let path = "admin"
        guard let table = table(root, path, at: "") else { return settings }
        checkKeys(table, at: path, known: ["listen"])
        let listen = string(table, "listen", at: path)
        if listen == "off" {
            settings.listen = nil
        } else if let text = listen, let address = listenAddress(text, at: "admin.listen") {
            settings.listen = address
            let publicAddress = server.listen
            // Compared only with a valid server.listen; an invalid one is reported already.
            let serverListenValid = !issues.contains { $0.keyPath == "server.listen" }
            let samePort = serverListenValid && address.port == publicAddress.port && address.port != 0
            if samePort && (address.host == publicAddress.host || address.isWildcard || publicAddress.isWildcard) {
                error(
                    "admin.listen",
                    "must differ from server.listen (\(publicAddress)): admin endpoints never share the public port")
            } else if !address.isLoopback {
                warning(
                    "admin.listen",
                    "\(address) is reachable from other hosts; keep /metrics and /readyz behind a firewall")
            }
        }
        return settings
    }

    mutating func readLogs(_ root: TOMLTable) -> LogSettings {
        var settings = LogSettings()
        settings.denials = ConfigPaths.resolve("logs/denials.jsonl", against: baseDirectory)
        let path = "logs"
        guard let table = table(root, path, at: "") else { return settings }
        checkKeys(table, at: path, known: ["access", "denials", "denials_max_bytes", "denials_keep", "level"])

        switch string(table, "access", at: path) {
        case "off": settings.access = .off
        case "stdout": settings.access = .stdout
        case let text?: filePath(text, at: "logs.access").map { settings.access = .file($0) }
        case nil: break
        }
        switch string(table, "denials", at: path) {
        case "off": settings.denials = nil
        case let text?: filePath(text, at: "logs.denials").map { settings.denials = $0 }
        case nil: break
        }
        if case .file(let access) = settings.access, access == settings.denials {
            error("logs.denials", "must not be the same file as logs.access (\(access))")
        }
        if let bytes = size(table, "denials_max_bytes", at: path) { settings.denialsMaxBytes = bytes }
        if let keep = integer(table, "denials_keep", at: path, in: 0...Int.max) { settings.denialsKeep = keep }
        let levels = LogLevel.allCases.map(\.rawValue)
        if let text = choice(table, "level", at: path, allowed: levels), let level = LogLevel(rawValue: text) {
            settings.level = level
        }
        return settings
    }

    // MARK: Shared value readers

    mutating func listenAddress(_ text: String, at keyPath: String) -> ListenAddress? {
        do {
            return try ListenAddress.parse(text)
        } catch {
            self.error(keyPath, error.message)
            return nil
        }
    }

    mutating func cidr(_ text: String, at keyPath: String) -> CIDR? {
        guard let block = CIDR.parse(text) else {
            error(
                keyPath,
                "expected an IP address or CIDR block like \"10.0.0.0/8\" or \"::1/128\", got \(text.configQuoted)")
            return nil
        }
        let written = text.split(separator: "/").first.map(String.init) ?? text
        if let address = IPAddress.parse(written), address != block.network {
            warning(keyPath, "\(text.configQuoted) has host bits set; it means \(block)")
        }
        if block.prefixLength == 0 {
            warning(keyPath, "\(block) trusts every peer: any client can then forge X-Forwarded-For")
        }
        return block
    }
}
