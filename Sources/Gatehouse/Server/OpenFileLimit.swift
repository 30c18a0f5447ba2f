#if canImport(Glibc)
    import Glibc
#endif

/// Every open stream costs the gateway two descriptors (client and upstream), so the
/// usual soft limit of 1,024 caps a gateway at about 500 streams. Like nginx's
/// `worker_rlimit_nofile`, the gateway raises its soft limit to the hard limit at start;
/// the hard limit itself is the operator's (systemd `LimitNOFILE=`, `ulimit -Hn`).
public enum OpenFileLimit {
    /// Raises the soft RLIMIT_NOFILE to the hard one; returns (before, after), or nil
    /// when the limits cannot be read.
    @discardableResult
    public static func raiseToHardLimit() -> (before: UInt64, after: UInt64)? {
        var limits = rlimit()
        guard getrlimit(resourceNoFile, &limits) == 0 else { return nil }
        let before = UInt64(limits.rlim_cur)
        guard limits.rlim_cur < limits.rlim_max else { return (before, before) }
        limits.rlim_cur = limits.rlim_max
        guard setrlimit(resourceNoFile, &limits) == 0 else { return (before, before) }
        return (before, UInt64(limits.rlim_max))
    }

    /// The current soft limit.
    public static var current: UInt64? {
        var limits = rlimit()
        guard getrlimit(resourceNoFile, &limits) == 0 else { return nil }
        return UInt64(limits.rlim_cur)
    }

    private static var resourceNoFile: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }
}
