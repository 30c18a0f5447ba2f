import Crypto
import Foundation
import _CryptoExtras

/// A key source that could not be used. `source` is the file path (or JWKS URL) so that
/// `gatehouse check` and the start-up log can name it.
public struct KeyLoadingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var source: String
    public var message: String

    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}

/// The usable keys of a JWKS document, and why the other entries were left out (for the
/// config checker and the JWKS fetch log; a provider adding a key type we do not support
/// must not take the whole set down).
public struct JWKSKeySet: Sendable {
    public var keys: [VerificationKey]
    public var skipped: [String]

    public init(keys: [VerificationKey], skipped: [String]) {
        self.keys = keys
        self.skipped = skipped
    }
}

/// An `hs256_secret_file`, plus a warning the config checker prints for a short secret.
public struct LoadedHMACSecret: Sendable {
    public var key: VerificationKey
    public var warning: String?
}

/// Reading key material from disk and from JWKS documents.
public enum KeyLoading {
    /// Key files and JWKS documents larger than this are refused: real ones are a few KiB.
    public static let maximumDocumentBytes = 1 << 20
    /// Below this an HS256 secret is brute-forceable offline from any one token (RFC 7518
    /// §3.2 asks for a key at least as long as the hash output).
    public static let recommendedHMACSecretBytes = 32

    // MARK: PEM

    /// A PEM public key file: SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`: RSA, EC P-256 /
    /// P-384, Ed25519) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
    public static func loadPEMKey(_ reference: KeyFileReference) throws(KeyLoadingError) -> VerificationKey {
        let bytes = try readFile(reference.path)
        return try parsePEMKey(String(decoding: bytes, as: UTF8.self), kid: reference.kid, source: reference.path)
    }

    public static func parsePEMKey(_ text: String, kid: String?, source: String) throws(KeyLoadingError)
        -> VerificationKey
    {
        func fail(_ message: String) -> KeyLoadingError { KeyLoadingError(source: source, message: message) }
        let blocks: [PEMBlock]
        do throws(PEMBlock.Failure) {
            blocks = try PEMBlock.parseAll(text)
        } catch {
            throw fail(error.message)
        }
        guard let block = blocks.first else { throw fail("no PEM block found (expected BEGIN PUBLIC KEY)") }
        guard blocks.count == 1 else {
            throw fail("holds \(blocks.count) PEM blocks; give one public key per file")
        }
        let material: VerificationKey.Material
        switch block.label {
        case "PUBLIC KEY":
            material = try subjectPublicKeyInfo(block.der, fail: fail)
        case "RSA PUBLIC KEY":
            do {
                material = .rsa(try _RSA.Signing.PublicKey(unsafeDERRepresentation: block.der))
            } catch {
                throw fail("not a valid PKCS#1 RSA public key")
            }
        case "CERTIFICATE":
            throw fail(
                "holds a certificate; extract its public key with `openssl x509 -pubkey -noout -in \(source)`")
        case let label where label.contains("PRIVATE KEY"):
            throw fail("holds a private key; give the public key only (`openssl pkey -pubout -in \(source)`)")
        case let label:
            throw fail("unsupported PEM block \"\(label)\" (expected BEGIN PUBLIC KEY)")
        }
        do throws(VerificationKey.InvalidKey) {
            return try VerificationKey(material, kid: kid)
        } catch {
            throw fail(error.message)
        }
    }

    private static func subjectPublicKeyInfo(
        _ der: [UInt8],
        fail: (String) -> KeyLoadingError
    ) throws(KeyLoadingError) -> VerificationKey.Material {
        guard let algorithm = SPKIAlgorithm.identify(der) else {
            throw fail("not a valid SubjectPublicKeyInfo public key")
        }
        do {
            switch algorithm {
            case .rsa: return .rsa(try _RSA.Signing.PublicKey(unsafeDERRepresentation: der))
            case .p256: return .p256(try P256.Signing.PublicKey(derRepresentation: der))
            case .p384: return .p384(try P384.Signing.PublicKey(derRepresentation: der))
            case .ed25519: return .ed25519(try Curve25519.Signing.PublicKey(derRepresentation: der))
            case .unsupported(let name): throw fail("\(name) keys are not supported (RSA, EC P-256/P-384, Ed25519)")
            }
        } catch let error as KeyLoadingError {
            throw error
        } catch {
            throw fail("not a valid \(algorithm) public key")
        }
    }

    // MARK: JWKS

    public static func loadJWKSFile(atPath path: String) throws(KeyLoadingError) -> JWKSKeySet {
        try parseJWKS(try readFile(path), source: path)
    }

    /// Entries that are not signature keys we can use are skipped with a note: `use`
    /// other than `sig`, `key_ops` without `verify`, symmetric `oct` keys (a shared secret
    /// published in a key set is not trusted; `hs256_secret_file` is the way), unsupported
    /// types/curves/algorithms, RSA under 2048 bits, malformed members. A document with no
    /// usable key at all is an error, so that a fetch returning one keeps the previous set.
    public static func parseJWKS<Bytes: Collection<UInt8>>(_ document: Bytes, source: String)
        throws(KeyLoadingError) -> JWKSKeySet
    {
        func fail(_ message: String) -> KeyLoadingError { KeyLoadingError(source: source, message: message) }
        guard document.count <= maximumDocumentBytes else {
            throw fail("JWKS document is larger than \(maximumDocumentBytes) bytes")
        }
        let root: JSONValue
        do throws(JSONValue.ParseError) {
            root = try JSONValue.parse(document)
        } catch {
            throw fail("JWKS is not valid JSON: \(error)")
        }
        guard let entries = root["keys"]?.arrayValue else {
            throw fail("not a JWKS document: no \"keys\" array")
        }
        var keys: [VerificationKey] = []
        var skipped: [String] = []
        for (position, entry) in entries.enumerated() {
            switch jwk(entry) {
            case .success(let key):
                keys.append(key)
            case .failure(let reason):
                let kid = entry["kid"]?.stringValue.map { " (kid \"\(String($0.prefix(64)))\")" } ?? ""
                skipped.append("key #\(position + 1)\(kid): \(reason.message)")
            }
        }
        guard !keys.isEmpty else {
            let why = skipped.isEmpty ? "the key set is empty" : skipped.joined(separator: "; ")
            throw fail("JWKS has no usable signing key: \(why)")
        }
        return JWKSKeySet(keys: keys, skipped: skipped)
    }

    private static func jwk(_ entry: JSONValue) -> Result<VerificationKey, VerificationKey.InvalidKey> {
        func skip(_ message: String) -> Result<VerificationKey, VerificationKey.InvalidKey> {
            .failure(VerificationKey.InvalidKey(message: message))
        }
        guard let members = entry.objectValue else { return skip("not a JSON object") }
        var kid: String?
        if let value = members["kid"] {
            guard let text = value.stringValue else { return skip("\"kid\" is not a string") }
            kid = text
        }
        if let use = members["use"] {
            guard use.stringValue == "sig" else { return skip("\"use\" is not \"sig\"") }
        }
        if let operations = members["key_ops"] {
            guard let list = operations.arrayValue, list.contains(.string("verify")) else {
                return skip("\"key_ops\" does not include \"verify\"")
            }
        }
        var pinned: JWTAlgorithm?
        if let value = members["alg"] {
            guard let name = value.stringValue, let algorithm = JWTAlgorithm(rawValue: name) else {
                return skip("\"alg\" is not a supported signature algorithm")
            }
            pinned = algorithm
        }
        guard let kty = members["kty"]?.stringValue else { return skip("no \"kty\"") }
        let material: VerificationKey.Material
        switch kty {
        case "RSA":
            guard let n = base64URLMember(members, "n"), let e = base64URLMember(members, "e") else {
                return skip("RSA key needs base64url \"n\" and \"e\"")
            }
            let bits = bitLength(n)
            guard bits >= VerificationKey.minimumRSABits else {
                return skip("RSA key is \(bits) bits; at least \(VerificationKey.minimumRSABits) are required")
            }
            guard let key = try? _RSA.Signing.PublicKey(n: n, e: e) else { return skip("invalid RSA key") }
            material = .rsa(key)
        case "EC":
            guard let x = base64URLMember(members, "x"), let y = base64URLMember(members, "y") else {
                return skip("EC key needs base64url \"x\" and \"y\"")
            }
            switch members["crv"]?.stringValue {
            case "P-256":
                guard x.count == 32, y.count == 32, let key = try? P256.Signing.PublicKey(rawRepresentation: x + y)
                else { return skip("invalid P-256 point") }
                material = .p256(key)
            case "P-384":
                guard x.count == 48, y.count == 48, let key = try? P384.Signing.PublicKey(rawRepresentation: x + y)
                else { return skip("invalid P-384 point") }
                material = .p384(key)
            default:
                return skip("EC curve is not P-256 or P-384")
            }
        case "OKP":
            guard members["crv"]?.stringValue == "Ed25519" else { return skip("OKP curve is not Ed25519") }
            guard let x = base64URLMember(members, "x"), x.count == 32,
                let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x)
            else { return skip("invalid Ed25519 key") }
            material = .ed25519(key)
        case "oct":
            return skip("symmetric (oct) keys in a JWKS are ignored; use hs256_secret_file")
        default:
            return skip("key type \"\(String(kty.prefix(16)))\" is not supported")
        }
        do throws(VerificationKey.InvalidKey) {
            return .success(try VerificationKey(material, kid: kid, pinnedAlgorithm: pinned))
        } catch {
            return .failure(error)
        }
    }

    private static func base64URLMember(_ members: [String: JSONValue], _ name: String) -> [UInt8]? {
        guard let text = members[name]?.stringValue, let bytes = Base64URL.decode(text), !bytes.isEmpty else {
            return nil
        }
        return bytes
    }

    private static func bitLength(_ bigEndian: [UInt8]) -> Int {
        guard let first = bigEndian.firstIndex(where: { $0 != 0 }) else { return 0 }
        return (bigEndian.count - first - 1) * 8 + (8 - bigEndian[first].leadingZeroBitCount)
    }

    // MARK: HMAC secret

    public static func loadHMACSecret(atPath path: String) throws(KeyLoadingError) -> LoadedHMACSecret {
        try hmacSecret(fileContents: try readFile(path), source: path)
    }

    /// The secret is the file's raw bytes minus ONE trailing `\n` or `\r\n` (what editors
    /// and `echo` add); anything else, whitespace included, is part of the secret.
    public static func hmacSecret(fileContents: [UInt8], source: String) throws(KeyLoadingError)
        -> LoadedHMACSecret
    {
        var secret = fileContents[...]
        if secret.last == UInt8(ascii: "\n") {
            secret = secret.dropLast()
            if secret.last == UInt8(ascii: "\r") { secret = secret.dropLast() }
        }
        guard !secret.isEmpty else { throw KeyLoadingError(source: source, message: "HMAC secret file is empty") }
        let key: VerificationKey
        do throws(VerificationKey.InvalidKey) {
            key = try VerificationKey(.hmacSecret(SymmetricKey(data: secret)))
        } catch {
            throw KeyLoadingError(source: source, message: error.message)
        }
        var warning: String?
        if secret.count < recommendedHMACSecretBytes {
            warning =
                "\(source): HMAC secret is \(secret.count) bytes; at least \(recommendedHMACSecretBytes) are recommended"
        }
        return LoadedHMACSecret(key: key, warning: warning)
    }

    // MARK: Files

    private static func readFile(_ path: String) throws(KeyLoadingError) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw KeyLoadingError(source: path, message: "file not found")
        }
        guard !isDirectory.boolValue else { throw KeyLoadingError(source: path, message: "is a directory") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw KeyLoadingError(source: path, message: "cannot be read (permissions?)")
        }
        defer { try? handle.close() }
        let data: Data?
        do {
            // One byte past the limit tells "too large" apart from "exactly at the limit".
            data = try handle.read(upToCount: maximumDocumentBytes + 1)
        } catch {
            throw KeyLoadingError(source: path, message: "cannot be read: \(error.localizedDescription)")
        }
        let bytes = [UInt8](data ?? Data())
        guard bytes.count <= maximumDocumentBytes else {
            throw KeyLoadingError(source: path, message: "larger than \(maximumDocumentBytes) bytes")
        }
        return bytes
    }
}

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` block (RFC 7468). Text outside
/// blocks is ignored, as OpenSSL does.
private struct PEMBlock {
    var label: String
    var der: [UInt8]

    struct Failure: Error {
        var message: String
    }

    static func parseAll(_ text: String) throws(Failure) -> [PEMBlock] {
        var blocks: [PEMBlock] = []
        var open: (label: String, body: String)?
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if var current = open {
                if line.hasPrefix("-----END ") {
                    guard line == "-----END \(current.label)-----" else {
                        throw Failure(message: "PEM block \"\(current.label)\" has a mismatched END line")
                    }
                    guard let der = Data(base64Encoded: current.body), !der.isEmpty else {
                        throw Failure(message: "PEM block \"\(current.label)\" is not valid base64")
                    }
                    blocks.append(PEMBlock(label: current.label, der: [UInt8](der)))
                    open = nil
                } else {
                    current.body += line
                    open = current
                }
            } else if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----"), line.count > 16 {
                let label = line.dropFirst("-----BEGIN ".count).dropLast("-----".count)
                open = (String(label), "")
            }
        }
        if let open { throw Failure(message: "PEM block \"\(open.label)\" has no END line") }
        return blocks
    }
}

/// The key algorithm named by a SubjectPublicKeyInfo (RFC 5280 §4.1), read with a
/// minimal DER walk so that an unsupported key gets a message naming its type rather
/// than "invalid key".
private enum SPKIAlgorithm: CustomStringConvertible {
    case rsa, p256, p384, ed25519
    case unsupported(String)

    var description: String {
        switch self {
        case .rsa: "RSA"
        case .p256: "EC P-256"
        case .p384: "EC P-384"
        case .ed25519: "Ed25519"
        case .unsupported(let name): name
        }
    }

    private static let rsaEncryption: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
    private static let rsaPSS: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A]
    private static let ecPublicKey: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
    private static let prime256v1: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
    private static let secp384r1: [UInt8] = [0x2B, 0x81, 0x04, 0x00, 0x22]
    private static let secp521r1: [UInt8] = [0x2B, 0x81, 0x04, 0x00, 0x23]
    private static let ed25519OID: [UInt8] = [0x2B, 0x65, 0x70]
    private static let ed448: [UInt8] = [0x2B, 0x65, 0x71]

    /// nil when the bytes are not SubjectPublicKeyInfo-shaped DER.
    static func identify(_ der: [UInt8]) -> SPKIAlgorithm? {
        guard let outer = DERElement.read(der, at: 0), outer.tag == 0x30, outer.end == der.count,
            let algorithmIdentifier = DERElement.read(der, at: outer.content.lowerBound),
            algorithmIdentifier.tag == 0x30,
            let oid = DERElement.read(der, at: algorithmIdentifier.content.lowerBound), oid.tag == 0x06
        else { return nil }
        let algorithm = Array(der[oid.content])
        switch algorithm {
        case rsaEncryption: return .rsa
        case rsaPSS: return .unsupported("RSA-PSS")
        case ed25519OID: return .ed25519
        case ed448: return .unsupported("Ed448")
        case ecPublicKey:
            guard oid.end < algorithmIdentifier.content.upperBound,
                let parameters = DERElement.read(der, at: oid.end), parameters.tag == 0x06
            else { return .unsupported("EC (explicit curve parameters)") }
            switch Array(der[parameters.content]) {
            case prime256v1: return .p256
            case secp384r1: return .p384
            case secp521r1: return .unsupported("EC P-521")
            default: return .unsupported("EC (this curve)")
            }
        default:
            return .unsupported("this key algorithm")
        }
    }
}

private struct DERElement {
    var tag: UInt8
    var content: Range<Int>
    var end: Int

    static func read(_ bytes: [UInt8], at offset: Int) -> DERElement? {
        guard offset + 2 <= bytes.count else { return nil }
        let tag = bytes[offset]
        var cursor = offset + 1
        let first = bytes[cursor]
        cursor += 1
        var length = 0
        if first < 0x80 {
            length = Int(first)
        } else {
            let count = Int(first & 0x7F)
            guard (1...3).contains(count), cursor + count <= bytes.count else { return nil }
            for _ in 0..<count {
                length = length << 8 | Int(bytes[cursor])
                cursor += 1
            }
        }
        guard length <= bytes.count - cursor else { return nil }
        return DERElement(tag: tag, content: cursor..<(cursor + length), end: cursor + length)
    }
}
