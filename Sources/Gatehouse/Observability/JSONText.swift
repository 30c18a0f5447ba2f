/// Minimal JSON writing for log lines. Hand-written because log lines are produced on the
/// request path and `JSONEncoder` (reflection, intermediate dictionaries) costs several
/// microseconds per line; this appends straight into one string.
public struct JSONObjectWriter {
    private(set) var text = "{"
    private var first = true

    public init() {}

    public mutating func field(_ key: String, _ value: String?) {
        appendKey(key)
        if let value { JSONText.appendQuoted(value, to: &text) } else { text += "null" }
    }

    public mutating func field(_ key: String, _ value: Int?) {
        appendKey(key)
        if let value { text += String(value) } else { text += "null" }
    }

    public mutating func field(_ key: String, _ value: Double) {
        appendKey(key)
        text += value.isFinite ? String(format3(value)) : "null"
    }

    public mutating func field(_ key: String, _ values: [String]?) {
        appendKey(key)
        guard let values else {
            text += "null"
            return
        }
        text += "["
        for (index, value) in values.enumerated() {
            if index > 0 { text += "," }
            JSONText.appendQuoted(value, to: &text)
        }
        text += "]"
    }

    public mutating func finish() -> String {
        text += "}"
        return text
    }

    private mutating func appendKey(_ key: String) {
        if !first { text += "," }
        first = false
        JSONText.appendQuoted(key, to: &text)
        text += ":"
    }

    private func format3(_ value: Double) -> String {
        // Three decimals are enough for milliseconds and avoid Foundation's formatter.
        let scaled = (value * 1000).rounded()
        let whole = Int(scaled) / 1000
        let fraction = abs(Int(scaled) % 1000)
        let digits = String(fraction)
        return "\(whole).\(String(repeating: "0", count: 3 - digits.count))\(digits)"
    }
}

public enum JSONText {
    public static func appendQuoted(_ value: String, to out: inout String) {
        out += "\""
        var needsEscape = false
        for byte in value.utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            needsEscape = true
            break
        }
        if !needsEscape {
            out += value
            out += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20:
                let hex = String(s.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
