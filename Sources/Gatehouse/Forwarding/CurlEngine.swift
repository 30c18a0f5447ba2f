import CCurl
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// One libcurl multi handle driven by `curl_multi_socket_action`, with epoll for socket
/// readiness. Two ways to drive it:
/// - on its own thread (`eventLoop` nil), woken by an eventfd for commands from the event
///   loops; results hop back to each transfer's loop in one `execute` per loop per pass;
/// - on an event loop (`eventLoop` set): commands, socket events and timers are all
///   handled on that loop, so a request and its upstream exchange never change threads
///   and results reach the client connection without a hop. An `EngineWaker` thread
///   watches the epoll set while the loop is busy elsewhere or asleep (BENCHMARKS.md,
///   "session 3").
///
/// Why socket_action and not `curl_multi_poll`: with many idle streams open (SSE),
/// `curl_multi_perform` visits every handle on every wake-up; socket_action touches only
/// the sockets that are ready, so the cost per request stays flat (DESIGN.md §3).
///
/// Threading: everything but `submit` runs on the engine's thread (its own, or its event
/// loop's). `@unchecked Sendable` is sound because the only state touched from other
/// threads is `commands`, under `commandLock`; the rest is confined to the engine's
/// thread by construction.
final class CurlEngine: @unchecked Sendable {
    enum Command {
        case add(UpstreamTransfer)
        case cancel(UpstreamTransfer)
        /// Re-evaluate which directions of the transfer should stay paused.
        case resume(UpstreamTransfer)
        case stop
    }

    private let commandLock = NIOLock()
    private var commands: [Command] = []
    /// Set by `stopAndWait`: later commands are refused (under `commandLock`).
    private var closed = false
    private let wakeFD: Int32
    private let epollFD: Int32
    private let multi: UnsafeMutableRawPointer
    private let name: String

    // Curl thread only.
    /// Per descriptor number: what is registered in epoll and whether libcurl wants it.
    private var sockets: [SocketRegistration] = []
    private var timerDeadline: UInt64?
    private var active: [ObjectIdentifier: UpstreamTransfer] = [:]
    private var dirty: [UpstreamTransfer] = []
    /// Loop-driven: the transfers whose events are being delivered right now.
    private var delivering: [UpstreamTransfer] = []
    private var easyPool: [UnsafeMutableRawPointer] = []
    private var stopping = false
    private let finished = ConditionLock(value: false)

    /// Reset easy handles kept for reuse: creating one costs more than a small request.
    /// A lane of long-lived streams keeps fewer, so that a burst of streams does not
    /// leave its handles (and their buffers) behind for the life of the process.
    private let easyPoolLimit: Int

    /// libcurl's receive buffer per transfer (CURLOPT_BUFFERSIZE); nil keeps its 16 KiB.
    private let receiveBufferBytes: Int?

    /// The event loop that drives this engine, or nil for a thread of its own.
    let homeLoop: (any EventLoop)?
    private let waker: EngineWaker?
    /// Loop-driven only: the deadline of the scheduled task that will pump for libcurl's
    /// timer, so a timer that did not move schedules nothing.
    private var timerTaskDeadline: UInt64?

    init(
        name: String, maxConnections: Int, receiveBufferBytes: Int? = nil, easyPoolLimit: Int = 1024,
        eventLoop: (any EventLoop)? = nil
    ) throws {
        CurlGlobal.initializeOnce()
        guard let multi = curl_multi_init() else { throw ForwarderError.curlInitFailed }
        let epollFD = gh_epoll_create()
        let wakeFD = gh_eventfd_create()
        var waker: EngineWaker?
        do {
            guard epollFD >= 0, wakeFD >= 0 else { throw ForwarderError.curlInitFailed }
            waker = eventLoop == nil ? nil : try EngineWaker(watching: epollFD)
        } catch {
            _ = curl_multi_cleanup(multi)
            if epollFD >= 0 { close(epollFD) }
            if wakeFD >= 0 { close(wakeFD) }
            throw error
        }
        self.multi = multi
        self.epollFD = epollFD
        self.wakeFD = wakeFD
        self.name = name
        self.receiveBufferBytes = receiveBufferBytes
        self.easyPoolLimit = easyPoolLimit
        self.homeLoop = eventLoop
        self.waker = waker
        _ = gh_epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, GH_EPOLLIN, UInt64(UInt32(bitPattern: wakeFD)))
        let userp = Unmanaged.passUnretained(self).toOpaque()
        _ = gh_multi_setopt_socket_callback(multi, curlSocketCallback)
        _ = gh_multi_setopt_ptr(multi, CURLMOPT_SOCKETDATA, userp)
        _ = gh_multi_setopt_timer_callback(multi, curlTimerCallback)
        _ = gh_multi_setopt_ptr(multi, CURLMOPT_TIMERDATA, userp)
        // MAXCONNECTS counts busy long-lived streams too: left low, libcurl closes and
        // reopens upstream connections constantly under SSE load (DESIGN.md §3).
        _ = gh_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, maxConnections)
    }

    func start() {
        if let homeLoop, let waker {
            waker.start(name: name) { [self] in homeLoop.execute { self.pump() } }
            return
        }
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.start()
    }

    /// Hands a command to the engine's thread. Callable from any thread.
    func submit(_ command: Command) {
        // nil: refused (stopped); otherwise whether this command starts a new batch.
        let startsBatch = commandLock.withLock { () -> Bool? in
            guard !closed else { return nil }
            let wasEmpty = commands.isEmpty
            commands.append(command)
            // The engine drains the whole queue per pass, so one signal per batch. The
            // eventfd is signalled under the lock: once `closed` is set nobody can write
            // to it, so the thread may close it (and its number be reused) safely.
            if wasEmpty && homeLoop == nil { gh_eventfd_signal(wakeFD) }
            return wasEmpty
        }
        guard let startsBatch else {
            Self.refuse(command)
            return
        }
        // On the loop itself `execute` only queues the pump for later in the same tick:
        // libcurl is never entered from inside a handler that is reacting to one of its
        // events. Commands that find the queue non-empty ride on the pump already queued.
        if let homeLoop, startsBatch { homeLoop.execute { self.pump() } }
    }

    static let shutdownFailure = UpstreamEvent.failed(.brokenMidStream("the gateway is shutting down"))

    /// The engine has stopped and will run no more transfers: a transfer handed to it now
    /// fails on its loop at once (libcurl never saw it), rather than leaving its request
    /// waiting for a connection close. Other commands need no answer.
    private static func refuse(_ command: Command) {
        guard case .add(let transfer) = command else { return }
        transfer.eventLoop.execute { transfer.deliver([shutdownFailure]) }
    }

    /// Aborts every transfer and stops the engine's thread (or its waker); blocks until done.
    /// A loop-driven engine must be stopped from another thread while its loop still runs
    /// (the gateway stops the forwarder before its event loop group).
    func stopAndWait() {
        commandLock.withLock { closed = true }
        if let homeLoop, let waker {
            // First on the loop, so that every pump still queued (by the waker's last
            // firing, or a timer) finds `stopping` set and touches neither libcurl nor
            // the waker's descriptors; then the waker thread.
            try? homeLoop.submit { self.stopOnLoop() }.wait()
            waker.stop()
            return
        }
        commandLock.withLock {
            commands.append(.stop)
            gh_eventfd_signal(wakeFD)
        }
        finished.lock(whenValue: true)
        finished.unlock()
    }

    /// Frees an engine that was never started (the forwarder failed to build a later one).
    func discardUnstarted() {
        waker?.stop()
        _ = curl_multi_cleanup(multi)
        close(epollFD)
        close(wakeFD)
    }

    private func stopOnLoop() {
        guard !stopping else { return }
        stopping = true
        shutdownTransfers()
    }

    // MARK: Driven by an event loop

    /// One pass on the home loop: commands, ready sockets, due timers, then the events
    /// straight to their handlers. Pumps queued behind one that already did the work
    /// find nothing to do and cost one `epoll_wait` with a zero timeout.
    private func pump() {
        guard !stopping else {
            refuseQueuedCommands()
            return
        }
        processCommands()
        pass(timeout: 0)
        // A transfer added in this pass asks for a 0 ms timer to start it: run those now
        // rather than on the next tick. Bounded, so a stuck timer cannot hold the loop.
        var rounds = 0
        while rounds < 4, runTimerIfDue() {
            collectFinished()
            rounds += 1
        }
        flushEvents()
        scheduleTimerPump()
        waker?.rearm()
    }

    /// After a stop: commands queued just before it (a pipelined request behind one the
    /// shutdown just failed) are refused like those that come later.
    private func refuseQueuedCommands() {
        let batch = commandLock.withLock { () -> [Command] in
            defer { commands.removeAll() }
            return commands
        }
        for command in batch { Self.refuse(command) }
    }

    /// Makes sure a pump runs when libcurl's timer comes due. Only an earlier deadline
    /// schedules a new task; a task whose deadline was superseded just pumps early.
    private func scheduleTimerPump() {
        guard let homeLoop, let deadline = timerDeadline else { return }
        if let pending = timerTaskDeadline, pending <= deadline { return }
        timerTaskDeadline = deadline
        homeLoop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(deadline)) { [self] in
            if timerTaskDeadline == deadline { timerTaskDeadline = nil }
            pump()
        }
    }

    // MARK: The loop

    private func run() {
        while !stopping {
            pass(timeout: pollTimeoutMilliseconds())
        }
        shutdownTransfers()
        finished.lock()
        finished.unlock(withValue: true)
    }

    private var eventMasks = [UInt32](repeating: 0, count: 256)
    private var eventData = [UInt64](repeating: 0, count: 256)

    /// Waits up to `timeout` ms for socket events and hands them to libcurl, runs a due
    /// timer, collects finished transfers and flushes their events.
    private func pass(timeout: Int32) {
        var running: Int32 = 0
        let count = gh_epoll_wait(epollFD, &eventMasks, &eventData, Int32(eventMasks.count), timeout)
        if count > 0 {
            for i in 0..<Int(count) {
                let fd = Int32(truncatingIfNeeded: eventData[i])
                if fd == wakeFD {
                    gh_eventfd_drain(wakeFD)
                    processCommands()
                    continue
                }
                if !curlWants(fd) {
                    // An idle pooled connection that became readable (the upstream
                    // closed it): stop watching it; libcurl checks it before reuse.
                    unregister(fd)
                    continue
                }
                let mask = eventMasks[i]
                var action: Int32 = 0
                if mask & GH_EPOLLIN != 0 { action |= CURL_CSELECT_IN }
                if mask & GH_EPOLLOUT != 0 { action |= CURL_CSELECT_OUT }
                if mask & (GH_EPOLLERR | GH_EPOLLHUP) != 0 { action |= CURL_CSELECT_ERR }
                _ = curl_multi_socket_action(multi, fd, action, &running)
            }
        }
        _ = runTimerIfDue()
        collectFinished()
        if homeLoop == nil { flushEvents() }
    }

    /// Runs libcurl's timer if it is due; false when it is not.
    private func runTimerIfDue() -> Bool {
        guard let deadline = timerDeadline, deadline <= Self.now() else { return false }
        var running: Int32 = 0
        timerDeadline = nil
        _ = curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running)
        return true
    }

    private func pollTimeoutMilliseconds() -> Int32 {
        guard let deadline = timerDeadline else { return -1 }
        let now = Self.now()
        if deadline <= now { return 0 }
        return Int32(clamping: (deadline - now + 999_999) / 1_000_000)
    }

    private func processCommands() {
        let batch = commandLock.withLock { () -> [Command] in
            let batch = commands
            commands.removeAll(keepingCapacity: true)
            return batch
        }
        for command in batch {
            switch command {
            case .add(let transfer): add(transfer)
            case .cancel(let transfer): remove(transfer)
            case .resume(let transfer): resume(transfer)
            case .stop: stopping = true
            }
        }
    }

    private func add(_ transfer: UpstreamTransfer) {
        guard let request = transfer.curlRequest else { return }  // added once only
        transfer.curlRequest = nil
        guard let easy = easyPool.popLast() ?? curl_easy_init() else {
            transfer.curlEnqueue(.failed(.unavailable("libcurl could not allocate a handle")))
            return
        }
        transfer.curlEasy = easy
        transfer.curlHeaderList = CurlRequestSetup.configure(easy, request: request, for: transfer)
        if let receiveBufferBytes { _ = gh_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, receiveBufferBytes) }
        if curl_multi_add_handle(multi, easy) != CURLM_OK {
            release(transfer)
            transfer.curlEnqueue(.failed(.unavailable("libcurl refused the transfer")))
            return
        }
        active[ObjectIdentifier(transfer)] = transfer
    }

    private func resume(_ transfer: UpstreamTransfer) {
        guard !transfer.curlFinished, let easy = transfer.curlEasy else { return }
        // Unpausing may call the read/write callbacks synchronously; no lock is held here.
        _ = curl_easy_pause(easy, transfer.curlDesiredPauseMask())
    }

    private func remove(_ transfer: UpstreamTransfer) {
        guard active.removeValue(forKey: ObjectIdentifier(transfer)) != nil, let easy = transfer.curlEasy else {
            return
        }
        _ = curl_multi_remove_handle(multi, easy)
        release(transfer)
    }

    private func release(_ transfer: UpstreamTransfer) {
        transfer.curlFinished = true
        if let list = transfer.curlHeaderList { curl_slist_free_all(list) }
        transfer.curlHeaderList = nil
        guard let easy = transfer.curlEasy else { return }
        transfer.curlEasy = nil
        if easyPool.count < easyPoolLimit {
            curl_easy_reset(easy)
            easyPool.append(easy)
        } else {
            curl_easy_cleanup(easy)
        }
    }

    private func collectFinished() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let code = gh_msg_result(message)
            var owner: UnsafeMutableRawPointer?
            _ = gh_easy_getinfo_ptr(easy, CURLINFO_PRIVATE, &owner)
            guard let owner else { continue }
            let transfer = Unmanaged<UpstreamTransfer>.fromOpaque(owner).takeUnretainedValue()
            // Keep the transfer alive until its last event is queued.
            guard let kept = active.removeValue(forKey: ObjectIdentifier(transfer)) else { continue }
            _ = curl_multi_remove_handle(multi, easy)
            release(kept)
            kept.curlEnqueue(Self.outcome(code: code, headDelivered: kept.curlHeadDelivered))
        }
    }

    static func outcome(code: CURLcode, headDelivered: Bool) -> UpstreamEvent {
        if code == CURLE_OK {
            return headDelivered ? .end : .failed(.unavailable("the upstream sent no response"))
        }
        let message = String(cString: curl_easy_strerror(code))
        if headDelivered { return .failed(.brokenMidStream(message)) }
        if code == CURLE_OPERATION_TIMEDOUT { return .failed(.timedOut(message)) }
        return .failed(.unavailable(message))
    }

    /// Hands every transfer's pending events to its event loop: one `execute` per event
    /// loop per pass, however many transfers it carries, so a busy pass costs each loop
    /// one task (and at most one wake-up) instead of one per transfer. A loop-driven
    /// engine is already on the transfers' loop and delivers directly.
    private func flushEvents() {
        guard !dirty.isEmpty else { return }
        if homeLoop != nil {
            // Swapped, not copied: both arrays keep their storage from pump to pump.
            swap(&dirty, &delivering)
            for transfer in delivering {
                let events = transfer.curlPending
                transfer.curlPending = []
                transfer.curlQueuedForFlush = false
                transfer.deliver(events)
            }
            delivering.removeAll(keepingCapacity: true)
            return
        }
        var batches: [(loop: any EventLoop, deliveries: [(UpstreamTransfer, [UpstreamEvent])])] = []
        for transfer in dirty {
            let events = transfer.curlPending
            transfer.curlPending = []
            transfer.curlQueuedForFlush = false
            if let index = batches.firstIndex(where: { $0.loop === transfer.eventLoop }) {
                batches[index].deliveries.append((transfer, events))
            } else {
                batches.append((transfer.eventLoop, [(transfer, events)]))
            }
        }
        dirty.removeAll(keepingCapacity: true)
        for batch in batches {
            let deliveries = batch.deliveries
            batch.loop.execute {
                for (transfer, events) in deliveries { transfer.deliver(events) }
            }
        }
    }

    private func shutdownTransfers() {
        for transfer in active.values {
            if let easy = transfer.curlEasy { _ = curl_multi_remove_handle(multi, easy) }
            release(transfer)
            transfer.curlEnqueue(Self.shutdownFailure)
        }
        active.removeAll()
        flushEvents()
        for easy in easyPool { curl_easy_cleanup(easy) }
        easyPool.removeAll()
        _ = curl_multi_cleanup(multi)
        close(epollFD)
        close(wakeFD)
    }

    // MARK: Called from libcurl callbacks (curl thread)

    func curlMarkDirty(_ transfer: UpstreamTransfer) {
        dirty.append(transfer)
    }

    /// Registration is lazy for the upstream connections libcurl opens through our
    /// open-socket callback: libcurl removes a pooled connection's socket from its
    /// interest set when a transfer ends and adds it back, with the same events, when the
    /// connection carries the next request. Applying that literally costs two
    /// `epoll_ctl` calls per request; keeping the registration and ignoring (then
    /// dropping) events nobody asked for costs none.
    ///
    /// Records never outlive their descriptor: `curlOpened` starts one and `curlClosed`
    /// (libcurl's close-socket callback) ends it. Sockets libcurl watches without having
    /// opened them through the callback (the threaded resolver's socketpair) get no
    /// laziness: they are registered and removed literally, so a reused descriptor
    /// number can never inherit a registration epoll no longer has.
    func curlWatch(socket: Int32, what: Int32) {
        guard socket >= 0 else { return }
        let index = Int(socket)
        growRecords(to: index)
        if what == CURL_POLL_REMOVE {
            sockets[index].wanted = false
            if !sockets[index].openedByCallback { unregister(socket) }
            return
        }
        var events: UInt32 = 0
        if what & CURL_POLL_IN != 0 { events |= GH_EPOLLIN }
        if what & CURL_POLL_OUT != 0 { events |= GH_EPOLLOUT }
        sockets[index].wanted = true
        let registered = sockets[index].registeredEvents
        if registered == events && sockets[index].openedByCallback { return }
        let data = UInt64(UInt32(bitPattern: socket))
        let (first, second) = registered == 0 ? (EPOLL_CTL_ADD, EPOLL_CTL_MOD) : (EPOLL_CTL_MOD, EPOLL_CTL_ADD)
        // The other op is a safety net should the bookkeeping ever disagree with epoll;
        // if both fail, nothing is recorded, so the next call tries again.
        if gh_epoll_ctl(epollFD, first, socket, events, data) == 0
            || gh_epoll_ctl(epollFD, second, socket, events, data) == 0
        {
            sockets[index].registeredEvents = events
        } else {
            sockets[index].registeredEvents = 0
        }
    }

    /// libcurl opened an upstream socket through our callback.
    func curlOpened(socket: Int32) {
        let index = Int(socket)
        growRecords(to: index)
        sockets[index] = SocketRegistration(openedByCallback: true)
    }

    /// libcurl is closing a socket (close-socket callback): the descriptor leaves epoll
    /// with the close, and its record goes with it.
    func curlClosed(socket: Int32) {
        let index = Int(socket)
        if index >= 0 && index < sockets.count { sockets[index] = SocketRegistration() }
    }

    /// Makes `sockets[index]` addressable (descriptor numbers are small and dense).
    private func growRecords(to index: Int) {
        if index >= sockets.count {
            sockets.append(contentsOf: repeatElement(SocketRegistration(), count: index + 1 - sockets.count))
        }
    }

    private func curlWants(_ socket: Int32) -> Bool {
        let index = Int(socket)
        return index < sockets.count && sockets[index].wanted
    }

    private func unregister(_ socket: Int32) {
        _ = gh_epoll_ctl(epollFD, EPOLL_CTL_DEL, socket, 0, 0)
        if Int(socket) < sockets.count { sockets[Int(socket)].registeredEvents = 0 }
    }

    func curlSetTimer(milliseconds: Int) {
        timerDeadline = milliseconds < 0 ? nil : Self.now() + UInt64(milliseconds) * 1_000_000
    }

    private static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}

/// What the engine has told epoll about one descriptor (0: not registered), and whether
/// libcurl currently wants events for it.
struct SocketRegistration {
    var registeredEvents: UInt32 = 0
    var wanted = false
    /// Opened (and to be closed) through our callbacks: eligible for lazy registration.
    var openedByCallback = false
}

public enum ForwarderError: Error, CustomStringConvertible {
    case curlInitFailed

    public var description: String { "libcurl could not be initialised" }
}

/// `curl_global_init` must run once, before any other thread uses libcurl.
enum CurlGlobal {
    private static let initialized: Bool = {
        curl_global_init(GH_CURL_GLOBAL_DEFAULT) == CURLE_OK
    }()

    static func initializeOnce() { _ = initialized }
}
