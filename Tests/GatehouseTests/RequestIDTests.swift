import Testing

@testable import Gatehouse

@Suite("Request ids") struct RequestIDTests {
    @Test("generated ids are 32 lower-case hex characters and never repeat")
    func generatedIDs() {
        var seen = Set<String>()
        for _ in 0..<100_000 {
            let id = RequestID.generate()
            #expect(id.utf8.count == 32)
            #expect(id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }, "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 100_000)
    }

    @Test("generated ids are unique across threads")
    func concurrentIDs() async {
        let batches = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 { group.addTask { (0..<10_000).map { _ in RequestID.generate() } } }
            var all: [[String]] = []
            for await batch in group { all.append(batch) }
            return all
        }
        #expect(Set(batches.joined()).count == 80_000)
    }

    @Test(
        "a client's well-formed id is kept; anything else is replaced",
        arguments: [
            ("req-42.a:b_c", true), ("", false), ("has space", false), (String(repeating: "a", count: 128), true),
            (String(repeating: "a", count: 129), false), ("ünïcode", false), ("a\r\nb", false),
        ])
    func acceptance(candidate: String, kept: Bool) {
        let id = RequestID.accepting(candidate)
        #expect((id == candidate) == kept)
        if !kept { #expect(id.utf8.count == 32) }
    }
}
