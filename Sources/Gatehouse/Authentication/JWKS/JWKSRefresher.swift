import Foundation
import Logging
import NIOConcurrencyHelpers

/// Keeps every `jwks_url` issuer's key set fresh (SPEC §3): fetched with libcurl at
/// start-up, again every `jwks_refresh`, and early when a token names an unknown `kid` —
/// at most once per 30 s per issuer. A failed fetch keeps the last good set.
///
/// Fetches run on one dedicated thread (blocking libcurl easy calls, never on an event
/// loop). `@unchecked Sendable`: the mutable schedule is only touched under `condition`.
public final class JWKSRefresher: @unchecked Sendable {
    public struct Source: Sendable {
        public var issuer: String
        public var url: String
        public var refresh: Duration
        /// Parses a fetched document and installs its keys; returns the key count or why not.
        public var install: @Sendable ([UInt8]) -> Result<Int, JWKSInstallError>

        public init(
            issuer: String, url: String, refresh: Duration,
            install: @escaping @Sendable ([UInt8]) -> Result<Int, JWKSInstallError>
        ) {
            self.issuer = issuer
            self.url = url
            self.refresh = refresh
            self.install = install
        }
    }

    static let unknownKidCooldown: TimeInterval = 30

    private let sources: [Source]
    private let logger: Logger
    private let onFailure: @Sendable (String) -> Void
    private let condition = NSCondition()
    private var nextFetch: [Date]
    private var lastEarlyFetch: [Date?]
    private var loaded: [Bool]
    private var stopped = false
    private var started = false

    public init(sources: [Source], logger: Logger, onFailure: @escaping @Sendable (String) -> Void = { _ in }) {
        self.sources = sources
        self.logger = logger
        self.onFailure = onFailure
        self.nextFetch = Array(repeating: .distantPast, count: sources.count)
        self.lastEarlyFetch = Array(repeating: nil, count: sources.count)
        self.loaded = Array(repeating: false, count: sources.count)
    }

    public func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !sources.isEmpty, !started else { return }
        started = true
        let thread = Thread { [self] in self.run() }
        thread.name = "gatehouse-jwks"
        thread.start()
    }

    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Issuers whose key set was never loaded (for `/readyz`).
    public var issuersNeverLoaded: [String] {
        condition.lock()
        defer { condition.unlock() }
        return zip(sources, loaded).filter { !$0.1 }.map { $0.0.issuer }
    }

    /// A token named a `kid` this issuer's keys lack: refetch soon, unless one such
    /// early fetch already ran within the last 30 s. Cheap; callable from event loops.
    public func unknownKeySeen(issuer: String) {
        condition.lock()
        defer { condition.unlock() }
        guard let index = sources.firstIndex(where: { $0.issuer == issuer }) else { return }
        let now = Date()
        if let last = lastEarlyFetch[index], now.timeIntervalSince(last) < Self.unknownKidCooldown { return }
        lastEarlyFetch[index] = now
        nextFetch[index] = now
        condition.broadcast()
    }

    private func run() {
        condition.lock()
        while !stopped {
            let now = Date()
            guard let due = nextFetch.indices.min(by: { nextFetch[$0] < nextFetch[$1] }) else { break }
            if nextFetch[due] > now {
                _ = condition.wait(until: nextFetch[due])
                continue
            }
            let source = sources[due]
            nextFetch[due] = now.addingTimeInterval(Double(source.refresh.components.seconds))
            condition.unlock()
            let ok = fetch(source)
            condition.lock()
            if ok {
                loaded[due] = true
            } else if !loaded[due] {
                // Never loaded: retry soon rather than after a whole refresh period.
                nextFetch[due] = min(nextFetch[due], Date().addingTimeInterval(5))
            }
        }
        condition.unlock()
    }

    private func fetch(_ source: Source) -> Bool {
        switch HTTPFetch.get(source.url) {
        case .failure(let failure):
            onFailure(source.issuer)
            logger.warning(
                "JWKS fetch failed; keeping the last good key set",
                metadata: ["issuer": "\(source.issuer)", "url": "\(source.url)", "error": "\(failure)"]
            )
            return false
        case .success(let body):
            switch source.install(body) {
            case .success(let count):
                logger.info("JWKS loaded", metadata: ["issuer": "\(source.issuer)", "keys": "\(count)"])
                return true
            case .failure(let error):
                onFailure(source.issuer)
                logger.warning(
                    "JWKS document refused; keeping the last good key set",
                    metadata: ["issuer": "\(source.issuer)", "url": "\(source.url)", "error": "\(error.message)"]
                )
                return false
            }
        }
    }
}

/// Why a fetched JWKS document could not be installed.
public struct JWKSInstallError: Error, Sendable {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }
}
