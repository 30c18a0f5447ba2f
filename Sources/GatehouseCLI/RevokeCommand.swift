import ArgumentParser
import Gatehouse

/// `gatehouse revoke --jti ID | --subject S` (SPEC §1, §3 "Revocation"): refuses one JWT,
/// or every token of a subject issued before now ("log out everywhere"). Stored in the key
/// store's file; running gateways apply it within 2 s.
struct RevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke one JWT by its jti, or every token of a subject issued before now."
    )

    @OptionGroup var options: ConfigOption

    @Option(help: "Revoke the token with this jti claim.")
    var jti: String?

    @Option(help: "Revoke every token of this subject issued before now (iat earlier than the revocation).")
    var subject: String?

    func validate() throws {
        switch (jti, subject) {
        case (nil, nil):
            throw ValidationError("pass --jti ID or --subject S")
        case (.some, .some):
            throw ValidationError("pass either --jti or --subject, not both")
        case (.some(let jti), nil) where jti.isEmpty:
            throw ValidationError("--jti must not be empty")
        case (nil, .some(let subject)) where subject.isEmpty:
            throw ValidationError("--subject must not be empty")
        default:
            break
        }
    }

    func run() throws {
        let store = try openKeyStore(options)
        let now = APIKeyStore.currentTime()
        if let jti {
            try runStoreOperation { try store.revokeToken(jti: jti, now: now) }
            print("Revoked the token with jti \"\(jti)\"; running gateways refuse it within 2 s.")
        } else if let subject {
            try runStoreOperation { try store.revokeSubject(subject, at: now) }
            print(
                "Revoked every token of subject \"\(subject)\" issued before \(rfc3339(now)); "
                    + "running gateways refuse them within 2 s.")
        }
    }
}
