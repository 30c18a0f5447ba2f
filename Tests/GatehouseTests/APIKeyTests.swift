import Foundation
import Testing

@testable import Gatehouse

/// A fresh folder per test; the test removes it with `defer { folder.remove() }`.
private struct TemporaryFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.path + "/gatehouse-apikey-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    func file(_ name: String) -> String { path + "/" + name }
}

private func occurs(_ needle: String, in haystack: [UInt8]) -> Bool {
    let needle = Array(needle.utf8)
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        if Array(haystack[start..<start + needle.count]) == needle { return true }
    }
    return false
}

private func bytes(ofFile path: String) -> [UInt8] {
    FileManager.default.contents(atPath: path).map { Array($0) } ?? []
}

/// Test-side base62 decoder (big-endian, into `count` bytes), independent of the encoder.
private func decodeBase62(_ text: String, count: Int) -> [UInt8]? {
    let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    var number = [UInt8](repeating: 0, count: count)
    for character in text {
        guard let digit = alphabet.firstIndex(of: character) else { return nil }
        var carry = digit
        for index in number.indices.reversed() {
            let value = Int(number[index]) * 62 + carry
            number[index] = UInt8(value & 0xff)
            carry = value >> 8
        }
        guard carry == 0 else { return nil }
    }
    return number
}

private let base32Characters = Set("abcdefghijklmnopqrstuvwxyz234567")
private let base62Characters = Set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

@Suite struct APIKeyFormatTests {
    @Test func generatedKeysRoundTrip() throws {
        for _ in 0..<200 {
            let generated = APIKeyFormat.generate(prefix: "ghk")
            #expect(generated.key == "ghk_\(generated.id)_\(generated.secret)")
            let parsed = try #require(APIKeyFormat.parse(generated.key, prefix: "ghk"))
            #expect(parsed.id == generated.id)
            #expect(parsed.secret == generated.secret)
            #expect(generated.id.count == 12)
            #expect(generated.secret.count == 43)
            #expect(generated.id.allSatisfy(base32Characters.contains))
            #expect(generated.secret.allSatisfy(base62Characters.contains))
            #expect(APIKeyFormat.isValidID(generated.id))
        }
    }

    @Test func generatedValuesAreDistinctAndUseTheWholeAlphabet() {
        let ids = (0..<500).map { _ in APIKeyFormat.generateID() }
        let secrets = (0..<500).map { _ in APIKeyFormat.generateSecret() }
        #expect(Set(ids).count == ids.count)
        #expect(Set(secrets).count == secrets.count)
        // 6,000 id symbols over 32 characters: every one shows up.
        #expect(Set(ids.joined()) == base32Characters)
        // The leading digit of 43 carries ~0.03 bits: skip it; the rest are uniform.
        #expect(Set(secrets.map { $0.dropFirst() }.joined()) == base62Characters)
    }

    @Test func prefixMayContainUnderscores() throws {
        let generated = APIKeyFormat.generate(prefix: "acme_live")
        let parsed = try #require(APIKeyFormat.parse(generated.key, prefix: "acme_live"))
        #expect(parsed.id == generated.id)
        #expect(APIKeyFormat.parse(generated.key, prefix: "acme") == nil)
    }

    @Test func parseIsStrict() {
        let id = "abcdefgh2345"
        let secret = String(repeating: "aZ9", count: 14) + "Q"  // 43 characters
        #expect(APIKeyFormat.parse("ghk_\(id)_\(secret)", prefix: "ghk") != nil)
        let refused = [
            "",
            "ghk",
            "ghk_",
            "xyz_\(id)_\(secret)",  // other prefix
            "GHK_\(id)_\(secret)",  // prefix is case-sensitive
            "ghk\(id)_\(secret)",  // missing separator
            "ghk_\(id)\(secret)x",  // missing separator, same length
            "ghk_\(id)-\(secret)",  // wrong separator
            "ghk_ABCDEFGH2345_\(secret)",  // upper-case id
            "ghk_abcdefgh2341_\(secret)",  // '1' is not base32
            "ghk_abcdefgh2348_\(secret)",  // '8' is not base32
            "ghk_abcdefgh234_\(secret)a",  // id one short
            "ghk_\(id)a_\(secret.dropLast())",  // id one long
            "ghk_\(id)_\(secret.dropLast())",  // secret 42
            "ghk_\(id)_\(secret)a",  // secret 44
            "ghk_\(id)_\(secret.dropLast())-",  // '-' is not base62
            "ghk_\(id)_\(secret.dropLast())_",
            "ghk_\(id)_\(secret.dropLast())+",
            "ghk_\(id)_\(secret.dropLast())é",
            "ghk_\(id)_\(secret)\n",
            " ghk_\(id)_\(secret)",
            "ghk_\(id)_\(secret)_extra",
        ]
        for text in refused {
            #expect(APIKeyFormat.parse(text, prefix: "ghk") == nil, "accepted \(text.debugDescription)")
        }
        #expect(!APIKeyFormat.isValidID("abcdefgh234"))
        #expect(!APIKeyFormat.isValidID("abcdefgh23456"))
        #expect(!APIKeyFormat.isValidID("abcdefgh2341"))
    }

    @Test func base62IsBigEndianAndLeftPadded() {
        #expect(APIKeyFormat.base62([1, 0], length: 3) == "048")  // 256 = 4·62 + 8
        #expect(APIKeyFormat.base62([UInt8](repeating: 0, count: 32), length: 43) == String(repeating: "0", count: 43))
        #expect(
            APIKeyFormat.base62([UInt8](repeating: 0xff, count: 32), length: 43)
                == "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1")
        #expect(
            APIKeyFormat.base62((0..<32).map(UInt8.init), length: 43) == "003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf")
    }

    @Test func secretsDecodeBackToThirtyTwoBytes() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let raw = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            let encoded = APIKeyFormat.base62(raw, length: 43)
            #expect(encoded.count == 43)
            #expect(try #require(decodeBase62(encoded, count: 32)) == raw)
        }
    }

    @Test func hashIsSHA256OfTheUTF8Text() {
        let hex = APIKeyFormat.hash("abc").map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        #expect(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(APIKeyFormat.hash("abc").count == 32)
    }

    @Test func constantTimeEqualIsCorrect() {
        let base: [UInt8] = (0..<32).map(UInt8.init)
        #expect(APIKeyFormat.constantTimeEqual(base, base))
        #expect(APIKeyFormat.constantTimeEqual([], []))
        for index in base.indices {
            var changed = base
            changed[index] ^= 0x01
            #expect(!APIKeyFormat.constantTimeEqual(base, changed))
            changed[index] ^= 0x81  // now differs only in the top bit
            #expect(!APIKeyFormat.constantTimeEqual(base, changed))
        }
        #expect(!APIKeyFormat.constantTimeEqual(base, Array(base.dropLast())))
        #expect(!APIKeyFormat.constantTimeEqual(base, base + [0]))
        #expect(!APIKeyFormat.constantTimeEqual([], [0]))
    }
}

@Suite struct APIKeySQLiteTests {
    @Test func bindsAndReadsEveryType() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let database = try SQLiteDatabase(path: folder.file("t.db"))
        try database.execute("CREATE TABLE t (i INTEGER, s TEXT, b BLOB, n TEXT)")
        try database.run(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            [.integer(.max), .text("héllo\u{0}wörld"), .blob([0, 1, 255]), .null])
        try database.run("INSERT INTO t VALUES (?, ?, ?, ?)", [.integer(-1), .text(""), .blob([]), .text("x")])
        let rows = try database.query("SELECT i, s, b, n FROM t ORDER BY rowid") { row in
            (row.int64(0), row.text(1), row.blob(2), row.optionalText(3), row.isNull(2))
        }
        #expect(rows.count == 2)
        #expect(rows[0].0 == .max)
        #expect(rows[0].1 == "héllo\u{0}wörld")
        #expect(rows[0].2 == [0, 1, 255])
        #expect(rows[0].3 == nil)
        #expect(rows[1].0 == -1)
        #expect(rows[1].1 == "")
        #expect(rows[1].2 == [])
        #expect(rows[1].4 == false)  // an empty blob, not NULL
        #expect(rows[1].3 == "x")
    }

    @Test func usesWALAndReportsSQLiteMessages() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let database = try SQLiteDatabase(path: folder.file("t.db"))
        #expect(try database.query("PRAGMA journal_mode") { $0.text(0) } == ["wal"])
        #expect(try database.query("PRAGMA busy_timeout") { $0.int64(0) } == [5000])
        #expect {
            try database.run("SELECT * FROM missing_table")
        } throws: { error in
            (error as? SQLiteError)?.message.contains("no such table: missing_table") == true
        }
    }

    @Test func transactionsRollBackOnError() throws {
        struct Boom: Error {}
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let database = try SQLiteDatabase(path: folder.file("t.db"))
        try database.execute("CREATE TABLE t (v INTEGER)")
        #expect(throws: Boom.self) {
            try database.transaction {
                try database.run("INSERT INTO t VALUES (1)")
                throw Boom()
            }
        }
        _ = try database.transaction { try database.run("INSERT INTO t VALUES (2)") }
        #expect(try database.query("SELECT v FROM t") { $0.int64(0) } == [2])
    }

    @Test func dataVersionMovesOnlyForOtherConnections() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let first = try SQLiteDatabase(path: folder.file("t.db"))
        let second = try SQLiteDatabase(path: folder.file("t.db"))
        try first.execute("CREATE TABLE t (v INTEGER)")
        let before = try first.dataVersion()
        try first.run("INSERT INTO t VALUES (1)")
        #expect(try first.dataVersion() == before)
        let secondBefore = try second.dataVersion()
        try first.run("INSERT INTO t VALUES (2)")
        #expect(try second.dataVersion() != secondBefore)
    }
}

@Suite struct APIKeyStoreTests {
    @Test func createsFolderAndFileWithPrivateModes() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("nested/deeper/keys.db")
        let store = try APIKeyStore(path: path)
        _ = try store.create(name: "ci", subject: "svc-ci")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let folderAttributes = try FileManager.default.attributesOfItem(atPath: folder.file("nested/deeper"))
        #expect((folderAttributes[.posixPermissions] as? Int) == 0o700)
        let walAttributes = try FileManager.default.attributesOfItem(atPath: path + "-wal")
        #expect((walAttributes[.posixPermissions] as? Int) == 0o600)
        let database = try SQLiteDatabase(path: path)
        #expect(try database.query("PRAGMA user_version") { $0.int64(0) } == [APIKeyStore.schemaVersion])
    }

    @Test func refusesAStoreFromANewerVersion() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("keys.db")
        try SQLiteDatabase(path: path).execute("PRAGMA user_version = 99")
        #expect(throws: APIKeyStoreError.newerSchema(path: path, found: 99, supported: APIKeyStore.schemaVersion)) {
            _ = try APIKeyStore(path: path)
        }
    }

    @Test func lifecycle() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try APIKeyStore(path: folder.file("keys.db"), prefix: "ghk")
        let now: Int64 = 1_800_000_000
        let (record, key) = try store.create(
            name: "deploy bot", subject: "svc-deploy", email: "ops@example.com", org: "acme", role: "developer",
            scopes: ["mcp:read", "logs:read"], expiresIn: .seconds(90 * 86_400), now: now)
        let parsed = try #require(APIKeyFormat.parse(key, prefix: "ghk"))
        #expect(parsed.id == record.id)
        #expect(record.expires == now + 90 * 86_400)
        let other = try store.create(name: "viewer", subject: "alice", now: now + 1).record

        let listed = try store.list()
        #expect(listed == [record, other])
        #expect(listed[0].scopes == ["mcp:read", "logs:read"])
        #expect(listed[1].email == nil && listed[1].scopes.isEmpty && listed[1].expires == nil)
        #expect(try store.record(id: record.id) == record)

        // Revoke: stamped once, a second revoke keeps the first time.
        let revoked = try store.revoke(id: other.id, now: now + 10)
        #expect(revoked.revoked == now + 10)
        #expect(try store.revoke(id: other.id, now: now + 20).revoked == now + 10)
        #expect(throws: APIKeyStoreError.unknownKey(id: "aaaaaaaaaaaa")) { try store.revoke(id: "aaaaaaaaaaaa") }

        // Rotate: same record, new secret; a revoked key stays dead.
        let rotated = try store.rotate(id: record.id)
        #expect(rotated != key)
        let rotatedParts = try #require(APIKeyFormat.parse(rotated, prefix: "ghk"))
        #expect(rotatedParts.id == record.id)
        let snapshot = try store.snapshot()
        #expect(snapshot.keys[record.id]?.secretSHA256 == APIKeyFormat.hash(rotatedParts.secret))
        #expect(snapshot.keys[record.id]?.record == record)
        #expect(try store.list().count == 2)
        #expect(throws: APIKeyStoreError.unknownKey(id: "bbbbbbbbbbbb")) { try store.rotate(id: "bbbbbbbbbbbb") }
        #expect(throws: APIKeyStoreError.keyRevoked(id: other.id)) { try store.rotate(id: other.id) }
    }

    @Test func refusesBadValues() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try APIKeyStore(path: folder.file("keys.db"))
        #expect(throws: APIKeyStoreError.self) { try store.create(name: "", subject: "s") }
        #expect(throws: APIKeyStoreError.self) { try store.create(name: "n", subject: "") }
        #expect(throws: APIKeyStoreError.self) { try store.create(name: "n", subject: "s", scopes: ["a b"]) }
        #expect(throws: APIKeyStoreError.self) { try store.create(name: "n", subject: "s", expiresIn: .zero) }
        #expect(throws: APIKeyStoreError.self) { try store.revokeToken(jti: "") }
        #expect(throws: APIKeyStoreError.self) { try store.revokeSubject("", at: 1) }
        #expect(try store.list().isEmpty)
    }

    @Test func neitherSecretNorFullKeyEverReachesTheFile() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("keys.db")
        let store = try APIKeyStore(path: path)
        var secrets: [(key: String, secret: String)] = []
        for index in 0..<5 {
            let key = try store.create(name: "key \(index)", subject: "user-\(index)", scopes: ["mcp:read"]).fullKey
            secrets.append((key, try #require(APIKeyFormat.parse(key, prefix: "ghk")).secret))
        }
        for index in 0..<2 {
            let id = try #require(APIKeyFormat.parse(secrets[index].key, prefix: "ghk")).id
            let key = try store.rotate(id: id)
            secrets.append((key, try #require(APIKeyFormat.parse(key, prefix: "ghk")).secret))
        }
        let files = [path, path + "-wal", path + "-shm"]
        func assertAbsent() {
            for file in files {
                let content = bytes(ofFile: file)
                for (key, secret) in secrets {
                    #expect(!occurs(key, in: content), "full key found in \(file)")
                    #expect(!occurs(secret, in: content), "secret found in \(file)")
                }
            }
        }
        // The hash is there (sanity check that we read the right bytes), the secret is not.
        #expect(!bytes(ofFile: path + "-wal").isEmpty)
        assertAbsent()
        let checkpoint = try SQLiteDatabase(path: path)
        try checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        let main = bytes(ofFile: path)
        #expect(occurs("user-4", in: main))
        assertAbsent()
    }
}

@Suite struct APIKeyVerifierTests {
    let now: Int64 = 1_800_000_000

    private func makeVerifier() throws -> (APIKeyVerifier, APIKeyStore, TemporaryFolder) {
        let folder = try TemporaryFolder()
        let store = try APIKeyStore(path: folder.file("keys.db"), prefix: "ghk")
        return (APIKeyVerifier(prefix: "ghk"), store, folder)
    }

    private func logReason(_ result: Result<Identity, AuthenticationFailure>) -> String? {
        guard case .failure(let failure) = result else { return nil }
        #expect(failure.reason == .invalidAPIKey)  // the client never learns which check failed
        return failure.logReason
    }

    @Test func acceptsAValidKeyAsAnAPIKeyIdentity() throws {
        let (verifier, store, folder) = try makeVerifier()
        defer { folder.remove() }
        let (record, key) = try store.create(
            name: "bot", subject: "svc", email: "e@x", org: "acme", role: "viewer", scopes: ["mcp:read"],
            expiresIn: .seconds(3600), now: now)
        verifier.replace(try store.snapshot())
        let identity = try verifier.verify(key, now: now + 10).get()
        #expect(
            identity
                == Identity(
                    method: .apiKey, subject: "svc", email: "e@x", org: "acme", role: "viewer", scopes: ["mcp:read"],
                    hasScopeClaim: true, keyID: record.id, expiresAt: now + 3600))
    }

    @Test func refusesEachFailureKindWithItsLogReason() throws {
        let (verifier, store, folder) = try makeVerifier()
        defer { folder.remove() }
        let good = try store.create(name: "good", subject: "a", now: now)
        let revoked = try store.create(name: "revoked", subject: "b", now: now)
        try store.revoke(id: revoked.record.id, now: now + 1)
        let expired = try store.create(name: "expired", subject: "c", expiresIn: .seconds(60), now: now)
        verifier.replace(try store.snapshot())

        let goodID = good.record.id
        let wrongSecret = APIKeyFormat.key(prefix: "ghk", id: goodID, secret: APIKeyFormat.generateSecret())
        let unknownID = APIKeyFormat.generate(prefix: "ghk").key
        let later = now + 120

        #expect(logReason(verifier.verify("not a key", now: later)) == "unknown_api_key")
        #expect(
            logReason(verifier.verify(good.fullKey.replacingOccurrences(of: "ghk_", with: "xyz_"), now: later))
                == "unknown_api_key")
        #expect(logReason(verifier.verify(unknownID, now: later)) == "unknown_api_key")
        #expect(logReason(verifier.verify(wrongSecret, now: later)) == "api_key_mismatch")
        #expect(logReason(verifier.verify(revoked.fullKey, now: later)) == "api_key_revoked")
        #expect(logReason(verifier.verify(expired.fullKey, now: later)) == "api_key_expired")
        #expect(logReason(verifier.verify(expired.fullKey, now: now + 60)) == "api_key_expired")
        #expect(logReason(verifier.verify(expired.fullKey, now: now + 59)) == nil)
        #expect(logReason(verifier.verify(good.fullKey, now: later)) == nil)

        // A revoked key whose secret is wrong reports the mismatch, not the revocation.
        let revokedWrong = APIKeyFormat.key(
            prefix: "ghk", id: revoked.record.id, secret: APIKeyFormat.generateSecret())
        #expect(logReason(verifier.verify(revokedWrong, now: later)) == "api_key_mismatch")

        // Failures never carry the secret.
        guard case .failure(let failure) = verifier.verify(wrongSecret, now: later) else {
            Issue.record("accepted a wrong secret")
            return
        }
        let secret = try #require(APIKeyFormat.parse(wrongSecret, prefix: "ghk")).secret
        #expect(failure.keyID == goodID)
        #expect(!"\(failure)".contains(secret))
    }

    @Test func rotationRefusesTheOldSecret() throws {
        let (verifier, store, folder) = try makeVerifier()
        defer { folder.remove() }
        let (record, oldKey) = try store.create(name: "bot", subject: "svc", now: now)
        let newKey = try store.rotate(id: record.id)
        verifier.replace(try store.snapshot())
        #expect(logReason(verifier.verify(oldKey, now: now)) == "api_key_mismatch")
        #expect(logReason(verifier.verify(newKey, now: now)) == nil)
    }

    @Test func queuesLastUsedInMemoryAndWritesItInOneBatch() throws {
        let (verifier, store, folder) = try makeVerifier()
        defer { folder.remove() }
        let first = try store.create(name: "one", subject: "a", now: now)
        let second = try store.create(name: "two", subject: "b", now: now)
        verifier.replace(try store.snapshot())
        _ = verifier.verify(first.fullKey, now: now + 5)
        _ = verifier.verify(first.fullKey, now: now + 3)  // out of order: the later time wins
        _ = verifier.verify(second.fullKey, now: now + 4)
        _ = verifier.verify(APIKeyFormat.generate(prefix: "ghk").key, now: now + 9)  // refused: not queued
        #expect(try store.list().allSatisfy { $0.lastUsed == nil })  // nothing written on the request path

        let pending = verifier.takePendingLastUsed()
        #expect(pending == [first.record.id: now + 5, second.record.id: now + 4])
        #expect(verifier.takePendingLastUsed().isEmpty)
        try store.recordLastUsed(pending)
        try store.recordLastUsed([first.record.id: now + 1])  // never moves backwards
        let lastUsed = Dictionary(uniqueKeysWithValues: try store.list().map { ($0.id, $0.lastUsed) })
        #expect(lastUsed == [first.record.id: now + 5, second.record.id: now + 4])

        verifier.requeueLastUsed([first.record.id: now + 7])
        verifier.requeueLastUsed([first.record.id: now + 6])
        #expect(verifier.takePendingLastUsed() == [first.record.id: now + 7])
    }
}

@Suite struct APIKeyRevocationTests {
    let revokedAt: Int64 = 1_800_000_000

    private func list() throws -> RevocationList {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let store = try APIKeyStore(path: folder.file("keys.db"))
        try store.revokeToken(jti: "token-1", now: revokedAt)
        try store.revokeToken(jti: "token-1", now: revokedAt + 5)  // idempotent
        try store.revokeSubject("alice", at: revokedAt)
        try store.revokeSubject("alice", at: revokedAt - 100)  // never moves back
        let snapshot = try store.snapshot()
        #expect(snapshot.revokedJTIs == ["token-1"])
        #expect(snapshot.revokedSubjects == ["alice": revokedAt])
        return RevocationList(snapshot: snapshot)
    }

    private func token(_ subject: String, jti: String? = nil, iat: Int64?) -> Identity {
        Identity(method: .jwt, subject: subject, issuer: "https://issuer", jti: jti, issuedAt: iat)
    }

    @Test func revokesByJTI() throws {
        let revocations = try list()
        #expect(revocations.isRevoked(token("bob", jti: "token-1", iat: revokedAt + 100)))
        #expect(!revocations.isRevoked(token("bob", jti: "token-2", iat: revokedAt - 100)))
        #expect(!revocations.isRevoked(token("bob", iat: nil)))
    }

    @Test func revokesASubjectsTokensIssuedBeforeTheRevocation() throws {
        let revocations = try list()
        #expect(revocations.isRevoked(token("alice", iat: revokedAt - 1)))
        #expect(!revocations.isRevoked(token("alice", iat: revokedAt)))
        #expect(!revocations.isRevoked(token("alice", iat: revokedAt + 1)))
        #expect(revocations.isRevoked(token("alice", iat: nil)))  // cannot prove it is newer
        #expect(!revocations.isRevoked(token("alicia", iat: revokedAt - 1)))
    }

    @Test func apiKeyIdentitiesAreRevokedPerKeyNotHere() throws {
        let revocations = try list()
        #expect(!revocations.isRevoked(Identity(method: .apiKey, subject: "alice", keyID: "abcdefgh2345")))
    }

    @Test func followsTheVerifiersSnapshot() throws {
        let verifier = APIKeyVerifier(prefix: "ghk")
        let revocations = verifier.revocations
        #expect(!revocations.isRevoked(token("bob", jti: "x", iat: 1)))
        verifier.replace(KeyStoreSnapshot(revokedJTIs: ["x"]))
        #expect(revocations.isRevoked(token("bob", jti: "x", iat: 1)))
    }
}

@Suite struct APIKeyWatcherTests {
    /// Polls `condition` every 20 ms for up to `seconds`; returns how long it took.
    private func waitUntil(seconds: Double, _ condition: () -> Bool) -> Duration? {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < .milliseconds(Int64(seconds * 1000)) {
            if condition() { return clock.now - start }
            usleep(20_000)
        }
        return condition() ? clock.now - start : nil
    }

    @Test func seesAnotherConnectionsWritesWithinTwoSeconds() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("keys.db")
        let verifier = APIKeyVerifier(prefix: "ghk")
        let existing = try APIKeyStore(path: path).create(name: "before", subject: "a")
        let watcher = try KeyStoreWatcher(storePath: path, verifier: verifier)
        defer { watcher.stop() }
        let now = APIKeyStore.currentTime()
        // The first snapshot is loaded before `init` returns.
        #expect((try? verifier.verify(existing.fullKey, now: now).get()) != nil)
        watcher.start()

        // Another connection (as the CLI would be) writes.
        let cli = try APIKeyStore(path: path)
        let created = try cli.create(name: "after", subject: "b")
        let seenCreate = waitUntil(seconds: 2) { (try? verifier.verify(created.fullKey, now: now).get()) != nil }
        #expect(seenCreate != nil, "a key created by another connection was not loaded within 2 s")

        try cli.revoke(id: existing.record.id)
        try cli.revokeToken(jti: "jti-1")
        let token = Identity(method: .jwt, subject: "x", jti: "jti-1", issuedAt: now)
        let seenRevoke = waitUntil(seconds: 2) {
            verifier.revocations.isRevoked(token)
                && (try? verifier.verify(existing.fullKey, now: now).get()) == nil
        }
        #expect(seenRevoke != nil, "revocations by another connection were not loaded within 2 s")
        #expect(watcher.reloads >= 1)
        #expect(watcher.failures == 0)
    }

    @Test func flushesLastUsedPeriodicallyAndOnStopWithoutReloadingItself() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("keys.db")
        let store = try APIKeyStore(path: path)
        let created = try store.create(name: "k", subject: "s")
        let verifier = APIKeyVerifier(prefix: "ghk")
        let watcher = try KeyStoreWatcher(
            storePath: path, verifier: verifier, pollInterval: .milliseconds(50), flushInterval: .milliseconds(200))
        watcher.start()
        #expect((try? verifier.verify(created.fullKey, now: 1_900_000_000).get()) != nil)
        let flushed = waitUntil(seconds: 3) { (try? store.list().first?.lastUsed) == 1_900_000_000 }
        #expect(flushed != nil, "last_used was not flushed")
        // The watcher's own flush is not "another connection": no reload for it.
        #expect(watcher.reloads == 0)

        #expect((try? verifier.verify(created.fullKey, now: 1_900_000_500).get()) != nil)
        watcher.stop()
        watcher.stop()  // idempotent
        #expect(try store.list().first?.lastUsed == 1_900_000_500)
    }

    @Test func stopWithoutStartStillFlushes() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let path = folder.file("keys.db")
        let store = try APIKeyStore(path: path)
        let created = try store.create(name: "k", subject: "s")
        let verifier = APIKeyVerifier(prefix: "ghk")
        let watcher = try KeyStoreWatcher(storePath: path, verifier: verifier)
        _ = verifier.verify(created.fullKey, now: 1_900_000_000)
        watcher.stop()
        watcher.start()  // no effect after stop
        #expect(try store.list().first?.lastUsed == 1_900_000_000)
    }
}
