import Foundation

/// Refusals of the key store that the operator can act on (the CLI prints them and
/// exits 1). SQLite failures arrive as `SQLiteError` instead.
public enum APIKeyStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownKey(id: String)
    case keyRevoked(id: String)
    case invalidValue(String)
    case newerSchema(path: String, found: Int64, supported: Int64)
    case cannotCreateFolder(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknownKey(let id):
            "no API key with id \"\(id)\" (see `gatehouse keys list`)"
        case .keyRevoked(let id):
            "API key \"\(id)\" is revoked; create a new key instead"
        case .invalidValue(let message):
            message
        case .newerSchema(let path, let found, let supported):
            "\(path) has schema version \(found), written by a newer Gatehouse; this one reads up to \(supported)"
        case .cannotCreateFolder(let path, let reason):
            "cannot create the key store's folder \(path): \(reason)"
        }
    }
}

/// The embedded key store (SPEC §3 "API keys", "Revocation"): API keys and token
/// revocations in one SQLite file. Only SHA-256 hashes of secrets are written; the full
/// key exists in memory just long enough for `create` / `rotate` to return it.
///
/// Threading: like its `SQLiteDatabase`, a store is not `Sendable` and belongs to one
/// owner (a CLI command, the `KeyStoreWatcher` thread); every owner opens its own. The
/// request path never touches it: it reads a `KeyStoreSnapshot` held by `APIKeyVerifier`.
public final class APIKeyStore {
    /// `PRAGMA user_version` of the layout below; 0 means a new, empty file.
    public static let schemaVersion: Int64 = 1

    public let path: String
    /// The `<prefix>` of the keys this store hands out.
    public let prefix: String
    private let database: SQLiteDatabase

    private static let schema = """
        CREATE TABLE IF NOT EXISTS api_keys (
            id TEXT PRIMARY KEY NOT NULL,
            secret_sha256 BLOB NOT NULL,
            name TEXT NOT NULL,
            subject TEXT NOT NULL,
            email TEXT,
            org TEXT,
            role TEXT,
            scopes TEXT NOT NULL,
            created INTEGER NOT NULL,
            expires INTEGER,
            revoked INTEGER,
            last_used INTEGER
        );
        CREATE TABLE IF NOT EXISTS revocations (
            kind TEXT NOT NULL CHECK (kind IN ('jti', 'subject')),
            value TEXT NOT NULL,
            revoked_at INTEGER NOT NULL,
            PRIMARY KEY (kind, value)
        );
        """

    private static let recordColumns =
        "id, name, subject, email, org, role, scopes, created, expires, revoked, last_used"

    /// Opens (creating when missing) the store at `path`: its folder (mode 0700), the file
    /// (mode 0600) and the schema.
    public init(path: String, prefix: String = "ghk") throws {
        self.path = path
        self.prefix = prefix
        try Self.createFolder(of: path)
        database = try SQLiteDatabase(path: path, fileMode: 0o600)
        try migrate()
    }

    /// Seconds since the Unix epoch, from the wall clock.
    public static func currentTime() -> Int64 {
        Int64(Date().timeIntervalSince1970.rounded(.down))
    }

    // MARK: API keys

    /// Creates a key. Returns its record and the full key, which is never stored and
    /// cannot be recovered afterwards.
    public func create(
        name: String,
        subject: String,
        email: String? = nil,
        org: String? = nil,
        role: String? = nil,
        scopes: [String] = [],
        expiresIn: Duration? = nil,
        now: Int64 = APIKeyStore.currentTime()
    ) throws -> (record: APIKeyRecord, fullKey: String) {
        guard !name.isEmpty else { throw APIKeyStoreError.invalidValue("the key's name must not be empty") }
        guard !subject.isEmpty else { throw APIKeyStoreError.invalidValue("the key's subject must not be empty") }
        for scope in scopes where scope.isEmpty || scope.contains(where: \.isWhitespace) {
            throw APIKeyStoreError.invalidValue("scope \"\(scope)\" must be one word without spaces")
        }
        var expires: Int64?
        if let expiresIn {
            let seconds = expiresIn.components.seconds
            guard seconds > 0 else { throw APIKeyStoreError.invalidValue("the expiry must be at least one second") }
            let (sum, overflow) = now.addingReportingOverflow(seconds)
            guard !overflow else { throw APIKeyStoreError.invalidValue("the expiry is too far in the future") }
            expires = sum
        }
        let secret = APIKeyFormat.generateSecret()
        let id = try database.transaction {
            // 60 random bits make a collision unlikely, not impossible: draw again.
            var id = APIKeyFormat.generateID()
            while try exists(id: id) { id = APIKeyFormat.generateID() }
            try database.run(
                """
                INSERT INTO api_keys (id, secret_sha256, name, subject, email, org, role, scopes, created, expires)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .text(id), .blob(APIKeyFormat.hash(secret)), .text(name), .text(subject), Self.optional(email),
                    Self.optional(org), Self.optional(role), .text(scopes.joined(separator: " ")), .integer(now),
                    expires.map(SQLiteValue.integer) ?? .null,
                ])
            return id
        }
        let record = APIKeyRecord(
            id: id, name: name, subject: subject, email: email, org: org, role: role, scopes: scopes, created: now,
            expires: expires)
        return (record, APIKeyFormat.key(prefix: prefix, id: id, secret: secret))
    }

    /// Every key, oldest first. Never the hashes.
    public func list() throws -> [APIKeyRecord] {
        try database.query("SELECT \(Self.recordColumns) FROM api_keys ORDER BY created, id", row: Self.record)
    }

    public func record(id: String) throws -> APIKeyRecord? {
        try database.query("SELECT \(Self.recordColumns) FROM api_keys WHERE id = ?", [.text(id)], row: Self.record)
            .first
    }

    /// Revokes a key from `now` on. Revoking a revoked key keeps the first revocation time.
    /// Returns the record as stored afterwards.
    @discardableResult
    public func revoke(id: String, now: Int64 = APIKeyStore.currentTime()) throws -> APIKeyRecord {
        try database.transaction {
            guard try exists(id: id) else { throw APIKeyStoreError.unknownKey(id: id) }
            try database.run(
                "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", [.integer(now), .text(id)])
            guard let record = try record(id: id) else { throw APIKeyStoreError.unknownKey(id: id) }
            return record
        }
    }

    /// Gives the key a new secret and returns the new full key; the old secret is refused
    /// from then on (by running gateways once they reload, within 2 s). A revoked key
    /// cannot be rotated back to life.
    public func rotate(id: String) throws -> String {
        let secret = APIKeyFormat.generateSecret()
        try database.transaction {
            guard let record = try record(id: id) else { throw APIKeyStoreError.unknownKey(id: id) }
            guard record.revoked == nil else { throw APIKeyStoreError.keyRevoked(id: id) }
            try database.run(
                "UPDATE api_keys SET secret_sha256 = ? WHERE id = ?", [.blob(APIKeyFormat.hash(secret)), .text(id)])
        }
        return APIKeyFormat.key(prefix: prefix, id: id, secret: secret)
    }

    /// Writes a batch of `last_used` times (id → seconds) in one transaction. A time never
    /// moves backwards; ids that no longer exist are skipped.
    public func recordLastUsed(_ times: [String: Int64]) throws {
        guard !times.isEmpty else { return }
        try database.transaction {
            let statement = try database.prepare(
                "UPDATE api_keys SET last_used = max(coalesce(last_used, 0), ?) WHERE id = ?")
            for (id, time) in times {
                try statement.bind([.integer(time), .text(id)])
                while try statement.step() {}
                statement.reset()
            }
        }
    }

    // MARK: Token revocations

    /// Revokes one JWT by its `jti`.
    public func revokeToken(jti: String, now: Int64 = APIKeyStore.currentTime()) throws {
        guard !jti.isEmpty else { throw APIKeyStoreError.invalidValue("the jti must not be empty") }
        try database.run(
            "INSERT OR IGNORE INTO revocations (kind, value, revoked_at) VALUES ('jti', ?, ?)",
            [.text(jti), .integer(now)])
    }

    /// Revokes every token of `subject` issued before `time`. A later revocation of the
    /// same subject moves the time forward; an earlier one never moves it back.
    public func revokeSubject(_ subject: String, at time: Int64) throws {
        guard !subject.isEmpty else { throw APIKeyStoreError.invalidValue("the subject must not be empty") }
        try database.run(
            """
            INSERT INTO revocations (kind, value, revoked_at) VALUES ('subject', ?, ?)
            ON CONFLICT (kind, value) DO UPDATE SET revoked_at = max(revoked_at, excluded.revoked_at)
            """,
            [.text(subject), .integer(time)])
    }

    // MARK: Loading

    /// Everything the gateway holds in memory, read in one transaction.
    public func snapshot() throws -> KeyStoreSnapshot {
        try database.transaction(.deferred) {
            var snapshot = KeyStoreSnapshot()
            let keys = try database.query("SELECT \(Self.recordColumns), secret_sha256 FROM api_keys") { row in
                StoredAPIKey(record: Self.record(row), secretSHA256: row.blob(11))
            }
            for key in keys { snapshot.keys[key.record.id] = key }
            let revocations = try database.query("SELECT kind, value, revoked_at FROM revocations") { row in
                (kind: row.text(0), value: row.text(1), time: row.int64(2))
            }
            for revocation in revocations {
                if revocation.kind == "jti" {
                    snapshot.revokedJTIs.insert(revocation.value)
                } else {
                    snapshot.revokedSubjects[revocation.value] = revocation.time
                }
            }
            return snapshot
        }
    }

    /// `PRAGMA data_version` of this store's connection: it changes when another
    /// connection (the CLI) committed, which is the watcher's cue to reload.
    public func dataVersion() throws -> Int64 {
        try database.dataVersion()
    }

    // MARK: Private

    private func migrate() throws {
        try database.transaction {
            let version = try database.query("PRAGMA user_version") { $0.int64(0) }.first ?? 0
            guard version <= Self.schemaVersion else {
                throw APIKeyStoreError.newerSchema(path: path, found: version, supported: Self.schemaVersion)
            }
            guard version < Self.schemaVersion else { return }
            try database.execute(Self.schema)
            // PRAGMA takes no bound parameters; the value is our own constant.
            try database.execute("PRAGMA user_version = \(Self.schemaVersion)")
        }
    }

    private func exists(id: String) throws -> Bool {
        try !database.query("SELECT 1 FROM api_keys WHERE id = ?", [.text(id)]) { _ in true }.isEmpty
    }

    /// Reads the columns of `recordColumns`, in that order.
    private static func record(_ row: SQLiteStatement) -> APIKeyRecord {
        let scopes = row.text(6).split(separator: " ").map(String.init)
        return APIKeyRecord(
            id: row.text(0), name: row.text(1), subject: row.text(2), email: row.optionalText(3),
            org: row.optionalText(4), role: row.optionalText(5), scopes: scopes, created: row.int64(7),
            expires: row.optionalInt64(8), revoked: row.optionalInt64(9), lastUsed: row.optionalInt64(10))
    }

    private static func optional(_ text: String?) -> SQLiteValue {
        text.map(SQLiteValue.text) ?? .null
    }

    private static func createFolder(of path: String) throws {
        guard let slash = path.lastIndex(of: "/") else { return }
        let folder = String(path[..<slash])
        guard !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) else { return }
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw APIKeyStoreError.cannotCreateFolder(path: folder, reason: "\(error.localizedDescription)")
        }
    }
}
