/// "did you mean `listen`?" hints for unknown keys and values.
enum DidYouMean {
    /// The closest candidates, compared case-insensitively with `-` read as `_`: the best
    /// one within edit distance 2 or sharing a prefix (at least 3 characters) with the
    /// word; failing that, up to two whose `_`-separated words include all of the word's
    /// (`upstream_timeout` → `upstream_connect_timeout`, `upstream_response_timeout`).
    static func suggestions(for word: String, among candidates: [String]) -> [String] {
        let target = normalized(word)
        var best: (candidate: String, score: Int)?
        for candidate in candidates {
            let other = normalized(candidate)
            let distance = editDistance(target, other)
            let score: Int
            if distance <= 2 && distance < target.count {
                score = distance
            } else if (other.starts(with: target) && target.count >= 3)
                || (target.starts(with: other) && other.count >= 3)
            {
                score = 100 + distance
            } else {
                continue
            }
            if best.map({ score < $0.score }) ?? true { best = (candidate, score) }
        }
        if let best { return [best.candidate] }

        let words = Set(target.split(separator: "_").map(String.init))
        guard words.count >= 2 else { return [] }
        let covering = candidates.filter {
            words.isSubset(of: Set(normalized($0).split(separator: "_").map(String.init)))
        }
        return covering.count <= 2 ? covering : []
    }

    static func suggestion(for word: String, among candidates: [String]) -> String? {
        suggestions(for: word, among: candidates).first
    }

    /// `"; did you mean `x`?"` (or "`x` or `y`"), or "" when nothing is close.
    static func hint(for word: String, among candidates: [String]) -> String {
        let found = suggestions(for: word, among: candidates)
        guard !found.isEmpty else { return "" }
        return "; did you mean " + found.map { "`\($0)`" }.joined(separator: " or ") + "?"
    }

    private static func normalized(_ word: String) -> String {
        String(word.lowercased().map { $0 == "-" ? "_" : $0 })
    }

    /// Levenshtein distance, two rows.
    private static func editDistance(_ left: String, _ right: String) -> Int {
        let a = Array(left)
        let b = Array(right)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
