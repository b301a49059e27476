// sentencepiece's BPE encoder (src/bpe_model.cc, `Model::SampleEncode` without dropout):
// split the normalised text into characters (user-defined symbols as whole, frozen symbols),
// then repeatedly merge the adjacent pair whose concatenation is a piece with the highest score,
// ties going to the leftmost pair; finally re-split UNUSED pieces into the pair that formed them.

/// A candidate merge in the agenda (bpe_model.cc `SymbolPair`).
private struct SymbolPair {
    var left: Int
    var right: Int
    var score: Float
    var size: Int

    /// bpe_model.cc `SymbolPairComparator`: higher score first, then smaller `left`.
    @inline(__always) func outranks(_ o: SymbolPair) -> Bool {
        score > o.score || (score == o.score && left < o.left)
    }
}

/// A binary max-heap ordered by `SymbolPair.outranks` (the reference uses std::priority_queue).
private struct Agenda {
    private var heap: [SymbolPair] = []

    var isEmpty: Bool { heap.isEmpty }

    mutating func push(_ p: SymbolPair) {
        heap.append(p)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].outranks(heap[parent]) else { break }
            heap.swapAt(i, parent); i = parent
        }
    }

    mutating func pop() -> SymbolPair {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < heap.count && heap[l].outranks(heap[best]) { best = l }
                if r < heap.count && heap[r].outranks(heap[best]) { best = r }
                if best == i { break }
                heap.swapAt(i, best); i = best
            }
        }
        return top
    }
}

private struct Symbol {
    var start: Int       // byte range in the normalised text
    var length: Int      // 0 once merged into its left neighbour
    var prev: Int
    var next: Int
    var freeze: Bool     // user-defined symbols never merge
}

extension SentencePieceProcessor {
    /// Returns (piece bytes, id) pairs, as `EncodeResult` in the reference.
    func encodeBPE(_ text: [UInt8]) -> [(ArraySlice<UInt8>, Int)] {
        if text.isEmpty { return [] }
        var symbols: [Symbol] = []
        var pos = 0
        while pos < text.count {
            let (n, found) = userDefined.prefixMatch(text, from: pos, end: text.count)
            symbols.append(Symbol(start: pos, length: n, prev: symbols.count - 1,
                                  next: pos + n < text.count ? symbols.count + 1 : -1, freeze: found))
            pos += n
        }

        var agenda = Agenda()
        // Pieces formed from UNUSED ids, remembered for the final re-segmentation (`rev_merge`).
        var revMerge: [ArraySlice<UInt8>: (ArraySlice<UInt8>, ArraySlice<UInt8>)] = [:]

        func maybeAddPair(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0, !symbols[left].freeze, !symbols[right].freeze else { return }
            let l = symbols[left], r = symbols[right]
            // Adjacent live symbols are contiguous in `text`.
            let merged = text[l.start..<(r.start + r.length)]
            guard let id = pieces[merged] else { return }
            agenda.push(SymbolPair(left: left, right: right, score: scores[id], size: merged.count))
            if types[id] == .unused {
                revMerge[merged] = (text[l.start..<(l.start + l.length)], text[r.start..<(r.start + r.length)])
            }
        }

        for i in 1..<symbols.count { maybeAddPair(i - 1, i) }

        while !agenda.isEmpty {
            let top = agenda.pop()
            let l = symbols[top.left], r = symbols[top.right]
            // Stale entry: one side was merged away or changed since the pair was queued.
            if l.length == 0 || r.length == 0 || l.length + r.length != top.size { continue }
            symbols[top.left].length = l.length + r.length
            symbols[top.left].next = r.next
            if r.next >= 0 { symbols[r.next].prev = top.left }
            symbols[top.right].length = 0
            maybeAddPair(symbols[top.left].prev, top.left)
            maybeAddPair(top.left, symbols[top.left].next)
        }

        var out: [(ArraySlice<UInt8>, Int)] = []
        func resegment(_ w: ArraySlice<UInt8>) {
            let id = pieceToIdInternal(w)
            if types[id] == .unused, let (a, b) = revMerge[w] {
                resegment(a); resegment(b)
            } else {
                out.append((w, id))
            }
        }
        var index = 0
        while index != -1 {
            let s = symbols[index]
            resegment(text[s.start..<(s.start + s.length)])
            index = s.next
        }
        return out
    }
}
