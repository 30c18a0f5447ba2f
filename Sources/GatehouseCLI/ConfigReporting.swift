import ArgumentParser
import Gatehouse

#if canImport(Glibc)
    import Glibc
#endif

/// Writes to stderr without buffering surprises (stdout may carry access-log lines).
func printError(_ text: String) {
    FileDescriptorOutput.standardError.write(text + "\n")
}

struct FileDescriptorOutput {
    static let standardError = FileDescriptorOutput(fd: 2)
    let fd: Int32

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes {
                Glibc.write(fd, $0.baseAddress?.advanced(by: offset), $0.count - offset)
            }
            if n <= 0 { return }
            offset += n
        }
    }
}

/// Loads a config for a command, printing every problem; nil means "exit 1".
func loadConfigReportingIssues(_ path: String) -> ConfigLoadResult? {
    do {
        let result = try ConfigLoader.load(path: path)
        for warning in result.warnings { printError(warning.description) }
        return result
    } catch {
        for issue in error.issues { printError(issue.description) }
        let count = error.errors.count
        printError("\(path): \(count) error\(count == 1 ? "" : "s"); the config was not loaded")
        return nil
    }
}

/// Exit codes of SPEC §1.
enum ExitStatus {
    static let userError = ExitCode(1)
    static let internalError = ExitCode(2)
}
