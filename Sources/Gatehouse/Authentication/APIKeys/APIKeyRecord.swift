/// One API key as operators see it (`gatehouse keys list`). Holds neither the secret nor
/// its hash, so it can be printed, logged or serialized freely. Times are seconds since
/// the Unix epoch.
public struct APIKeyRecord: Sendable, Equatable {
    /// The public part of the key (12 base32 characters).
    public var id: String
    public var name: String
    public var subject: String
    public var email: String?
    public var org: String?
    public var role: String?
    public var scopes: [String]
    public var created: Int64
    public var expires: Int64?
    public var revoked: Int64?
    /// Updated in batches by the gateway, so up to a few seconds behind.
    public var lastUsed: Int64?

    public init(
        id: String,
        name: String,
        subject: String,
        email: String? = nil,
        org: String? = nil,
        role: String? = nil,
        scopes: [String] = [],
        created: Int64,
        expires: Int64? = nil,
        revoked: Int64? = nil,
        lastUsed: Int64? = nil
    ) {
        self.id = id
        self.name = name
        self.subject = subject
        self.email = email
        self.org = org
        self.role = role
        self.scopes = scopes
        self.created = created
        self.expires = expires
        self.revoked = revoked
        self.lastUsed = lastUsed
    }
}

/// A record with the SHA-256 of its secret: what the verifier compares against. Its
/// descriptions leave the hash out, so printing a snapshot cannot leak it into a log.
public struct StoredAPIKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var record: APIKeyRecord
    public var secretSHA256: [UInt8]

    public init(record: APIKeyRecord, secretSHA256: [UInt8]) {
        self.record = record
        self.secretSHA256 = secretSHA256
    }

    public var description: String { "StoredAPIKey(\(record), secretSHA256: <redacted>)" }
    public var debugDescription: String { description }
}

/// Everything the gateway keeps in memory from the store, loaded in one read
/// transaction so keys and revocations are consistent with each other.
public struct KeyStoreSnapshot: Sendable, Equatable {
    public var keys: [String: StoredAPIKey]
    public var revokedJTIs: Set<String>
    /// subject → revocation time: that subject's tokens issued before it are refused.
    public var revokedSubjects: [String: Int64]

    public init(
        keys: [String: StoredAPIKey] = [:],
        revokedJTIs: Set<String> = [],
        revokedSubjects: [String: Int64] = [:]
    ) {
        self.keys = keys
        self.revokedJTIs = revokedJTIs
        self.revokedSubjects = revokedSubjects
    }
}
