import Foundation
import Gatehouse
import Testing

/// A flood of refusals: every answered denial is in the log after a graceful stop —
/// buffered writing may delay lines, never drop them.
@Suite("Denial flood") struct DenialFloodTests {
    @Test("100,000 refused requests, pipelined on 10 connections → exactly 100,000 denial lines")
    func flood() async throws {
        let folder = try TempFolder("flood")
        let logPath = folder.file("denials.jsonl")
        let connections = 10
        let batches = 10
        let perBatch = 1000
        let answered = try await GatewayFixture.with(configure: { config in
            config.logs.denials = logPath
            config.logs.denialsMaxBytes = 1 << 40
        }) { gw -> Int in
            let request = Array("GET /nothing/flood HTTP/1.1\r\nHost: flood\r\n\r\n".utf8)
            let batch = [UInt8]((0..<perBatch).flatMap { _ in request })
            return try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<connections {
                    group.addTask {
                        var count = 0
                        for _ in 0..<batches {
                            let raw = try await RawHTTPClient.exchange(
                                port: gw.port,
                                bytes: batch,
                                readTimeout: .seconds(60),
                                stopAfterResponses: perBatch
                            )
                            count += raw.responses().filter { $0.status == 404 }.count
                        }
                        return count
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        // The fixture has shut the gateway down gracefully: the log is complete.
        #expect(answered == connections * batches * perBatch)
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: logPath))
        defer { try? handle.close() }
        var lines = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            lines += chunk.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        }
        #expect(lines == answered)
    }
}
