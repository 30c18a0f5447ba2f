#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// File-system helpers for the loader: paths in a config are relative to its folder, and
/// the model holds them absolute so a later `chdir` or a reload from elsewhere cannot
/// change what they mean.
enum ConfigPaths {
    /// Configs are a few KiB; anything this big is the wrong file.
    static let maximumFileBytes = 4 << 20

    /// `path` made absolute against `base`, with `.` segments and repeated slashes
    /// removed. `..` is kept: resolving it by text would be wrong across symlinks.
    static func resolve(_ path: String, against base: String) -> String {
        let joined = path.hasPrefix("/") ? path : base + "/" + path
        let segments = joined.split(separator: "/").filter { $0 != "." }
        return "/" + segments.joined(separator: "/")
    }

    /// The folder holding `path` ("/" for a file at the root).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = path[..<slash]
        return folder.isEmpty ? "/" : String(folder)
    }

    static func currentDirectory() -> String {
        guard let pointer = getcwd(nil, 0) else { return "/" }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    /// Why the file at absolute `path` cannot be opened for reading, or nil if it can.
    /// Opened rather than `access()`ed: that is what the key loader will do, with this
    /// process's effective ids. Non-blocking, so that a FIFO cannot stall the check.
    static func unreadableReason(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return "cannot read \(path.configQuoted): \(lastError())" }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return "cannot read \(path.configQuoted): \(lastError())" }
        guard info.st_mode & mode_t(S_IFMT) == mode_t(S_IFREG) else {
            return "\(path.configQuoted) is not a regular file"
        }
        return nil
    }

    /// The process environment's value for `name`, if set.
    static func environmentValue(_ name: String) -> String? {
        guard let pointer = getenv(name) else { return nil }
        return String(cString: pointer)
    }

    /// The file's text, or a one-line reason it cannot be used. Files over `maximumBytes`
    /// are refused: whatever the caller expects is far smaller, so it is the wrong file.
    static func readText(_ path: String, maximumBytes: Int = maximumFileBytes) -> Result<String, ValueFormatError> {
        // Non-blocking so a FIFO is refused below instead of waiting for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(ValueFormatError("cannot open: \(lastError())")) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(ValueFormatError("cannot read: \(lastError())")) }
        guard info.st_mode & mode_t(S_IFMT) == mode_t(S_IFREG) else {
            return .failure(ValueFormatError("not a regular file"))
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ValueFormatError("cannot read: \(lastError())"))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= maximumBytes else {
                let what = maximumBytes == maximumFileBytes ? "the config file" : "the right file"
                return .failure(
                    ValueFormatError("larger than \(ConfigSize.format(Int64(maximumBytes))); is this \(what)?"))
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(ValueFormatError("not valid UTF-8 text"))
        }
        return .success(text)
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}
