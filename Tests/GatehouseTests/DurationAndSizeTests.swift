import Gatehouse
import Testing

@Suite struct ConfigDurationTests {
    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)),
        ("30s", .seconds(30)),
        ("5m", .seconds(300)),
        ("24h", .seconds(86_400)),
        ("90d", .seconds(90 * 86_400)),
        ("0s", .zero),
        ("007s", .seconds(7)),
    ])
    func parses(text: String, expected: Duration) throws {
        #expect(try ConfigDuration.parse(text) == expected)
    }

    /// Each refusal names the problem, so `gatehouse check` can print it after the key path.
    @Test(arguments: [
        ("", "empty"),
        ("-5s", "negative"),
        ("s", "whole number"),
        ("30", "no unit"),
        ("5w", "unknown duration unit \"w\""),
        ("5S", "unknown duration unit \"S\""),
        ("1.5s", "fractions"),
        ("30 s", "spaces"),
        ("1h30m", "unknown duration unit \"h30m\""),
        ("99999999999999999999s", "too large"),
        ("999999999999999999d", "too large"),
        ("+5s", "whole number"),
    ])
    func refuses(text: String, reason: String) {
        #expect {
            _ = try ConfigDuration.parse(text)
        } throws: { error in
            (error as? ValueFormatError)?.message.contains(reason) == true
        }
    }

    @Test(arguments: [
        (Duration.milliseconds(500), "500ms"),
        (.seconds(30), "30s"),
        (.seconds(90), "90s"),
        (.seconds(120), "2m"),
        (.seconds(7_200), "2h"),
        (.seconds(172_800), "2d"),
        (.milliseconds(1_500), "1500ms"),
        (.zero, "0s"),
    ])
    func formats(duration: Duration, text: String) throws {
        #expect(ConfigDuration.format(duration) == text)
        #expect(try ConfigDuration.parse(text) == duration)
    }

    @Test func formatsSubMillisecondsWithoutCrashing() {
        #expect(!ConfigDuration.format(.microseconds(1)).isEmpty)
    }
}

@Suite struct ConfigSizeTests {
    @Test(arguments: [
        ("512B", Int64(512)),
        ("64KiB", 65_536),
        ("10MiB", 10_485_760),
        ("1GiB", 1_073_741_824),
        ("0B", 0),
    ])
    func parses(text: String, expected: Int64) throws {
        #expect(try ConfigSize.parse(text) == expected)
    }

    @Test(arguments: [
        ("", "empty"),
        ("-1KiB", "negative"),
        ("KiB", "whole number"),
        ("1024", "no unit"),
        ("10MB", "ambiguous"),
        ("10KB", "use \"KiB\""),
        ("10kb", "use \"KiB\""),
        ("1G", "use \"GiB\""),
        ("10kib", "case-sensitive"),
        ("1TiB", "unknown size unit"),
        ("1.5MiB", "fractions"),
        ("64 KiB", "spaces"),
        ("9999999999GiB", "too large"),
    ])
    func refuses(text: String, reason: String) {
        #expect {
            _ = try ConfigSize.parse(text)
        } throws: { error in
            (error as? ValueFormatError)?.message.contains(reason) == true
        }
    }

    @Test(arguments: [
        (Int64(10_485_760), "10MiB"),
        (65_536, "64KiB"),
        (1_500, "1500B"),
        (1_073_741_824, "1GiB"),
        (0, "0B"),
    ])
    func formats(bytes: Int64, text: String) throws {
        #expect(ConfigSize.format(bytes) == text)
        #expect(try ConfigSize.parse(text) == bytes)
    }
}
