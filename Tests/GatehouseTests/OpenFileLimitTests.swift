import Testing

@testable import Gatehouse

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Open-file limit") struct OpenFileLimitTests {
    @Test("the soft limit is raised to the hard limit")
    func raisesSoftLimit() throws {
        var original = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        try #require(getrlimit(resource, &original) == 0)
        defer { _ = setrlimit(resource, &original) }
        // Lower the soft limit (always allowed), then let the gateway raise it again.
        var lowered = original
        lowered.rlim_cur = min(original.rlim_max, 512)
        try #require(setrlimit(resource, &lowered) == 0)
        let result = try #require(OpenFileLimit.raiseToHardLimit())
        #expect(result.before == UInt64(lowered.rlim_cur))
        #expect(result.after == UInt64(original.rlim_max))
        #expect(OpenFileLimit.current == UInt64(original.rlim_max))
    }
}
