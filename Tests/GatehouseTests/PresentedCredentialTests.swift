import Testing

@testable import Gatehouse

@Suite("Presented credentials") struct PresentedCredentialTests {
    @Test("the Bearer scheme: case-insensitive, then a blank, then the token")
    func bearerScheme() {
        #expect(PresentedCredential.bearerToken("Bearer abc") == "abc")
        #expect(PresentedCredential.bearerToken("  bEaReR\t\tabc  ") == "abc")
        #expect(PresentedCredential.bearerToken("Bearer") == "")
        #expect(PresentedCredential.bearerToken("Bearer   ") == "")
        #expect(PresentedCredential.bearerToken("Bearerabc") == nil)
        #expect(PresentedCredential.bearerToken("Beare") == nil)
        #expect(PresentedCredential.bearerToken("Basic eA==") == nil)
        #expect(PresentedCredential.bearerToken("") == nil)
        // A combining mark glued to the scheme makes it another word, not "Bearer".
        #expect(PresentedCredential.bearerToken("Bearer\u{301} abc") == nil)
        #expect(PresentedCredential.bearerToken("Bearer a b") == "a b")
        // A blank then a combining mark: the blank byte separates, and what follows is a
        // (malformed) token, refused later as such, never a credential that is ignored.
        #expect(PresentedCredential.bearerToken("Bearer \u{301}abc") == "\u{301}abc")
    }
}
