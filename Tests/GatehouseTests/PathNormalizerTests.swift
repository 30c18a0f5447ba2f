import Testing

@testable import Gatehouse

/// Targets that must pass, and exactly what routing and the upstream will then see.
private let accepted: [(target: String, path: String, query: String?)] = [
    // Already normal: the fast path.
    ("/", "/", nil),
    ("/a", "/a", nil),
    ("/a/b", "/a/b", nil),
    ("/a/b/", "/a/b/", nil),
    ("/mcp/github/tools/list", "/mcp/github/tools/list", nil),
    ("/A/b/C", "/A/b/C", nil),
    ("/a-b_c~d.e", "/a-b_c~d.e", nil),
    ("/a;b/c", "/a;b/c", nil),
    ("/a;", "/a;", nil),
    ("/;a", "/;a", nil),
    ("/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", nil),
    // Dots inside names are not dot segments.
    ("/a/.hidden", "/a/.hidden", nil),
    ("/a/b.", "/a/b.", nil),
    ("/a/...", "/a/...", nil),
    ("/a/..b", "/a/..b", nil),
    ("/a/b..", "/a/b..", nil),
    ("/.well-known/x", "/.well-known/x", nil),
    // Unreserved escapes decode, in either case.
    ("/%41", "/A", nil),
    ("/%61%62c", "/abc", nil),
    ("/%30%39", "/09", nil),
    ("/%2D%5f%7E%7e", "/-_~~", nil),
    ("/a%2Eb", "/a.b", nil),
    // Other escapes stay encoded, upper-cased.
    ("/%25", "/%25", nil),
    ("/100%25/x", "/100%25/x", nil),
    ("/%2525", "/%2525", nil),
    ("/a%20b", "/a%20b", nil),
    ("/a%3bb", "/a%3Bb", nil),
    ("/%3f", "/%3F", nil),
    ("/%23", "/%23", nil),
    ("/%c3%a9", "/%C3%A9", nil),
    ("/%E2%82%AC", "/%E2%82%AC", nil),
    ("/%ff", "/%FF", nil),
    ("/%2541", "/%2541", nil),
    // Repeated slashes merge.
    ("//", "/", nil),
    ("//a///b", "/a/b", nil),
    ("/a//", "/a/", nil),
    ("///a", "/a", nil),
    // Looks like a network-path reference, but is origin-form: just a path here.
    ("//evil/x", "/evil/x", nil),
    // Dot segments resolve, whatever their spelling.
    ("/.", "/", nil),
    ("/./", "/", nil),
    ("/a/./b", "/a/b", nil),
    ("/a/.", "/a/", nil),
    ("/a/b/..", "/a/", nil),
    ("/a/b/../", "/a/", nil),
    ("/a/b/../c", "/a/c", nil),
    ("/a/..", "/", nil),
    ("/a/../", "/", nil),
    ("/a/b/../../c", "/c", nil),
    ("/a/%2e/b", "/a/b", nil),
    ("/a/%2e%2E/b", "/b", nil),
    ("/a/%2E%2e", "/", nil),
    ("/a/.%2e/b", "/b", nil),
    ("/a/%2e./b", "/b", nil),
    ("/a/b/%2e%2e/", "/a/", nil),
    ("/a/.//b", "/a/b", nil),
    ("/a/..//b", "/b", nil),
    ("/a//../b", "/b", nil),
    // Queries are split at the first "?" and kept byte for byte.
    ("/?", "/", ""),
    ("/a?", "/a", ""),
    ("/a?b=1", "/a", "b=1"),
    ("/a?b?c", "/a", "b?c"),
    ("/?a=%00", "/", "a=%00"),
    ("/a?x=%zz&y=%", "/a", "x=%zz&y=%"),
    ("/a?p=/../..", "/a", "p=/../.."),
    ("/a?q=\\", "/a", "q=\\"),
    ("/a/b/?q", "/a/b/", "q"),
    ("/a/./b?q=./", "/a/b", "q=./"),
    ("/%41?%41", "/A", "%41"),
]

@Test(arguments: accepted)
func acceptsAndNormalises(target: String, path: String, query: String?) {
    #expect(PathNormalizer.normalize(target: target) == .success(NormalizedTarget(path: path, query: query)))
}

/// Paths that could mean something else to some upstream: 400 `invalid_path`.
private let invalidPaths: [String] = [
    // Encoded separators and backslashes.
    "/a%2Fb", "/a%2fb", "/%2F", "/a/%2f/b", "/%5c", "/%5C", "/a\\b", "/\\", "/..\\x",
    // NUL and every other control byte, raw or encoded.
    "/%00", "/a%00b", "/%0D%0A", "/%0d", "/%0a", "/%09", "/%1f", "/%7f", "/%7F",
    "/a\u{0}b", "/a\rb", "/a\nb", "/a\tb", "/a\u{1F}", "/a\u{7F}",
    // Invalid escapes.
    "/%", "/a%", "/%4", "/a%4/b", "/%G0", "/%0G", "/%zz", "/%-1", "/% 1",
    // Raw space, raw non-ASCII, raw "#".
    "/a b", "/ ", "/caf\u{E9}", "/\u{1F600}", "/a#b", "/#",
    // Climbing above the root.
    "/..", "/../", "/../a", "/a/../..", "/a/../../b", "/a/b/../../..", "/%2e%2e", "/%2E%2E/a", "/./..", "//..",
    "/a/..//..",
    // Dot segments disguised with `;` parameters or deeper encodings.
    "/..;", "/..;x", "/a/..;/b", "/.;", "/.;x/a", "/a/..%3B", "/a/..%3b/b", "/a/%2e%2e%3bx", "/.%3b",
    "/a/%2e%3B", "/a/%252e%252e/b", "/%252E", "/a/%25252e%25252e", "/a/.%252e", "/a/%252e%252e%253b",
    // Encoded separators and controls behind a second round of decoding.
    "/a%252Fb", "/..%252F..", "/a%255c", "/a%2500", "/a%250d%250a", "/%25252f",
    // Overlong UTF-8 spellings of "." and "/".
    "/%c0%ae", "/%C0%AE%C0%AE", "/a/%c0%af", "/%c1%9c", "/%e0%80%ae", "/%f0%80%80%ae",
]

@Test(arguments: invalidPaths)
func refusesInvalidPath(target: String) {
    #expect(PathNormalizer.normalize(target: target) == .failure(.invalidPath))
}

/// Targets that are not origin-form, or carry a query we could not forward faithfully:
/// 400 `malformed_request`.
private let malformed: [String] = [
    "", "*", "?", "?a=1", "a/b", "./a", "../a", "%2Fa", "\\a", " /a",
    "http://evil/x", "https://evil.example/", "HTTP://evil/x", "evil.example:443",
    "/a?b c", "/a?\u{1}", "/?a\u{0}", "/a?x=\r\n", "/a?x=\u{7F}", "/a?caf\u{E9}", "/a?x#frag",
]

@Test(arguments: malformed)
func refusesMalformedTarget(target: String) {
    #expect(PathNormalizer.normalize(target: target) == .failure(.malformedRequest))
}

@Test("a path refusal wins over a query refusal")
func pathCheckedBeforeQuery() {
    #expect(PathNormalizer.normalize(target: "/%00?\u{1}") == .failure(.invalidPath))
}

@Test("normalising is idempotent", arguments: accepted.map(\.path))
func idempotent(path: String) {
    #expect(PathNormalizer.normalize(target: path) == .success(NormalizedTarget(path: path, query: nil)))
}

@Test("output never holds a dot segment, a double slash or a non-printable byte")
func outputInvariants() {
    // A small exhaustive walk over tricky tokens catches combinations the tables miss.
    let tokens = ["/", ".", "..", "%2e", "%2E", "%3b", ";", "a", "%41", "%25", "%2f", "%c0", "~"]
    var targets = ["/"]
    for _ in 0..<4 {
        targets = targets.flatMap { prefix in tokens.map { prefix + $0 } }
    }
    for target in targets {
        guard case .success(let result) = PathNormalizer.normalize(target: target) else { continue }
        let segments = result.path.split(separator: "/", omittingEmptySubsequences: false)
        #expect(result.path.hasPrefix("/"), "\(target)")
        #expect(!result.path.contains("//"), "\(target)")
        #expect(!segments.contains { $0 == "." || $0 == ".." }, "\(target)")
        #expect(result.path.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "\(target)")
        #expect(PathNormalizer.normalize(target: result.path) == .success(result), "\(target)")
    }
}
