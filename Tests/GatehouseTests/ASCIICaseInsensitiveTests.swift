import Testing

@testable import Gatehouse

@Suite("ASCII case-insensitive matching") struct ASCIICaseInsensitiveTests {
    @Test("equality ignores ASCII case only")
    func equality() {
        #expect("Content-Type".equalsASCIICaseInsensitive("content-type"))
        #expect("ACCEPT"[...].equalsASCIICaseInsensitive("accept"))
        #expect(!"Accept-".equalsASCIICaseInsensitive("accept"))
        #expect(!"Accep".equalsASCIICaseInsensitive("accept"))
        #expect(!"".equalsASCIICaseInsensitive("accept"))
        #expect("".equalsASCIICaseInsensitive(""))
        // Only A–Z fold: '@' (0x40) and '[' (0x5B) must not turn into '`' or '{'.
        #expect(!"@".equalsASCIICaseInsensitive("`"))
        #expect(!"[".equalsASCIICaseInsensitive("{"))
        // Non-ASCII letters are compared byte for byte, never folded.
        #expect(!"ÄCCEPT".equalsASCIICaseInsensitive("äccept"))
        #expect("ä".equalsASCIICaseInsensitive("ä"))
    }

    @Test("prefix and containment")
    func prefixAndContains() {
        #expect("Proxy-Authenticate".hasASCIICaseInsensitivePrefix("proxy-"))
        #expect(!"Prox".hasASCIICaseInsensitivePrefix("proxy-"))
        #expect("TEXT/Event-Stream; charset=utf-8".hasASCIICaseInsensitivePrefix("text/event-stream"))
        #expect("application/json, Text/Event-Stream".containsASCIICaseInsensitive("text/event-stream"))
        #expect("tttext/event-stream".containsASCIICaseInsensitive("text/event-stream"))
        #expect(!"text/event-strea".containsASCIICaseInsensitive("text/event-stream"))
        #expect(!"application/json".containsASCIICaseInsensitive("text/event-stream"))
        #expect(!"".containsASCIICaseInsensitive("x"))
        #expect("anything".containsASCIICaseInsensitive(""))
    }
}
