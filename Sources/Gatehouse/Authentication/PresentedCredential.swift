/// What a request presented, found per SPEC §3's lookup order.
public enum PresentedCredential: Sendable, Equatable {
    case none
    case jwt(String)
    case apiKey(String)
    /// Two different credentials: refused 400 `ambiguous_credentials`.
    case ambiguous
    /// `Authorization: Bearer` with nothing after it: a credential that cannot verify.
    case emptyBearer

    /// `Authorization: Bearer <x>` first (an API key if `x` carries the key prefix, else a
    /// JWT), then the configured API-key header. Other `Authorization` schemes (Basic…)
    /// are not credentials Gatehouse verifies and are ignored here.
    public static func find(
        in headers: [(name: String, value: String)],
        apiKeyHeader: String,
        apiKeyPrefix: String
    ) -> PresentedCredential {
        let keyHeaderLength = apiKeyHeader.utf8.count
        let lowerKeyHeader = apiKeyHeader.lowercased()
        var found: PresentedCredential = .none
        for (name, value) in headers {
            let candidate: PresentedCredential
            let nameLength = name.utf8.count
            if nameLength == 13 && name.equalsASCIICaseInsensitive("authorization") {
                guard let token = bearerToken(value) else { continue }
                if token.isEmpty {
                    candidate = .emptyBearer
                } else if token.hasPrefix(apiKeyPrefix + "_") {
                    candidate = .apiKey(token)
                } else {
                    candidate = .jwt(token)
                }
            } else if nameLength == keyHeaderLength && name.equalsASCIICaseInsensitive(lowerKeyHeader) {
                let key = String(value.trimmingASCIIWhitespace())
                candidate = key.isEmpty ? .emptyBearer : .apiKey(key)
            } else {
                continue
            }
            switch (found, candidate) {
            case (.none, _):
                found = candidate
            case (let a, let b) where a == b:
                continue  // the same key in both places is one credential
            default:
                return .ambiguous
            }
        }
        return found
    }

    /// The token of `Bearer <token>` (scheme case-insensitive), nil for other schemes.
    /// Works on the UTF-8 bytes: every request with a token passes here.
    static func bearerToken(_ value: String) -> String? {
        let scheme = "bearer"
        let trimmed = value.trimmingASCIIWhitespace()
        guard trimmed.hasASCIICaseInsensitivePrefix(scheme) else { return nil }
        let bytes = trimmed.utf8
        let afterScheme = bytes.index(bytes.startIndex, offsetBy: scheme.utf8.count)
        if afterScheme == bytes.endIndex { return "" }
        guard bytes[afterScheme].isHTTPBlank else { return nil }
        return String(trimmed[afterScheme...].trimmingASCIIWhitespace())
    }
}
