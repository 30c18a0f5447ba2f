import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Which shared object serves `malloc` in this process, for the start-up log.
///
/// The `gatehouse` executable links mimalloc (Package.swift), which then serves every
/// allocation in the process: Swift's, NIO's, libcurl's. glibc's allocator slowed down
/// as the verified-token cache filled: after 70,000 distinct tokens its share of the
/// CPU samples per request doubled (8.5 % → 17.9 %) and stayed there, while mimalloc's
/// stayed near 4 % (BENCHMARKS.md, session 4). Saying which one is in force lets an
/// operator see when a build or a container lost it.
public enum MemoryAllocator {
    /// The file name of the library whose `malloc` the dynamic linker resolves first,
    /// or nil when it cannot tell.
    public static func provider() -> String? {
        #if os(Linux)
            // A nil handle is RTLD_DEFAULT: the global lookup order every library sees. The
            // address is only compared with the mapped ranges, never called or dereferenced.
            // (glibc's dladdr would name the file directly, but Swift's Glibc module does not
            // export it: it needs _GNU_SOURCE.)
            // Read to the end: /proc files report size 0, and String(contentsOfFile:) stops
            // after the first page.
            guard let symbol = dlsym(nil, "malloc"),
                let handle = FileHandle(forReadingAtPath: "/proc/self/maps")
            else { return nil }
            defer { try? handle.close() }
            guard let data = try? handle.readToEnd() else { return nil }
            return mappedFile(containing: UInt(bitPattern: symbol), maps: String(decoding: data, as: UTF8.self))
        #else
            return nil
        #endif
    }

    /// The file name of the `/proc/<pid>/maps` line whose range holds `address`.
    static func mappedFile(containing address: UInt, maps: String) -> String? {
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, let dash = fields[0].firstIndex(of: "-"),
                let start = UInt(fields[0][..<dash], radix: 16),
                let end = UInt(fields[0][fields[0].index(after: dash)...], radix: 16),
                start <= address, address < end
            else { continue }
            let path = fields[5...].joined(separator: " ")
            return path.split(separator: "/").last.map(String.init) ?? path
        }
        return nil
    }
}
