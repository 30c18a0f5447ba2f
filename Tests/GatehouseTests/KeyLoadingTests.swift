import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import Gatehouse

// Fixed public keys made with openssl: RSA key generation is slow in debug builds and
// these tests only need public halves.
private let rsa2048PEM = fixtureRSA2048PublicKeyPEM + "\n"

private let rsa1024PEM = """
    -----BEGIN PUBLIC KEY-----
    MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCusY5JlmffFPztyXgmVkr8pH+G
    SJp/pVkIBChlQNq8Boe79uxuCEix2cCJG47hAEyk6IwfIsYpsP0UdE6NNaWus29r
    j6eq9wownkh0ly3Ps50H46NsaSzyKQq8N2lVwYGFfKIFGE8LbinDCK++jGovt+gc
    JIBYuYJHjhft4iQ1AwIDAQAB
    -----END PUBLIC KEY-----

    """

private let p521PEM = """
    -----BEGIN PUBLIC KEY-----
    MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQAu2IxVTZsuBHbXYlGGUPvHaMQu8Ks
    eMGRdhER/hq87q/JxEnXJvCozA0qABulOoZbfwMEcdrkJMgtYfP/IdyyFjkBxWKG
    awKbFbGXqLWPdFn/aORaeRMKvLovEnwICzL32k95AokAI/I0BII9IbkZ0nKQA71c
    LEoIUbcWkvMnqbDz0eE=
    -----END PUBLIC KEY-----

    """

private let rsaPublicKey = try! _RSA.Signing.PublicKey(pemRepresentation: rsa2048PEM)

/// A fresh folder per test.
private func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-keys-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func write(_ text: String, _ name: String, in folder: URL) -> String {
    write(Array(text.utf8), name, in: folder)
}

private func write(_ bytes: [UInt8], _ name: String, in folder: URL) -> String {
    let url = folder.appendingPathComponent(name)
    try! Data(bytes).write(to: url)
    return url.path
}

private func loadError(_ body: () throws -> Void) -> KeyLoadingError? {
    do {
        try body()
        return nil
    } catch let error as KeyLoadingError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

private func b64(_ bytes: some Collection<UInt8>) -> String { Base64URL.encode(bytes) }

@Suite final class KeyLoadingTests {
    let folder = temporaryDirectory()

    deinit {
        try? FileManager.default.removeItem(at: folder)
    }

    // MARK: PEM

    @Test func loadsEverySupportedPEMKeyType() throws {
        let p256 = P256.Signing.PrivateKey().publicKey
        let p384 = P384.Signing.PrivateKey().publicKey
        let ed25519 = Curve25519.Signing.PrivateKey().publicKey
        let cases: [(String, VerificationKey.KeyType)] = [
            (rsa2048PEM, .rsa), (rsaPublicKey.pkcs1PEMRepresentation, .rsa), (p256.pemRepresentation, .p256),
            (p384.pemRepresentation, .p384), (ed25519.pemRepresentation, .ed25519),
            ("Some leading comment\r\n" + p256.pemRepresentation.replacingOccurrences(of: "\n", with: "\r\n"), .p256),
        ]
        for (index, (pem, type)) in cases.enumerated() {
            let path = write(pem, "key\(index).pem", in: folder)
            let key = try KeyLoading.loadPEMKey(KeyFileReference(path: path, kid: "k\(index)"))
            #expect(key.keyType == type)
            #expect(key.kid == "k\(index)")
            #expect(key.pinnedAlgorithm == nil)
        }
        let kidless = try KeyLoading.loadPEMKey(KeyFileReference(path: write(rsa2048PEM, "plain.pem", in: folder)))
        #expect(kidless.kid == nil)
        #expect(kidless.canVerify(.rs256) && kidless.canVerify(.rs512) && !kidless.canVerify(.hs256))
    }

    @Test func refusesUnusablePEMFiles() {
        let privateKey = P256.Signing.PrivateKey().pemRepresentation
        let certificate = "-----BEGIN CERTIFICATE-----\nMIIBLDCB36ADAgECAhRP\n-----END CERTIFICATE-----\n"
        let cases: [(String, String)] = [
            (rsa1024PEM, "1024 bits"),
            (p521PEM, "P-521"),
            (privateKey, "private key"),
            (certificate, "certificate"),
            ("hello", "no PEM block"),
            ("", "no PEM block"),
            ("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", "base64"),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "SubjectPublicKeyInfo"),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n", "no END line"),
            (rsa2048PEM + P256.Signing.PrivateKey().publicKey.pemRepresentation, "2 PEM blocks"),
        ]
        for (index, (pem, expected)) in cases.enumerated() {
            let path = write(pem, "bad\(index).pem", in: folder)
            let error = loadError { _ = try KeyLoading.loadPEMKey(KeyFileReference(path: path)) }
            #expect(error?.source == path)
            #expect(error?.message.contains(expected) == true, "\(index): \(String(describing: error))")
        }
        let missing = folder.appendingPathComponent("missing.pem").path
        let error = loadError { _ = try KeyLoading.loadPEMKey(KeyFileReference(path: missing)) }
        #expect(error?.description == "\(missing): file not found")
        #expect(
            loadError { _ = try KeyLoading.loadPEMKey(KeyFileReference(path: folder.path)) }?.message
                == "is a directory")
    }

    @Test func pemKeyVerifiesTokensEndToEnd() throws {
        let signer = P256.Signing.PrivateKey()
        let path = write(signer.publicKey.pemRepresentation, "ec.pem", in: folder)
        let key = try KeyLoading.loadPEMKey(KeyFileReference(path: path, kid: "ec"))
        let input = Array("header.payload".utf8)
        let signature = Array(try signer.signature(for: input).rawRepresentation)
        #expect(key.verify(alg: .es256, signingInput: input, signature: signature))
        #expect(!key.verify(alg: .es384, signingInput: input, signature: signature))
        #expect(!key.verify(alg: .es256, signingInput: Array("header.payloaD".utf8), signature: signature))
    }

    // MARK: JWKS

    @Test func parsesRSAECAndOKPEntriesAndIgnoresTheRest() throws {
        let primitives = try rsaPublicKey.getKeyPrimitives()
        let p256 = Array(P256.Signing.PrivateKey().publicKey.rawRepresentation)
        let p384 = Array(P384.Signing.PrivateKey().publicKey.rawRepresentation)
        let ed = Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
        let document = """
            {"keys":[
              {"kty":"RSA","kid":"r1","use":"sig","alg":"RS256","n":"\(b64(primitives.modulus))","e":"\(b64(primitives.publicExponent))"},
              {"kty":"EC","kid":"e1","crv":"P-256","x":"\(b64(p256[0..<32]))","y":"\(b64(p256[32...]))"},
              {"kty":"EC","crv":"P-384","x":"\(b64(p384[0..<48]))","y":"\(b64(p384[48...]))","key_ops":["verify"]},
              {"kty":"OKP","kid":"o1","crv":"Ed25519","x":"\(b64(ed))","alg":"EdDSA"},
              {"kty":"oct","kid":"s1","k":"c2VjcmV0"},
              {"kty":"RSA","kid":"enc","use":"enc","n":"\(b64(primitives.modulus))","e":"AQAB"},
              {"kty":"RSA","kid":"ps","alg":"PS256","n":"\(b64(primitives.modulus))","e":"AQAB"},
              {"kty":"EC","kid":"p521","crv":"P-521","x":"AA","y":"AA"},
              {"kty":"EC","kid":"short","crv":"P-256","x":"\(b64(p256[0..<31]))","y":"\(b64(p256[32...]))"},
              {"kty":"EC","kid":"offcurve","crv":"P-256","x":"\(b64([UInt8](repeating: 1, count: 32)))","y":"\(b64([UInt8](repeating: 2, count: 32)))"},
              {"kty":"RSA","kid":"no-n","e":"AQAB"},
              {"kty":"RSA","kid":"padded","n":"\(b64(primitives.modulus))=","e":"AQAB"},
              {"kty":"RSA","kid":"small","n":"\(b64(primitives.modulus.prefix(128)))","e":"AQAB"},
              {"kty":"OKP","kid":"x25519","crv":"X25519","x":"\(b64(ed))"},
              {"kty":"EC","kid":"mismatch","crv":"P-256","alg":"ES384","x":"\(b64(p256[0..<32]))","y":"\(b64(p256[32...]))"},
              {"kid":"no-kty"},
              {"kty":"RSA","kid":7,"n":"\(b64(primitives.modulus))","e":"AQAB"},
              {"kty":"EC","kid":"sign-only","key_ops":["sign"],"crv":"P-256","x":"\(b64(p256[0..<32]))","y":"\(b64(p256[32...]))"},
              "not an object"
            ]}
            """
        let set = try KeyLoading.parseJWKS(Array(document.utf8), source: "https://auth.example.com/jwks")
        #expect(set.keys.map(\.kid) == ["r1", "e1", nil, "o1"])
        #expect(set.keys.map(\.keyType) == [.rsa, .p256, .p384, .ed25519])
        #expect(set.keys[0].pinnedAlgorithm == .rs256)
        #expect(set.keys[0].canVerify(.rs256) && !set.keys[0].canVerify(.rs384))
        #expect(set.keys[3].pinnedAlgorithm == .edDSA)
        #expect(set.skipped.count == 15)
        let skipped = set.skipped.joined(separator: "\n")
        for expected in [
            "(kid \"s1\"): symmetric (oct)", "(kid \"enc\"): \"use\"", "(kid \"ps\"): \"alg\"",
            "(kid \"p521\"): EC curve",
            "(kid \"short\"): invalid P-256", "(kid \"offcurve\"): invalid P-256", "(kid \"no-n\"): RSA key needs",
            "(kid \"padded\"): RSA key needs", "(kid \"small\"): RSA key is 1024 bits", "(kid \"x25519\"): OKP curve",
            "(kid \"mismatch\"): EC P-256 key cannot verify ES384", "(kid \"no-kty\"): no \"kty\"",
            "key #17: \"kid\" is not",
            "(kid \"sign-only\"): \"key_ops\"", "key #19: not a JSON object",
        ] {
            #expect(skipped.contains(expected), "\(expected)")
        }
    }

    @Test func jwksKeysVerifyTokensThroughIssuerKeys() throws {
        let signer = Curve25519.Signing.PrivateKey()
        let document =
            #"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"\#(b64(signer.publicKey.rawRepresentation))"}]}"#
        let path = write(document, "jwks.json", in: folder)
        let set = try KeyLoading.loadJWKSFile(atPath: path)
        let keys = IssuerKeys(staticKeys: [], hasJWKSURL: true)
        keys.replaceJWKS(set.keys)
        let selection = keys.select(alg: .edDSA, kid: "ed")
        #expect(selection.candidates.count == 1 && !selection.kidUnknown)
        let input = Array("a.b".utf8)
        #expect(
            selection.candidates[0].verify(
                alg: .edDSA, signingInput: input, signature: Array(try signer.signature(for: input))))
        #expect(keys.select(alg: .edDSA, kid: "other").candidates.isEmpty)
        #expect(keys.select(alg: .edDSA, kid: "other").kidUnknown)
        #expect(keys.select(alg: .es256, kid: "ed").candidates.isEmpty)
    }

    @Test func refusesUnusableJWKSDocuments() {
        let cases: [(String, String)] = [
            ("not json", "not valid JSON"),
            (#"{"keys":{}}"#, "no \"keys\" array"),
            (#"[{"kty":"RSA"}]"#, "no \"keys\" array"),
            (#"{"keys":[]}"#, "no usable signing key: the key set is empty"),
            (#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#, "no usable signing key: key #1: symmetric"),
            (#"{"keys":[],"keys":[]}"#, "duplicate member name"),
            (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "nesting deeper"),
        ]
        for (document, expected) in cases {
            let error = loadError { _ = try KeyLoading.parseJWKS(Array(document.utf8), source: "jwks.json") }
            #expect(error?.source == "jwks.json")
            #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
        }
        let huge = [UInt8](repeating: 0x20, count: KeyLoading.maximumDocumentBytes + 1)
        #expect(loadError { _ = try KeyLoading.parseJWKS(huge, source: "x") }?.message.contains("larger") == true)
    }

    @Test func selectionFollowsSpecKidRules() throws {
        let ec = P256.Signing.PrivateKey().publicKey
        let keys = [
            try VerificationKey(.rsa(rsaPublicKey), kid: "a"), try VerificationKey(.rsa(rsaPublicKey), kid: "b"),
            try VerificationKey(.p256(ec), kid: "c"), try VerificationKey(.p256(ec)),
        ]
        func kids(_ alg: JWTAlgorithm, _ kid: String?) -> [String?] {
            IssuerKeys.select(from: keys, alg: alg, kid: kid).candidates.map(\.kid)
        }
        #expect(kids(.rs256, "a") == ["a"])
        #expect(kids(.rs256, "z").isEmpty)
        #expect(kids(.rs256, "c").isEmpty)
        #expect(kids(.rs256, nil) == ["a", "b"])
        #expect(kids(.es256, "c") == ["c", nil])
        #expect(kids(.es256, "a") == [nil])
        #expect(IssuerKeys.select(from: keys, alg: .es256, kid: "a").kidUnknown)
        #expect(kids(.es256, nil) == ["c", nil])
        #expect(kids(.hs256, nil).isEmpty)
    }

    // MARK: HMAC secret

    @Test func hmacSecretStripsOneTrailingNewline() throws {
        let cases: [([UInt8], [UInt8])] = [
            (Array("s3cr3t\n".utf8), Array("s3cr3t".utf8)),
            (Array("s3cr3t\r\n".utf8), Array("s3cr3t".utf8)),
            (Array("s3cr3t\n\n".utf8), Array("s3cr3t\n".utf8)),
            (Array("s3cr3t \n".utf8), Array("s3cr3t ".utf8)),
            (Array("s3cr3t\r".utf8), Array("s3cr3t\r".utf8)),
            ([0, 255, 10], [0, 255]),
        ]
        for (index, (contents, secret)) in cases.enumerated() {
            let path = write(contents, "secret\(index)", in: folder)
            let loaded = try KeyLoading.loadHMACSecret(atPath: path)
            let input = Array("x.y".utf8)
            let mac = Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: secret)))
            #expect(loaded.key.verify(alg: .hs256, signingInput: input, signature: mac), "\(index)")
            #expect(loaded.key.kid == nil)
            #expect(loaded.warning?.contains(path) == true)
        }
    }

    @Test func hmacSecretLengthRules() throws {
        for contents in ["", "\n", "\r\n"] {
            let path = write(contents, "empty", in: folder)
            #expect(
                loadError { _ = try KeyLoading.loadHMACSecret(atPath: path) }?.message == "HMAC secret file is empty")
        }
        let short = try KeyLoading.loadHMACSecret(
            atPath: write(String(repeating: "k", count: 31) + "\n", "short", in: folder))
        #expect(short.warning?.contains("31 bytes") == true)
        let long = try KeyLoading.loadHMACSecret(
            atPath: write(String(repeating: "k", count: 32) + "\n", "long", in: folder))
        #expect(long.warning == nil)
        #expect(long.key.canVerify(.hs256) && long.key.canVerify(.hs512) && !long.key.canVerify(.rs256))
    }

    @Test func rsaKeysUnder2048BitsAreRefusedEverywhere() throws {
        let small = try _RSA.Signing.PublicKey(unsafePEMRepresentation: rsa1024PEM)
        #expect(throws: VerificationKey.InvalidKey.self) { try VerificationKey(.rsa(small)) }
        #expect(throws: VerificationKey.InvalidKey.self) {
            try VerificationKey(.p256(P256.Signing.PrivateKey().publicKey), pinnedAlgorithm: .es384)
        }
        #expect(throws: VerificationKey.InvalidKey.self) {
            try VerificationKey(.hmacSecret(SymmetricKey(data: [UInt8]())))
        }
    }
}

// MARK: - Base64url and JSON (named for the `JWT` test filter)

@Suite struct JWTBase64URLTests {
    @Test func roundTripsEveryLength() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(Base64URL.decode(encoded) == bytes)
        }
        #expect(Base64URL.encode(Array("hello?>".utf8)) == "aGVsbG8_Pg")
        #expect(Base64URL.decode("aGVsbG8_Pg") == Array("hello?>".utf8))
    }

    @Test func refusesNonCanonicalInput() {
        for bad in ["aGVsbG8_Pg==", "aGVsbG8/Pg", "aGVs+G8", "aGVs bG8", "aGVs\nbG8", "QR", "QUF", "A", "QUFBQ", "é"] {
            #expect(Base64URL.decode(bad) == nil, "\(bad)")
        }
        #expect(Base64URL.decode("QQ") == [0x41])
        #expect(Base64URL.decode("QUE") == [0x41, 0x41])
        #expect(Base64URL.decode("") == [])
    }
}

@Suite struct JWTJSONValueTests {
    @Test func parsesValuesAndNumbers() throws {
        let value = try JSONValue.parse(
            Array(
                #" {"a":[1,-2,3.5,1e3,true,false,null,"x\u00e9\ud83d\ude00\n\/"],"big":92233720368547758070,"o":{}} "#
                    .utf8))
        let array = try #require(value["a"]?.arrayValue)
        #expect(array[0] == .number(.integer(1)))
        #expect(array[1] == .number(.integer(-2)))
        #expect(array[2] == .number(.double(3.5)))
        #expect(array[3] == .number(.double(1000)))
        #expect(array[4] == .bool(true) && array[5] == .bool(false) && array[6] == .null)
        #expect(array[7] == .string("xé😀\n/"))
        #expect(value["big"]?.numberValue?.doubleValue == 92233720368547758070.0)
        #expect(value["o"] == .object([:]))
    }

    @Test func refusesInvalidJSON() {
        let cases = [
            "", " ", "{", "{\"a\":1,}", "[1,]", "{'a':1}", "01", "1.", ".5", "-", "+1", "1e", "NaN", "Infinity",
            "tru", "nul", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\nb\"", "{\"a\":1}x",
            "{\"a\":1,\"a\":2}", "1e400", "{\"a\" 1}", "[1 2]",
        ]
        for text in cases {
            #expect(throws: JSONValue.ParseError.self, "\(text)") { try JSONValue.parse(Array(text.utf8)) }
        }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse([0x22, 0xC3, 0x22]) }
        #expect(throws: JSONValue.ParseError.self) {
            try JSONValue.parse(Array((String(repeating: "[", count: 33) + String(repeating: "]", count: 33)).utf8))
        }
        #expect(
            (try? JSONValue.parse(Array((String(repeating: "[", count: 32) + String(repeating: "]", count: 32)).utf8)))
                != nil)
    }

    @Test func neverCrashesOnRandomInput() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(#"{}[],:"\/ 0123456789.eE+-tfnulrsa"#.utf8) + [0x00, 0xFF, 0xC3, 0xA9]
        for _ in 0..<5_000 {
            let length = Int.random(in: 0..<40, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            _ = try? JSONValue.parse(bytes)
        }
    }

    @Test func dottedPaths() throws {
        let value = try JSONValue.parse(
            Array(
                #"{"app_metadata":{"org_id":"o1","nested":{"x":1}},"https://ns.example/role":"r","a.b":"literal","a":{"b":"nested"}}"#
                    .utf8))
        #expect(value.value(at: "app_metadata.org_id") == .string("o1"))
        #expect(value.value(at: "app_metadata.nested.x") == .number(.integer(1)))
        #expect(value.value(at: "https://ns.example/role") == .string("r"))
        #expect(value.value(at: "a.b") == .string("literal"))
        #expect(value.value(at: "app_metadata.missing") == nil)
        #expect(value.value(at: "app_metadata.org_id.deeper") == nil)
        #expect(value.value(at: "") == nil)
        #expect(value.value(at: ".") == nil)
    }
}
