import Gatehouse
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("10.0.99.100", "10.0.99.100"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329"),
        // A single zero group is not compressed (RFC 5952 §4.2.2) …
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        // … the longest run is, and the first one on a tie.
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("::ffff:0102:0304", "::ffff:1.2.3.4"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("fe80::1", "fe80::1"),
    ])
    func parsesToCanonicalText(input: String, canonical: String) throws {
        let address = try #require(IPAddress.parse(input))
        #expect(address.description == canonical)
        #expect(IPAddress.parse(canonical) == address)
    }

    @Test("every octet value prints as its decimal text, in every position")
    func dottedQuadOctets() throws {
        for octet in 0...255 {
            let text = "\(octet).\(255 - octet).\(octet / 2).\(octet % 10)"
            let address = try #require(IPAddress.parse(text))
            #expect(address.description == text)
            #expect(IPAddress.parse("::ffff:" + text)?.description == "::ffff:" + text)
        }
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4\0junk", "a.b.c.d",
        "1:::2", ":::", "12345::", "[::1]", "fe80::1%eth0", "::1/128", "1.2.3.4:80", "localhost",
    ])
    func refusesInvalidText(input: String) {
        #expect(IPAddress.parse(input) == nil)
    }

    @Test func familiesAndMapping() throws {
        let v4 = try #require(IPAddress.parse("10.1.2.3"))
        let mapped = try #require(IPAddress.parse("::ffff:10.1.2.3"))
        #expect(v4.isIPv4)
        #expect(!mapped.isIPv4)
        #expect(mapped.isIPv4Mapped)
        #expect(!v4.isIPv4Mapped)
        // Distinct as written, one client once unmapped.
        #expect(v4 != mapped)
        #expect(mapped.unmapped == v4)
        #expect(v4.unmapped == v4)
        #expect(mapped.unmapped.description == "10.1.2.3")
        let v6 = try #require(IPAddress.parse("2001:db8::1"))
        #expect(v6.unmapped == v6)
    }
}

@Suite struct CIDRTests {
    private func address(_ text: String) throws -> IPAddress { try #require(IPAddress.parse(text)) }

    @Test func ipv4Block() throws {
        let block = try #require(CIDR.parse("10.0.0.0/8"))
        #expect(block.description == "10.0.0.0/8")
        #expect(block.prefixLength == 8)
        #expect(block.contains(try address("10.0.0.0")))
        #expect(block.contains(try address("10.255.255.255")))
        #expect(!block.contains(try address("11.0.0.1")))
        #expect(!block.contains(try address("9.255.255.255")))
        #expect(!block.contains(try address("fd00::1")))
    }

    @Test func ipv4MappedPeerMatchesIPv4Block() throws {
        let block = try #require(CIDR.parse("127.0.0.1/32"))
        #expect(block.contains(try address("::ffff:127.0.0.1")))
        #expect(!block.contains(try address("::ffff:127.0.0.2")))
        #expect(try #require(CIDR.parse("192.168.0.0/16")).contains(try address("::ffff:192.168.4.5")))
    }

    @Test func ipv6Blocks() throws {
        let loopback = try #require(CIDR.parse("::1/128"))
        #expect(loopback.contains(try address("::1")))
        #expect(!loopback.contains(try address("::2")))
        #expect(!loopback.contains(try address("127.0.0.1")))
        let ula = try #require(CIDR.parse("fd00::/8"))
        #expect(ula.contains(try address("fd12:3456::1")))
        #expect(ula.contains(try address("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
        #expect(!ula.contains(try address("fe80::1")))
        #expect(!ula.contains(try address("10.0.0.1")))
        let odd = try #require(CIDR.parse("2001:db8::/33"))
        #expect(odd.contains(try address("2001:db8:7fff::1")))
        #expect(!odd.contains(try address("2001:db8:8000::1")))
    }

    @Test func blocksCoveringTheMappedRangeMatchIPv4() throws {
        #expect(try #require(CIDR.parse("::ffff:0:0/96")).contains(try address("1.2.3.4")))
        #expect(try #require(CIDR.parse("::/0")).contains(try address("1.2.3.4")))
        #expect(try #require(CIDR.parse("0.0.0.0/0")).contains(try address("1.2.3.4")))
        #expect(try #require(CIDR.parse("0.0.0.0/0")).contains(try address("::ffff:1.2.3.4")))
        #expect(!(try #require(CIDR.parse("0.0.0.0/0")).contains(try address("::1"))))
    }

    @Test func bareAddressIsASingleHost() throws {
        let v4 = try #require(CIDR.parse("192.168.1.1"))
        #expect(v4.prefixLength == 32)
        #expect(v4.description == "192.168.1.1/32")
        #expect(v4.contains(try address("192.168.1.1")))
        #expect(!v4.contains(try address("192.168.1.2")))
        let v6 = try #require(CIDR.parse("::1"))
        #expect(v6.prefixLength == 128)
        #expect(v6.description == "::1/128")
    }

    @Test func hostBitsAreCleared() throws {
        let block = try #require(CIDR.parse("10.1.2.3/8"))
        #expect(block.description == "10.0.0.0/8")
        #expect(block.network == (try address("10.0.0.0")))
        #expect(try #require(CIDR.parse("2001:db8::1/32")).description == "2001:db8::/32")
        #expect(try #require(CIDR.parse("10.0.0.0/0")).description == "0.0.0.0/0")
    }

    @Test(arguments: [
        "", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/ 8",
        "10.0.0.0/8/9", "x/8", "10.0.0.0/0008", "10.0.0/8", "[::1]/128",
    ])
    func refusesInvalidBlocks(input: String) {
        #expect(CIDR.parse(input) == nil)
    }
}
