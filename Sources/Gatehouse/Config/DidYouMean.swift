/// "did you mean `listen`?" hints for unknown keys and values.
enum DidYouMean {
    /// The closest candidate: within edit distance 2, or one a prefix of the other (at
    /// least 3 characters), compared case-insensitively with `-` read as `_`.
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        let target = normalized(word)
        var best: (candidate: String, score: Int)?
        for candidate in candidates {
            let other = normalized(candidate)
            let distance = editDistance(target, other)
            let score: Int
            if distance <= 2 && distance < target.count {
                score = distance
            } else if (other.starts(with: target) && target.count >= 3) || (target.starts(with: other) && other.count >= 3) {
                score = 100 + distance
            } else {
                continue
            }
            if best.map({ score < $0.score }) ?? true { best = (candidate, score) }
        }
        return best?.candidate
    }

    /// `"; did you mean `x`?"`, or "" when nothing is close.
    static func hint(for word: String, among candidates: [String]) -> String {
        suggestion(for: word, among: candidates).map { "; did you mean `\($0)`?" } ?? ""
    }

    private static func normalized(_ word: String) -> [Character] {
        Array(word.lowercased().map { $0 == "-" ? "_" : $0 })
    }

    /// Levenshtein distance, two rows.
    private static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
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
