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

    @Test("substrings in the middle of a string compare on their own bytes")
    func substrings() {
        let text = "xxContent-Typeyy"
        let middle = text.dropFirst(2).dropLast(2)
        #expect(middle.equalsASCIICaseInsensitive("content-type"))
        #expect(middle.hasASCIICaseInsensitivePrefix("content-"))
        #expect(!middle.hasASCIICaseInsensitivePrefix("content-typeyy"))
        #expect("Content".hasASCIICaseInsensitivePrefix(""))
        #expect(!"".hasASCIICaseInsensitivePrefix("c"))
    }

    @Test("trimming removes only spaces and tabs, and only at the ends")
    func trimming() {
        #expect(" \t a b \t ".trimmingASCIIWhitespace() == "a b")
        #expect("ab".trimmingASCIIWhitespace() == "ab")
        #expect(" \t ".trimmingASCIIWhitespace() == "")
        #expect("".trimmingASCIIWhitespace() == "")
        // Other whitespace is not HTTP whitespace: it stays.
        #expect("\u{A0}x\n".trimmingASCIIWhitespace() == "\u{A0}x\n")
        // A blank byte before a combining mark is trimmed as the byte it is.
        #expect(" \u{301}x".trimmingASCIIWhitespace().utf8.elementsEqual("\u{301}x".utf8))
        let inner = "[  v  ]".dropFirst().dropLast()
        #expect(inner.trimmingASCIIWhitespace() == "v")
    }
}
