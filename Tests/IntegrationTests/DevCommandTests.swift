import Foundation
import Testing

/// `gatehouse dev` (what `make run` runs): the printed sample JWT and API key work against
/// the gateway it starts, and the printed curl lines are right.
@Suite("gatehouse dev") struct DevCommandTests {
    @Test("prints a working JWT, API key and curl lines; refusals land in the denial log")
    func firstRun() async throws {
        let folder = try TempFolder("dev")
        let running = try GatehouseProcess.start([
            "dev", "--dir", folder.file("state"), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
        ])
        defer { Task { _ = try? await running.stop() } }
        let printed = await eventually(timeout: .seconds(20)) { running.child.stdout.contains("Try:") }
        #expect(printed, "no banner; stderr: \(running.stderrSoFar())")
        let lines = running.child.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let token = try #require(lines.firstIndex { $0.hasPrefix("Sample JWT") }.map { lines[$0 + 1] })
        let key = try #require(lines.firstIndex { $0.hasPrefix("Sample API key") }.map { lines[$0 + 1] })
        let base = try #require(
            lines.first { $0.hasPrefix("Gatehouse dev is running on ") }?
                .split(separator: " ").first { $0.hasPrefix("http://") }.map(String.init)
        )
        #expect(lines.contains { $0.hasPrefix("curl -i \(base)/echo/hello -H 'Authorization: Bearer \(token)'") })

        let viaToken = try await CurlClient.request(
            url: base + "/echo/hello", headers: [("Authorization", "Bearer \(token)")])
        #expect(viaToken.status == 200)
        #expect(viaToken.bodyString.contains("X-User-Id: dev-user"))
        #expect(viaToken.bodyString.contains("X-Auth-Method: jwt"))
        let viaKey = try await CurlClient.request(url: base + "/echo/hello", headers: [("X-Api-Key", key)])
        #expect(viaKey.status == 200)
        #expect(viaKey.bodyString.contains("X-Auth-Method: api_key"))
        let anonymous = try await CurlClient.request(url: base + "/echo/hello")
        #expect(anonymous.status == 401)
        let notAdmin = try await CurlClient.request(url: base + "/admin/users", headers: [("X-Api-Key", key)])
        #expect(notAdmin.status == 403)
        let spoofed = try await CurlClient.request(url: base + "/public/x", headers: [("X-User-Id", "spoofed")])
        #expect(spoofed.status == 200)
        #expect(!spoofed.bodyString.contains("spoofed"))

        let denials = folder.file("state/logs/denials.jsonl")
        #expect(
            await eventually {
                ((try? String(contentsOfFile: denials, encoding: .utf8)) ?? "").split(separator: "\n").count == 2
            })
        let result = try await running.stop()
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains(key))
    }
}
