import Crypto
import Foundation
import _CryptoExtras

/// Key pairs the auth tests sign with. Static lets are created lazily, once per test
/// process, and shared: RSA generation is the slow part of these tests in debug builds.
enum TestKeys {
    /// The legitimate issuer's RSA key.
    static let rsa: _RSA.Signing.PrivateKey = makeRSA()
    /// An attacker's RSA key: never configured anywhere.
    static let attackerRSA: _RSA.Signing.PrivateKey = makeRSA()
    static let ec = P256.Signing.PrivateKey()
    static let attackerEC = P256.Signing.PrivateKey()
    static let ed = Curve25519.Signing.PrivateKey()

    private static func makeRSA() -> _RSA.Signing.PrivateKey {
        do {
            return try _RSA.Signing.PrivateKey(keySize: .bits2048)
        } catch {
            fatalError("RSA key generation failed: \(error)")
        }
    }

    /// `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) text of each public key.
    static var rsaPublicPEM: String { rsa.publicKey.pemRepresentation }
    static var ecPublicPEM: String { ec.publicKey.pemRepresentation }
    static var edPublicPEM: String { ed.publicKey.pemRepresentation }

    /// A JWK (RFC 7517) of a public key, as a JSON-ready dictionary.
    static func jwk(rsa key: _RSA.Signing.PublicKey, kid: String?, alg: String? = "RS256") -> [String: Any] {
        // Sound to force: a 2048-bit key built by swift-crypto always has primitives.
        let primitives = try! key.getKeyPrimitives()
        var jwk: [String: Any] = [
            "kty": "RSA", "n": B64URL.encode(primitives.modulus), "e": B64URL.encode(primitives.publicExponent),
            "use": "sig",
        ]
        if let kid { jwk["kid"] = kid }
        if let alg { jwk["alg"] = alg }
        return jwk
    }

    static func jwk(p256 key: P256.Signing.PublicKey, kid: String?, alg: String? = "ES256") -> [String: Any] {
        let raw = Array(key.rawRepresentation)
        var jwk: [String: Any] = [
            "kty": "EC", "crv": "P-256", "x": B64URL.encode(raw[0..<32]), "y": B64URL.encode(raw[32..<64]),
            "use": "sig",
        ]
        if let kid { jwk["kid"] = kid }
        if let alg { jwk["alg"] = alg }
        return jwk
    }

    static func jwk(ed25519 key: Curve25519.Signing.PublicKey, kid: String?) -> [String: Any] {
        var jwk: [String: Any] = ["kty": "OKP", "crv": "Ed25519", "x": B64URL.encode(key.rawRepresentation)]
        if let kid { jwk["kid"] = kid }
        return jwk
    }

    /// `{"keys":[…]}`.
    static func jwks(_ keys: [[String: Any]]) -> String {
        TokenMinter.json(["keys": keys])
    }
}

/// Base64url helpers (RFC 4648 §5) for building tokens byte by byte.
enum B64URL {
    /// Unpadded base64url: the canonical JWS form.
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        standard(bytes).replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func encode(_ text: String) -> String { encode(Array(text.utf8)) }

    /// Plain base64 with `+`, `/` and `=` padding: what a strict JWS parser must refuse.
    static func standard<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Data(bytes).base64EncodedString()
    }
}

/// What signs a token. The algorithm named in the header decides the hash; the key's type
/// decides the primitive, so a test can sign with a key that does not match its `alg`.
enum TokenKey {
    case rsa(_RSA.Signing.PrivateKey)
    case p256(P256.Signing.PrivateKey)
    case ed25519(Curve25519.Signing.PrivateKey)
    /// HMAC with these secret bytes (SHA-256/384/512 after the header's `alg`).
    case hmac([UInt8])
    /// An empty signature segment.
    case unsigned
    /// This exact signature, whatever the input.
    case fixed([UInt8])
}

/// Builds compact JWS tokens, well-formed or deliberately not.
enum TokenMinter {
    /// Sorted-keys JSON without escaped slashes, so output is deterministic.
    static func json(_ object: Any) -> String {
        // Sound to force: every caller passes dictionaries/arrays of strings and numbers.
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func mint(header: [String: Any], claims: [String: Any], key: TokenKey) -> String {
        mint(
            headerSegment: B64URL.encode(json(header)),
            payloadSegment: B64URL.encode(json(claims)),
            alg: header["alg"] as? String ?? "",
            key: key
        )
    }

    /// Signs `headerSegment.payloadSegment` exactly as given (even non-canonical text).
    static func mint(headerSegment: String, payloadSegment: String, alg: String, key: TokenKey) -> String {
        let input = headerSegment + "." + payloadSegment
        return input + "." + signatureSegment(alg: alg, key: key, input: Array(input.utf8))
    }

    static func signatureSegment(alg: String, key: TokenKey, input: [UInt8]) -> String {
        let signature = sign(alg: alg, key: key, input: input)
        return B64URL.encode(signature)
    }

    static func sign(alg: String, key: TokenKey, input: [UInt8]) -> [UInt8] {
        let data = Data(input)
        do {
            switch key {
            case .rsa(let key):
                let signature: _RSA.Signing.RSASignature
                switch alg {
                case "RS384":
                    signature = try key.signature(for: Crypto.SHA384.hash(data: data), padding: .insecurePKCS1v1_5)
                case "RS512":
                    signature = try key.signature(for: Crypto.SHA512.hash(data: data), padding: .insecurePKCS1v1_5)
                default:
                    signature = try key.signature(for: Crypto.SHA256.hash(data: data), padding: .insecurePKCS1v1_5)
                }
                return Array(signature.rawRepresentation)
            case .p256(let key):
                return Array(try key.signature(for: data).rawRepresentation)
            case .ed25519(let key):
                return Array(try key.signature(for: data))
            case .hmac(let secret):
                let symmetric = SymmetricKey(data: secret)
                switch alg {
                case "HS384": return Array(HMAC<Crypto.SHA384>.authenticationCode(for: data, using: symmetric))
                case "HS512": return Array(HMAC<Crypto.SHA512>.authenticationCode(for: data, using: symmetric))
                default: return Array(HMAC<Crypto.SHA256>.authenticationCode(for: data, using: symmetric))
                }
            case .unsigned:
                return []
            case .fixed(let bytes):
                return bytes
            }
        } catch {
            fatalError("signing failed: \(error)")
        }
    }
}

/// A fresh temporary folder for key files, secrets, stores and logs.
struct TempFolder: Sendable {
    let path: String

    init(_ label: String = "auth") throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gh-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Writes `contents` to `name`; returns the absolute path.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        try write(name, Array(contents.utf8))
    }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
