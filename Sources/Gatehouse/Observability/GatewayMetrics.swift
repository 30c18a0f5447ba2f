import NIOConcurrencyHelpers
import Prometheus

/// The Prometheus metrics of SPEC §8, served on the admin listener's `/metrics`.
/// swift-prometheus keeps one series per name + label set and is safe from any thread.
public final class GatewayMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let openStreams: Gauge
    private let keyStoreReloads: Counter
    private let keyStoreReloadsSeen = NIOLockedValueBox(0)
    // Per-request handles, looked up once per (route, status) and route: building the
    // descriptor, label list and registry key on every request cost more than the count.
    // Bounded by the configured routes times the status codes seen.
    private let requestCounters = NIOLockedValueBox<[RequestKey: Counter]>([:])
    private let upstreamHistograms = NIOLockedValueBox<[String: DurationHistogram]>([:])

    private struct RequestKey: Hashable {
        let route: String?
        let status: Int
    }

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
        let key = RequestKey(route: route, status: status)
        if let counter = requestCounters.withLockedValue({ $0[key] }) {
            counter.increment()
            return
        }
        // The registry hands out one counter per name and labels, so a race here is harmless.
        let counter = registry.makeCounter(
            descriptor: Self.requests,
            labels: [("route", route ?? "none"), ("status", String(status))]
        )
        requestCounters.withLockedValue { $0[key] = counter }
        counter.increment()
    }

    public func denied(reason: String) {
        registry.makeCounter(descriptor: Self.denials, labels: [("reason", reason)]).increment()
    }

    /// Time from sending the request upstream to its response head.
    public func upstreamResponded(route: String, after duration: Duration) {
        if let histogram = upstreamHistograms.withLockedValue({ $0[route] }) {
            histogram.record(duration)
            return
        }
        let histogram = registry.makeDurationHistogram(
            descriptor: Self.upstreamDuration,
            labels: [("route", route)],
            buckets: Self.latencyBuckets
        )
        upstreamHistograms.withLockedValue { $0[route] = histogram }
        histogram.record(duration)
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
