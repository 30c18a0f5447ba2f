import Testing

@testable import Gatehouse

/// Loads config text as if it were `/etc/gatehouse/proxy.conf`.
func load(_ text: String) throws(ConfigErrors) -> ConfigLoadResult {
    try ConfigLoader.load(text: text, sourcePath: "proxy.conf", baseDirectory: "/etc/gatehouse")
}

/// The issues of a config expected not to load (none, and a recorded issue, if it loads).
func issues(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ConfigIssue] {
    do {
        _ = try load(text)
        Issue.record("config loaded, expected errors", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.issues
    }
}
