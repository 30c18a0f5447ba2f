import Synchronization

/// Process-wide high-water marks of the bytes any one transfer held queued, in each
/// direction. They show that a body's memory is bounded whatever its size — measured
/// where the bytes are held, which a whole-process RSS figure cannot isolate.
public enum ForwardingStatistics {
    private static let responsePeak = Atomic<Int>(0)
    private static let requestPeak = Atomic<Int>(0)

    /// Largest number of response bytes one transfer had handed to the event loop and not
    /// yet seen written to the client.
    public static var peakQueuedResponseBytes: Int { responsePeak.load(ordering: .relaxed) }

    /// Largest number of request-body bytes one transfer had queued toward libcurl.
    public static var peakQueuedRequestBytes: Int { requestPeak.load(ordering: .relaxed) }

    static func noteResponseQueue(_ bytes: Int) { raise(responsePeak, to: bytes) }

    static func noteRequestQueue(_ bytes: Int) { raise(requestPeak, to: bytes) }

    /// Almost always a single relaxed load: the compare-exchange runs only on a new peak.
    private static func raise(_ peak: borrowing Atomic<Int>, to value: Int) {
        var current = peak.load(ordering: .relaxed)
        while value > current {
            let (exchanged, original) = peak.compareExchange(expected: current, desired: value, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
