import Foundation
import Gatehouse
import Testing

/// `/metrics` on the admin listener, scraped and parsed as Prometheus text.
@Suite("Metrics") struct MetricsTests {
    /// `name{labels} value` lines → value by the full series text.
    static func parse(_ text: String) -> [String: Double] {
        var series: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            series[String(line[..<space])] = value
        }
        return series
    }

    @Test("requests, denials, upstream latency and open streams are exported")
    func scrape() async throws {
        try await GatewayFixture.with { gw in
            for _ in 0..<3 { _ = try await CurlClient.request(url: gw.url("/api/x")) }
            _ = try await CurlClient.request(url: gw.url("/nothing"))
            _ = try await CurlClient.request(method: "DELETE", url: gw.url("/limited/x"))
            _ = try await CurlClient.request(url: gw.url("/dead/x"))
            async let stream = CurlClient.request(
                url: gw.url("/api/sse-forever?interval_ms=100"),
                options: {
                    var options = CurlClient.Options()
                    options.abortAfterBytes = 40
                    return options
                }())
            let during = await eventually {
                let text =
                    (try? await CurlClient.request(url: "http://127.0.0.1:\(gw.adminPort)/metrics"))?.bodyString ?? ""
                return Self.parse(text)["gatehouse_open_streams"] == 1
            }
            #expect(during, "open stream not counted")
            _ = try await stream

            let response = try await CurlClient.request(url: "http://127.0.0.1:\(gw.adminPort)/metrics")
            #expect(response.status == 200)
            #expect(response.header("Content-Type")?.hasPrefix("text/plain") == true)
            let series = Self.parse(response.bodyString)
            // Three plain requests and the stream (its 200 head went out before the client left).
            #expect(series[#"gatehouse_requests_total{route="api",status="200"}"#] == 4)
            #expect(series[#"gatehouse_requests_total{route="none",status="404"}"#] == 1)
            #expect(series[#"gatehouse_requests_total{route="limited",status="405"}"#] == 1)
            #expect(series[#"gatehouse_requests_total{route="dead",status="502"}"#] == 1)
            #expect(series[#"gatehouse_denials_total{reason="no_route"}"#] == 1)
            #expect(series[#"gatehouse_denials_total{reason="method_not_allowed"}"#] == 1)
            #expect((series[#"gatehouse_upstream_duration_seconds_count{route="api"}"#] ?? 0) >= 3)
            #expect(series[#"gatehouse_upstream_duration_seconds_bucket{route="api",le="+Inf"}"#] != nil)
            #expect(series["gatehouse_key_store_reloads_total"] != nil)
            let settled = await eventually {
                let text =
                    (try? await CurlClient.request(url: "http://127.0.0.1:\(gw.adminPort)/metrics"))?.bodyString ?? ""
                return Self.parse(text)["gatehouse_open_streams"] == 0
            }
            #expect(settled, "stream still counted after the client left")
        }
    }
}
