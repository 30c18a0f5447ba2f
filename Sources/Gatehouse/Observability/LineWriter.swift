import Foundation

/// Appends log lines to a file or stdout from a background thread, so the request path
/// only copies bytes into a buffer. Nothing is dropped: when the buffer reaches
/// `hardLimit` (the disk is slower than the traffic), producers wait for the writer —
/// bounded memory at the price of backpressure, never silent loss. Lines reach the file
/// within `flushInterval`.
///
/// `@unchecked Sendable`: all mutable state is guarded by `condition`.
public final class LineWriter: @unchecked Sendable {
    public enum Destination: Sendable, Equatable {
        case standardOutput
        case file(String)
    }

    /// Size-based rotation of a file destination: `name` → `name.1` → … → `name.keep`.
    public struct Rotation: Sendable, Equatable {
        public var maxBytes: Int64
        /// Rotated files kept; 0 keeps none (the file is started afresh).
        public var keep: Int

        public init(maxBytes: Int64, keep: Int) {
            self.maxBytes = maxBytes
            self.keep = keep
        }
    }

    static let flushInterval: TimeInterval = 0.2
    static let hardLimit = 8 * 1024 * 1024

    private let condition = NSCondition()
    private var buffer: [UInt8] = []
    private var closed = false
    private var writerDone = false
    private var fd: Int32
    private let destination: Destination
    private let rotation: Rotation?
    /// Size of the current file (writer thread only, plus `reopen` under the lock).
    private var fileBytes: Int64 = 0

    public init(_ destination: Destination, rotation: Rotation? = nil) throws {
        self.destination = destination
        self.rotation = rotation
        self.fd = try Self.open(destination)
        if case .file(let path) = destination {
            fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        }
        buffer.reserveCapacity(64 * 1024)
        let thread = Thread { [self] in self.runWriter() }
        thread.name = "gatehouse-log-writer"
        thread.start()
    }

    /// Queues one line (a newline is added).
    public func write(_ line: String) {
        condition.lock()
        while buffer.count >= Self.hardLimit && !closed { condition.wait() }
        buffer.append(contentsOf: line.utf8)
        buffer.append(UInt8(ascii: "\n"))
        condition.unlock()
    }

    /// Reopens a file destination (after logrotate moved it away).
    public func reopen() throws {
        guard case .file = destination else { return }
        let newFD = try Self.open(destination)
        condition.lock()
        let old = fd
        fd = newFD
        if case .file(let path) = destination {
            fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        }
        condition.unlock()
        Glibc.close(old)
    }

    /// Writes everything queued and stops the writer thread.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        while !writerDone { condition.wait() }
        condition.unlock()
    }

    private func runWriter() {
        var chunk: [UInt8] = []
        chunk.reserveCapacity(64 * 1024)
        condition.lock()
        while true {
            if buffer.isEmpty && !closed {
                _ = condition.wait(until: Date(timeIntervalSinceNow: Self.flushInterval))
            }
            swap(&chunk, &buffer)
            if let rotation, !chunk.isEmpty, fileBytes > 0, fileBytes + Int64(chunk.count) > rotation.maxBytes {
                rotate(rotation)  // chunks hold whole lines, so files split between lines
            }
            fileBytes += Int64(chunk.count)
            let target = fd
            let finishing = closed
            condition.broadcast()  // wake producers waiting on a full buffer
            condition.unlock()
            Self.writeAll(chunk, to: target)
            chunk.removeAll(keepingCapacity: true)
            condition.lock()
            if finishing && buffer.isEmpty { break }
        }
        if case .file = destination { Glibc.close(fd) }
        writerDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// Moves `name` to `name.1` (and each `name.i` to `name.i+1`, dropping the oldest),
    /// then starts a new `name`. Called with the lock held, on the writer thread.
    private func rotate(_ rotation: Rotation) {
        guard case .file(let path) = destination else { return }
        Glibc.close(fd)
        if rotation.keep > 0 {
            unlink("\(path).\(rotation.keep)")
            if rotation.keep > 1 {
                for index in stride(from: rotation.keep - 1, through: 1, by: -1) {
                    rename("\(path).\(index)", "\(path).\(index + 1)")
                }
            }
            rename(path, "\(path).1")
        } else {
            unlink(path)
        }
        fd = (try? Self.open(destination)) ?? Glibc.open("/dev/null", O_WRONLY)
        fileBytes = 0
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress?.advanced(by: offset), raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return  // nowhere left to report a failing log disk; keep serving
                }
                offset += n
            }
        }
    }

    private static func open(_ destination: Destination) throws -> Int32 {
        switch destination {
        case .standardOutput:
            return 1
        case .file(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw LogFileError(path: path, errno: errno) }
            return fd
        }
    }
}

public struct LogFileError: Error, CustomStringConvertible {
    public var path: String
    public var errno: Int32

    public var description: String { "cannot open log file \(path): \(String(cString: strerror(errno)))" }
}
