/// Who the client really is and what the forwarded-for chain should say (SPEC §6).
public struct ClientAddress: Sendable, Equatable {
    /// The address used for lock-out and logs.
    public var ip: String
    /// Value of `X-Forwarded-For` sent upstream.
    public var forwardedFor: String
    /// Whether the peer is a trusted proxy whose forwarding headers are believed.
    public var peerIsTrusted: Bool

    /// From a trusted peer the chain is extended and the client is the rightmost address
    /// that is not itself a trusted proxy; from anyone else the client's claims are
    /// discarded and the peer is the client.
    public static func resolve(peer: IPAddress?, forwardedFor: [String], trustedProxies: [CIDR]) -> ClientAddress {
        guard let peer else {
            return ClientAddress(ip: "unknown", forwardedFor: "unknown", peerIsTrusted: false)
        }
        let peerText = peer.unmapped.description
        guard trustedProxies.contains(where: { $0.contains(peer) }) else {
            return ClientAddress(ip: peerText, forwardedFor: peerText, peerIsTrusted: false)
        }
        var chain: [Substring] = []
        for value in forwardedFor {
            for entry in value.split(separator: ",") {
                let trimmed = entry.trimmingASCIIWhitespace()
                if !trimmed.isEmpty { chain.append(trimmed) }
            }
        }
        var client = peerText
        for entry in chain.reversed() {
            // A garbage entry ends the walk: nothing left of it can be believed.
            guard let address = IPAddress.parse(String(entry)) else { break }
            client = address.unmapped.description
            if !trustedProxies.contains(where: { $0.contains(address) }) { break }
        }
        let joined = chain.isEmpty ? peerText : chain.joined(separator: ", ") + ", " + peerText
        return ClientAddress(ip: client, forwardedFor: joined, peerIsTrusted: true)
    }
}
