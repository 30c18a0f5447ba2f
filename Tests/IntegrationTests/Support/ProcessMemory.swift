import Foundation

/// Memory figures for the test process itself, which hosts the gateway in-process; used to
/// check that streaming large bodies keeps memory bounded.
enum ProcessMemory {
    /// Current resident set size in bytes (second field of /proc/self/statm, in pages);
    /// 0 if it cannot be read.
    static func residentBytes() -> Int {
        guard let text = readProcFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
        return pages * pageSize
    }

    /// Peak resident set size in bytes (VmHWM in /proc/self/status); 0 if unavailable.
    static func peakResidentBytes() -> Int {
        guard let text = readProcFile("/proc/self/status") else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kilobytes = Int(fields[1]) {
                return kilobytes * 1024
            }
        }
        return 0
    }

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    // /proc files report a size of 0, so read until EOF rather than trusting the size.
    private static func readProcFile(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
