import Crypto
import Foundation
import _CryptoExtras

/// One key an issuer's tokens may be verified with.
///
/// The key's type decides which `alg` it may verify, and nothing in a token can widen
/// that: an RSA key never verifies HS256 (the classic "public key used as HMAC secret"
/// confusion), a secret never verifies RS256, a P-256 key only ES256 (SPEC §3).
public struct VerificationKey: Sendable {
    public enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case hmacSecret(SymmetricKey)
    }

    public enum KeyType: String, Sendable, Equatable {
        case rsa = "RSA"
        case p256 = "EC P-256"
        case p384 = "EC P-384"
        case ed25519 = "Ed25519"
        case hmacSecret = "HMAC secret"
    }

    public struct InvalidKey: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// RSA keys below this size are refused at load (NIST SP 800-131A).
    public static let minimumRSABits = 2048

    public let material: Material
    /// Selects this key for tokens carrying the same `kid`; nil = tried for every token
    /// of its type (SPEC §3).
    public let kid: String?
    /// A JWKS entry's `alg`: the key then verifies that algorithm only.
    public let pinnedAlgorithm: JWTAlgorithm?
    /// For a secret: HMAC states already keyed with it, one per hash.
    private let keyedMACs: KeyedMACs?

    /// Keying an HMAC hashes the padded secret twice, about what a short token's whole
    /// MAC costs; doing it once per key, not per token, halves a cold HS256 check. Each
    /// verification copies a state and updates the copy (the digests copy on write), so
    /// the keyed states themselves never change. A class, so that copying a key retains
    /// one box rather than the six digest contexts inside.
    private final class KeyedMACs: Sendable {
        let sha256: HMAC<SHA256>
        let sha384: HMAC<SHA384>
        let sha512: HMAC<SHA512>

        init(_ secret: SymmetricKey) {
            sha256 = HMAC(key: secret)
            sha384 = HMAC(key: secret)
            sha512 = HMAC(key: secret)
        }
    }

    /// What makes two keys the same key: type, key material, `kid` and pinned `alg`.
    /// The material enters as its SHA-256, so a secret is not copied into another value.
    /// (Not called "identity": in this code base that is always the caller's.)
    public struct Fingerprint: Hashable, Sendable {
        let type: KeyType
        let materialDigest: [UInt8]
        let kid: String?
        let pinnedAlgorithm: JWTAlgorithm?
    }

    public var fingerprint: Fingerprint {
        let bytes: Data
        switch material {
        case .rsa(let key): bytes = key.derRepresentation
        case .p256(let key): bytes = key.x963Representation
        case .p384(let key): bytes = key.x963Representation
        case .ed25519(let key): bytes = key.rawRepresentation
        case .hmacSecret(let secret): bytes = secret.withUnsafeBytes { Data($0) }
        }
        return Fingerprint(
            type: keyType, materialDigest: Array(SHA256.hash(data: bytes)), kid: kid, pinnedAlgorithm: pinnedAlgorithm)
    }

    /// Refuses RSA keys under 2048 bits, empty secrets, and a pinned algorithm the key's
    /// type cannot verify.
    public init(_ material: Material, kid: String? = nil, pinnedAlgorithm: JWTAlgorithm? = nil) throws(InvalidKey) {
        if case .rsa(let key) = material, key.keySizeInBits < Self.minimumRSABits {
            throw InvalidKey(
                message: "RSA key is \(key.keySizeInBits) bits; at least \(Self.minimumRSABits) are required")
        }
        if case .hmacSecret(let secret) = material, secret.bitCount == 0 {
            throw InvalidKey(message: "HMAC secret is empty")
        }
        if let pinnedAlgorithm, !Self.type(of: material, allows: pinnedAlgorithm) {
            throw InvalidKey(
                message: "\(Self.keyType(of: material).rawValue) key cannot verify \(pinnedAlgorithm.rawValue)")
        }
        self.material = material
        self.kid = kid
        self.pinnedAlgorithm = pinnedAlgorithm
        if case .hmacSecret(let secret) = material { keyedMACs = KeyedMACs(secret) } else { keyedMACs = nil }
    }

    public var keyType: KeyType { Self.keyType(of: material) }

    private static func keyType(of material: Material) -> KeyType {
        switch material {
        case .rsa: .rsa
        case .p256: .p256
        case .p384: .p384
        case .ed25519: .ed25519
        case .hmacSecret: .hmacSecret
        }
    }

    public func canVerify(_ alg: JWTAlgorithm) -> Bool {
        if let pinnedAlgorithm, pinnedAlgorithm != alg { return false }
        return Self.type(of: material, allows: alg)
    }

    private static func type(of material: Material, allows alg: JWTAlgorithm) -> Bool {
        switch (material, alg) {
        case (.rsa, .rs256), (.rsa, .rs384), (.rsa, .rs512): true
        case (.p256, .es256): true
        case (.p384, .es384): true
        case (.ed25519, .edDSA): true
        case (.hmacSecret, .hs256), (.hmacSecret, .hs384), (.hmacSecret, .hs512): true
        default: false
        }
    }

    /// Whether `signature` is a valid `alg` signature of `signingInput` by this key.
    /// False, never a trap, for a key/algorithm mismatch or a signature of the wrong
    /// shape. ECDSA signatures must be JWS raw `R || S` (RFC 7518 §3.4); DER is refused.
    public func verify<Input: DataProtocol>(alg: JWTAlgorithm, signingInput: Input, signature: [UInt8]) -> Bool {
        guard canVerify(alg) else { return false }
        switch material {
        case .rsa(let key):
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch alg {
            case .rs256:
                return key.isValidSignature(
                    rsaSignature, for: SHA256.hash(data: signingInput), padding: .insecurePKCS1v1_5)
            case .rs384:
                return key.isValidSignature(
                    rsaSignature, for: SHA384.hash(data: signingInput), padding: .insecurePKCS1v1_5)
            case .rs512:
                return key.isValidSignature(
                    rsaSignature, for: SHA512.hash(data: signingInput), padding: .insecurePKCS1v1_5)
            default:
                return false
            }
        case .p256(let key):
            guard signature.count == 64, let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(ecdsa, for: signingInput)
        case .p384(let key):
            guard signature.count == 96, let ecdsa = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(ecdsa, for: signingInput)
        case .ed25519(let key):
            guard signature.count == 64 else { return false }
            return key.isValidSignature(signature, for: signingInput)
        case .hmacSecret:
            guard let keyedMACs else { return false }
            switch alg {
            case .hs256:
                return signature.count == SHA256.byteCount
                    && Self.isValid(signature, for: signingInput, keyed: keyedMACs.sha256)
            case .hs384:
                return signature.count == SHA384.byteCount
                    && Self.isValid(signature, for: signingInput, keyed: keyedMACs.sha384)
            case .hs512:
                return signature.count == SHA512.byteCount
                    && Self.isValid(signature, for: signingInput, keyed: keyedMACs.sha512)
            default:
                return false
            }
        }
    }

    /// The MAC of `input` under an already keyed state, compared in constant time
    /// (`HashedAuthenticationCode == DataProtocol` is swift-crypto's `safeCompare`).
    private static func isValid<H: HashFunction>(
        _ signature: [UInt8], for input: some DataProtocol, keyed: HMAC<H>
    ) -> Bool {
        var mac = keyed
        mac.update(data: input)
        return mac.finalize() == signature
    }
}
