import CCurl
import Foundation
import NIOConcurrencyHelpers
import Synchronization

/// Wakes an event loop when a loop-driven `CurlEngine`'s epoll set has events.
///
/// SwiftNIO has no public way to add a foreign descriptor to an event loop's own epoll
/// set, so a loop that drives libcurl cannot simply wait on curl's sockets itself. This
/// thread waits on the engine's epoll descriptor instead (epoll sets nest) and hands the
/// loop one `pump` per readiness. The registration is one-shot: after each firing the
/// thread stays asleep until the loop has pumped and re-armed it, so a busy loop costs
/// one wake-up per pump, not one per socket event, and the thread does no curl work.
///
/// `@unchecked Sendable`: the descriptors are immutable after init and the kernel
/// serialises the epoll calls; `fired` is atomic; `started` is written by `start` and
/// read by `stop`, which the owning engine calls once each, in that order, and never
/// concurrently (the forwarder's init and shutdown).
final class EngineWaker: @unchecked Sendable {
    private let masterFD: Int32
    private let watchedFD: Int32
    private let stopFD: Int32
    private let finished = ConditionLock(value: false)
    private var started = false
    /// Set when the one-shot registration fired and has not been re-armed yet: a pump
    /// that was not started by a firing finds it still armed and skips the `epoll_ctl`.
    private let fired = Atomic<Bool>(false)

    init(watching epollFD: Int32) throws {
        masterFD = gh_epoll_create()
        stopFD = gh_eventfd_create()
        watchedFD = epollFD
        guard masterFD >= 0, stopFD >= 0,
            gh_epoll_ctl(masterFD, EPOLL_CTL_ADD, stopFD, GH_EPOLLIN, 1) == 0,
            gh_epoll_ctl(masterFD, EPOLL_CTL_ADD, epollFD, GH_EPOLLIN | GH_EPOLLONESHOT, 0) == 0
        else {
            if masterFD >= 0 { close(masterFD) }
            if stopFD >= 0 { close(stopFD) }
            throw ForwarderError.curlInitFailed
        }
    }

    /// Starts the waiting thread; `onReady` runs on it once per armed readiness.
    func start(name: String, onReady: @escaping @Sendable () -> Void) {
        started = true
        let thread = Thread { [self] in
            var masks = [UInt32](repeating: 0, count: 2)
            var data = [UInt64](repeating: 0, count: 2)
            waiting: while true {
                let count = gh_epoll_wait(masterFD, &masks, &data, 2, -1)
                for i in 0..<max(0, Int(count)) where data[i] == 1 { break waiting }
                if count > 0 {
                    fired.store(true, ordering: .sequentiallyConsistent)
                    onReady()
                }
            }
            finished.lock()
            finished.unlock(withValue: true)
        }
        thread.name = name
        thread.start()
    }

    /// Arms the next wake-up if the last one was used. If the engine's set is already
    /// ready, it fires at once.
    func rearm() {
        guard fired.exchange(false, ordering: .sequentiallyConsistent) else { return }
        _ = gh_epoll_ctl(masterFD, EPOLL_CTL_MOD, watchedFD, GH_EPOLLIN | GH_EPOLLONESHOT, 0)
    }

    /// Ends the thread and waits for it; closes the waker's own descriptors.
    func stop() {
        if started {
            gh_eventfd_signal(stopFD)
            finished.lock(whenValue: true)
            finished.unlock()
        }
        close(masterFD)
        close(stopFD)
    }
}
