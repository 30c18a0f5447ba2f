import NIOConcurrencyHelpers
import Prometheus

/// The Prometheus metrics of SPEC §8, served on the admin listener's `/metrics`.
/// swift-prometheus keeps one series per name + label set and is safe from any thread.
public final class GatewayMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let openStreams: Gauge
    private let keyStoreReloads: Counter
    private let keyStoreReloadsSeen = NIOLockedValueBox(0)

    // Descriptors are rebuilt per use: MetricNameDescriptor is not Sendable, so it cannot
    // be a static constant; it is a small value.

    /// Upstream latency buckets, in seconds: loopback hops up to slow APIs.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
    ]

    private static func name(_ metric: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "gatehouse", metricName: metric, unitName: unit, helpText: help)
    }

    private static var requests: MetricNameDescriptor {
        name("requests", unit: "total", help: "Responses by route and status")
    }
    private static var denials: MetricNameDescriptor {
        name("denials", unit: "total", help: "Requests refused by the gateway, by reason")
    }
    private static var upstreamDuration: MetricNameDescriptor {
        name(
            "upstream_duration",
            unit: "seconds",
            help: "Upstream time to response headers"
        )
    }
    private static var jwksFailures: MetricNameDescriptor {
        name(
            "jwks_fetch_failures",
            unit: "total",
            help: "JWKS fetches that failed or were refused (the last good set stays in use)"
        )
    }
    private static var configReloads: MetricNameDescriptor {
        name("config_reloads", unit: "total", help: "SIGHUP config reloads")
    }

    public init() {
        openStreams = registry.makeGauge(
            descriptor: Self.name("open_streams", help: "Server-Sent-Event responses currently streaming to clients")
        )
        keyStoreReloads = registry.makeCounter(
            descriptor: Self.name(
                "key_store_reloads",
                unit: "total",
                help: "Key store snapshots reloaded after a change (CLI writes)"
            )
        )
    }

    /// Every response, the gateway's own refusals included (`route="none"` when no route matched).
    public func requestCompleted(route: String?, status: Int) {
        registry.makeCounter(
            descriptor: Self.requests,
            labels: [("route", route ?? "none"), ("status", String(status))]
        ).increment()
    }

    public func denied(reason: String) {
        registry.makeCounter(descriptor: Self.denials, labels: [("reason", reason)]).increment()
    }

    /// Time from sending the request upstream to its response head.
    public func upstreamResponded(route: String, after duration: Duration) {
        registry.makeDurationHistogram(
            descriptor: Self.upstreamDuration,
            labels: [("route", route)],
            buckets: Self.latencyBuckets
        ).record(duration)
    }

    public func streamOpened() { openStreams.increment() }

    public func streamClosed() { openStreams.decrement() }

    public func jwksFetchFailed(issuer: String) {
        registry.makeCounter(descriptor: Self.jwksFailures, labels: [("issuer", issuer)]).increment()
    }

    public func configReloaded(success: Bool) {
        registry.makeCounter(
            descriptor: Self.configReloads,
            labels: [("result", success ? "success" : "failure")]
        ).increment()
    }

    /// The key-store watcher counts its own reloads; brought into the counter at scrape time.
    public func observeKeyStoreReloads(total: Int) {
        let delta = keyStoreReloadsSeen.withLockedValue { seen -> Int in
            defer { seen = max(seen, total) }
            return total - seen
        }
        if delta > 0 { keyStoreReloads.increment(by: Int64(delta)) }
    }

    /// The Prometheus text exposition.
    public func render() -> String {
        registry.emitToString()
    }
}
