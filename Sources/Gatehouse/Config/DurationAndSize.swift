/// Config durations (SPEC §2): a whole number and one unit, `"500ms"`, `"30s"`, `"5m"`,
/// `"24h"`, `"90d"`. Deliberately strict (no fractions, spaces or compound `"1h30m"`): a
/// value that does not parse is refused with a hint rather than guessed at.
public enum ConfigDuration {
    private static let units: [(name: String, milliseconds: Int64)] = [
        ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1),
    ]

    public static func parse(_ text: String) throws(ValueFormatError) -> Duration {
        let (number, unit) = try NumberWithUnit.split(text, example: "30s")
        guard !unit.isEmpty else {
            throw ValueFormatError("\(text.configQuoted) has no unit; add one of ms, s, m, h, d (e.g. \"\(number)s\")")
        }
        guard let scale = units.first(where: { $0.name == unit })?.milliseconds else {
            throw ValueFormatError("unknown duration unit \(unit.configQuoted); use ms, s, m, h or d")
        }
        let (milliseconds, overflow) = number.multipliedReportingOverflow(by: scale)
        guard !overflow else { throw ValueFormatError("\(text.configQuoted) is too large") }
        return .milliseconds(milliseconds)
    }

    /// The shortest exact spelling in the units `parse` accepts (`"90s"` → `"90s"`,
    /// `.seconds(120)` → `"2m"`); sub-millisecond values fall back to Swift's own text.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let perMillisecond: Int64 = 1_000_000_000_000_000
        guard attoseconds % perMillisecond == 0 else { return "\(duration)" }
        let (wholeMs, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow else { return "\(duration)" }
        let milliseconds = wholeMs + attoseconds / perMillisecond
        if milliseconds == 0 { return "0s" }
        for unit in units where milliseconds % unit.milliseconds == 0 {
            return "\(milliseconds / unit.milliseconds)\(unit.name)"
        }
        return "\(milliseconds)ms"
    }
}

/// Config sizes (SPEC §2): an integer number of bytes, or a string with a binary unit,
/// `"512B"`, `"64KiB"`, `"10MiB"`, `"1GiB"`. Decimal units (`KB`, `MB`) are refused rather
/// than read as 1000 or 1024: the operator says exactly which one they mean.
public enum ConfigSize {
    private static let units: [(name: String, bytes: Int64)] = [
        ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1),
    ]

    public static func parse(_ text: String) throws(ValueFormatError) -> Int64 {
        let (number, unit) = try NumberWithUnit.split(text, example: "64KiB")
        guard !unit.isEmpty else {
            throw ValueFormatError(
                "\(text.configQuoted) has no unit; write the integer \(number) without quotes for bytes, "
                    + "or add B, KiB, MiB or GiB")
        }
        guard let scale = units.first(where: { $0.name == unit })?.bytes else {
            throw ValueFormatError(hint(forUnknownUnit: unit))
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: scale)
        guard !overflow else { throw ValueFormatError("\(text.configQuoted) is too large") }
        return bytes
    }

    /// The largest binary unit that divides exactly: 10485760 → `"10MiB"`, 1500 → `"1500B"`.
    public static func format(_ bytes: Int64) -> String {
        if bytes == 0 { return "0B" }
        for unit in units where bytes % unit.bytes == 0 {
            return "\(bytes / unit.bytes)\(unit.name)"
        }
        return "\(bytes)B"
    }

    private static func hint(forUnknownUnit unit: String) -> String {
        let lower = unit.lowercased()
        if let match = units.first(where: { $0.name.lowercased() == lower }) {
            return "unknown size unit \(unit.configQuoted); units are case-sensitive: write \"\(match.name)\""
        }
        // "K", "KB", "kb", "M", "MB", … : name the binary unit they most likely meant.
        if let first = lower.first, "kmg".contains(first), lower.dropFirst().isEmpty || lower.dropFirst() == "b" {
            let binary = first.uppercased() + "iB"
            return "size unit \(unit.configQuoted) is ambiguous (1000 or 1024?) and not accepted; "
                + "use \"\(binary)\" (1024-based)"
        }
        return "unknown size unit \(unit.configQuoted); use B, KiB, MiB or GiB"
    }
}

/// The shared `<digits><unit>` scanner behind `ConfigDuration` and `ConfigSize`.
enum NumberWithUnit {
    static func split(_ text: String, example: String) throws(ValueFormatError) -> (Int64, String) {
        guard !text.isEmpty else { throw ValueFormatError("is empty; write a value like \"\(example)\"") }
        if text.hasPrefix("-") { throw ValueFormatError("\(text.configQuoted) must not be negative") }
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else {
            throw ValueFormatError("\(text.configQuoted) must start with a whole number, like \"\(example)\"")
        }
        let unit = text[digits.endIndex...]
        if unit.hasPrefix(".") || unit.hasPrefix(",") {
            throw ValueFormatError(
                "\(text.configQuoted): fractions are not supported; use a smaller unit (\"1500ms\", not \"1.5s\")")
        }
        if unit.contains(where: { $0.isWhitespace }) {
            throw ValueFormatError("\(text.configQuoted) must not contain spaces (write \"\(example)\")")
        }
        guard let number = Int64(digits) else { throw ValueFormatError("\(text.configQuoted) is too large") }
        return (number, String(unit))
    }
}
