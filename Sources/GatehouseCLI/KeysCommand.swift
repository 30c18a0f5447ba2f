import ArgumentParser
import Gatehouse

#if canImport(Glibc)
    import Glibc
#endif

/// `gatehouse keys create | list | revoke | rotate` (SPEC §1): manages the API keys in the
/// store the config names. A running gateway picks up every change within 2 s.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list, revoke and rotate API keys.",
        subcommands: [Create.self, List.self, Revoke.self, Rotate.self]
    )
}

extension KeysCommand {
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API key; the full key is printed once, as the last line of stdout."
        )

        @OptionGroup var options: ConfigOption

        @Option(help: "A label for the key: who or what uses it.")
        var name: String

        @Option(help: "The identity the key authenticates as.")
        var subject: String

        @Option(help: "Email of the identity.")
        var email: String?

        @Option(help: "Organization of the identity.")
        var org: String?

        @Option(help: "Role of the identity (see [roles] in the config).")
        var role: String?

        @Option(help: "Space-separated scopes, e.g. \"mcp:read logs:read\".")
        var scopes: String = ""

        @Option(help: "Lifetime such as 90d or 12h; without it the key does not expire.")
        var expires: String?

        @Flag(help: "Print only one JSON object {\"id\":…,\"key\":…}.")
        var json = false

        func validate() throws {
            _ = try expiresIn()
        }

        func run() throws {
            let store = try openKeyStore(options)
            let lifetime = try expiresIn()
            let scopeList = scopes.split(whereSeparator: \.isWhitespace).map(String.init)
            let (record, key) = try runStoreOperation {
                try store.create(
                    name: name, subject: subject, email: email, org: org, role: role, scopes: scopeList,
                    expiresIn: lifetime)
            }
            if json {
                var object = JSONObjectWriter()
                object.field("id", record.id)
                object.field("key", key)
                print(object.finish())
                return
            }
            let expiry = record.expires.map { ", expires \(rfc3339($0))" } ?? ""
            printError(
                "Created API key \(record.id) (\"\(record.name)\") for subject \"\(record.subject)\"\(expiry). "
                    + "Store this key now; it cannot be shown again:")
            print(key)
        }

        private func expiresIn() throws -> Duration? {
            guard let expires else { return nil }
            do {
                return try ConfigDuration.parse(expires)
            } catch {
                throw ValidationError("invalid --expires: \(error.message)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List API keys (never their secrets); times are RFC 3339 UTC."
        )

        @OptionGroup var options: ConfigOption

        @Flag(help: "Print a JSON array.")
        var json = false

        func run() throws {
            let store = try openKeyStore(options)
            let records = try runStoreOperation { try store.list() }
            if json {
                printJSON(records)
            } else if records.isEmpty {
                printError("no API keys in \(store.path)")
            } else {
                printTable(records)
            }
        }

        private func printJSON(_ records: [APIKeyRecord]) {
            guard !records.isEmpty else {
                print("[]")
                return
            }
            // One object per line: valid JSON that still reads (and greps) well.
            let objects = records.map { record in
                var object = JSONObjectWriter()
                object.field("id", record.id)
                object.field("name", record.name)
                object.field("subject", record.subject)
                object.field("email", record.email)
                object.field("org", record.org)
                object.field("role", record.role)
                object.field("scopes", record.scopes)
                object.field("created", rfc3339(record.created))
                object.field("expires", record.expires.map(rfc3339))
                object.field("revoked", record.revoked.map(rfc3339))
                object.field("last_used", record.lastUsed.map(rfc3339))
                return object.finish()
            }
            print("[\n" + objects.joined(separator: ",\n") + "\n]")
        }

        private func printTable(_ records: [APIKeyRecord]) {
            let header = [
                "ID", "NAME", "SUBJECT", "ORG", "ROLE", "SCOPES", "CREATED", "EXPIRES", "REVOKED", "LAST USED",
            ]
            let rows = records.map { record in
                [
                    record.id, record.name, record.subject, record.org ?? "-", record.role ?? "-",
                    record.scopes.isEmpty ? "-" : record.scopes.joined(separator: " "), rfc3339(record.created),
                    record.expires.map(rfc3339) ?? "-", record.revoked.map(rfc3339) ?? "-",
                    record.lastUsed.map(rfc3339) ?? "-",
                ]
            }
            var widths = header.map(\.count)
            for row in rows {
                for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
            }
            for row in [header] + rows {
                let cells = row.enumerated().map { column, cell in
                    column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
                }
                print(cells.joined(separator: "  "))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an API key; running gateways refuse it within 2 s."
        )

        @OptionGroup var options: ConfigOption

        @Argument(help: "The key's id (see `gatehouse keys list`).")
        var id: String

        func run() throws {
            let store = try openKeyStore(options)
            try checkKeyID(id, prefix: store.prefix)
            let previous = try runStoreOperation { try store.record(id: id) }
            let record = try runStoreOperation { try store.revoke(id: id) }
            if let revoked = previous?.revoked {
                print("API key \(id) was already revoked at \(rfc3339(revoked)).")
            } else {
                print(
                    "Revoked API key \(id) (\"\(record.name)\", subject \"\(record.subject)\"); "
                        + "running gateways refuse it within 2 s.")
            }
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Give an API key a new secret (printed once, as the last line of stdout); the old one stops working."
        )

        @OptionGroup var options: ConfigOption

        @Argument(help: "The key's id (see `gatehouse keys list`).")
        var id: String

        @Flag(help: "Print only one JSON object {\"id\":…,\"key\":…}.")
        var json = false

        func run() throws {
            let store = try openKeyStore(options)
            try checkKeyID(id, prefix: store.prefix)
            let key = try runStoreOperation { try store.rotate(id: id) }
            if json {
                var object = JSONObjectWriter()
                object.field("id", id)
                object.field("key", key)
                print(object.finish())
                return
            }
            printError(
                "Rotated API key \(id); running gateways refuse the old secret within 2 s. "
                    + "Store this key now; it cannot be shown again:")
            print(key)
        }
    }
}

/// Opens the key store named by the config (`[api_keys] store`); on failure prints why
/// and exits 1. Shared with `gatehouse revoke`, whose revocations live in the same file.
func openKeyStore(_ options: ConfigOption) throws -> APIKeyStore {
    guard let loaded = loadConfigReportingIssues(options.config) else { throw ExitStatus.userError }
    let settings = loaded.config.apiKeys
    do {
        return try APIKeyStore(path: settings.store, prefix: settings.prefix)
    } catch {
        printError("cannot open the key store \(settings.store): \(error)")
        throw ExitStatus.userError
    }
}

/// Runs a store operation: the operator's mistakes (unknown id, revoked key, bad value)
/// exit 1 with the store's message; SQLite failures exit 2.
func runStoreOperation<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as APIKeyStoreError {
        printError(error.description)
        throw ExitStatus.userError
    } catch {
        printError("key store failure: \(error)")
        throw ExitStatus.internalError
    }
}

/// Refuses what cannot be a key id before any lookup. A full key pasted by mistake is
/// named by its id only, so its secret is not echoed into terminals and shell logs.
private func checkKeyID(_ text: String, prefix: String) throws {
    if let parsed = APIKeyFormat.parse(text, prefix: prefix) {
        printError("that is a full API key; pass only its id: \(parsed.id)")
        throw ExitStatus.userError
    }
    guard APIKeyFormat.isValidID(text) else {
        printError("\"\(text)\" is not an API key id (12 characters a-z and 2-7; see `gatehouse keys list`)")
        throw ExitStatus.userError
    }
}

/// RFC 3339 UTC to the second (`2026-11-21T12:00:00Z`).
func rfc3339(_ seconds: Int64) -> String {
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    func pad(_ value: Int32, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    return pad(parts.tm_year + 1900, 4) + "-" + pad(parts.tm_mon + 1, 2) + "-" + pad(parts.tm_mday, 2) + "T"
        + pad(parts.tm_hour, 2) + ":" + pad(parts.tm_min, 2) + ":" + pad(parts.tm_sec, 2) + "Z"
}
