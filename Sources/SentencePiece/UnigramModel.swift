// sentencepiece's unigram encoder: the Viterbi search of src/unigram_model.cc `Model::EncodeOptimized`
// (the default encoder), with its float/double arithmetic and its tie-breaking (a later candidate must be
// strictly better, candidates are visited by start position, then by length).

/// unigram_model.h `kUnkPenalty`.
private let unkPenalty: Float = 10.0

extension SentencePieceProcessor {
    func encodeUnigram(_ text: [UInt8]) -> [(ArraySlice<UInt8>, Int)] {
        if text.isEmpty { return [] }
        let size = text.count
        let unkScore = unigramMinScore - unkPenalty
        // best_path_ends_at[i]: best path over text[0..<i]; starts_at == -1 means "not reached yet".
        var bestScore = [Float](repeating: 0, count: size + 1)
        var startsAt = [Int](repeating: -1, count: size + 1)
        var bestId = [Int](repeating: -1, count: size + 1)

        var start = 0
        while start < size {
            let scoreTillHere = bestScore[start]
            var hasSingleNode = false
            let mblen = min(oneCharLen(text[start]), size - start)
            // Every piece that is a prefix of text[start...]: the reference walks its Darts trie byte by byte;
            // looking up each prefix length up to the longest piece finds the same set.
            let maxEnd = min(size, start + maxPieceBytes)
            var end = start + 1
            while end <= maxEnd {
                defer { end += 1 }
                guard let id = pieces[text[start..<end]], types[id] != .unused else { continue }
                let length = end - start
                if types[id] == .userDefined {
                    // "User defined symbol receives extra bonus to always be selected":
                    // `length * max_score_ - 0.1` is evaluated in double in the reference.
                    let score = Double(Float(length) * unigramMaxScore) - 0.1
                    let candidate = score + Double(scoreTillHere)
                    if startsAt[end] == -1 || candidate > Double(bestScore[end]) {
                        bestScore[end] = Float(candidate); startsAt[end] = start; bestId[end] = id
                    }
                } else {
                    let candidate = scores[id] + scoreTillHere
                    if startsAt[end] == -1 || candidate > bestScore[end] {
                        bestScore[end] = candidate; startsAt[end] = start; bestId[end] = id
                    }
                }
                if length == mblen { hasSingleNode = true }
            }
            if !hasSingleNode {
                let end = start + mblen
                let candidate = unkScore + scoreTillHere
                if startsAt[end] == -1 || candidate > bestScore[end] {
                    bestScore[end] = candidate; startsAt[end] = start; bestId[end] = unkIdInternal
                }
            }
            start += mblen
        }

        var out: [(ArraySlice<UInt8>, Int)] = []
        var end = size
        while end > 0 {
            let s = startsAt[end]
            out.append((text[s..<end], bestId[end]))
            end = s
        }
        out.reverse()
        return out
    }
}
