import Foundation
import Testing

/// The shipped binary allocates through mimalloc (Package.swift links it): glibc's
/// allocator slowed the request path as the token cache filled (BENCHMARKS.md, session 4).
@Suite("Memory allocator") struct AllocatorTests {
    @Test("the gateway binary runs on mimalloc and says so when it starts")
    func gatewayUsesMimalloc() async throws {
        let port = try await GatewayFixture.closedPort()
        // Port 9 (discard): nothing answers there, and this test sends no request.
        let path = try GatehouseProcess.writeOpenRouteConfig(port: port, upstreamPort: 9)
        let running = try GatehouseProcess.start(["serve", "--config", path])
        let listening = await eventually(timeout: .seconds(10)) {
            running.stderrSoFar().contains("gatehouse listening")
        }
        #expect(listening, "gateway did not start: \(running.stderrSoFar())")
        #expect(running.stderrSoFar().contains("allocator=libmimalloc"), "\(running.stderrSoFar())")
        let maps = try String(
            decoding: FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/\(running.pid)/maps")).readToEnd()
                ?? Data(), as: UTF8.self)
        #expect(maps.contains("libmimalloc"))
        let result = try await running.stop()
        #expect(result.status == 0, "\(result.stderr)")
    }
}
