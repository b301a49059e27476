// sentencepiece's normalizer (src/normalizer.cc), byte for byte: optional precompiled character map
// (a Darts-clone double-array trie, e.g. nmt_nfkc), removal of extra spaces, the dummy prefix and the
// escaping of ' ' as U+2581 "▁". The "identity" rule used by Gemma/PaliGemma has an empty charsmap, so
// only the whitespace handling applies.

/// "▁" (U+2581), sentencepiece's `kSpaceSymbol`.
let spaceSymbol: [UInt8] = [0xE2, 0x96, 0x81]

/// Length of the UTF-8 sequence starting with `b`, as sentencepiece's `string_util::OneCharLen`
/// (a lookup on the high nibble; continuation bytes count as 1).
@inline(__always) func oneCharLen(_ b: UInt8) -> Int {
    switch b >> 4 {
    case 0xC, 0xD: return 2
    case 0xE: return 3
    case 0xF: return 4
    default: return 1
    }
}

/// Longest-match lookup over a fixed set of byte strings (sentencepiece's `PrefixMatcher`, used for
/// user-defined symbols). A byte trie; children in a dictionary per node.
struct PrefixMatcher: Sendable {
    private var children: [[UInt8: Int32]] = [[:]]
    private var terminal: [Bool] = [false]

    init(_ keys: [[UInt8]]) {
        for key in keys where !key.isEmpty {
            var node = 0
            for b in key {
                if let next = children[node][b] {
                    node = Int(next)
                } else {
                    children.append([:]); terminal.append(false)
                    children[node][b] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            terminal[node] = true
        }
    }

    var isEmpty: Bool { children[0].isEmpty }

    /// Length of the longest key that is a prefix of `s[from..<end]`, or nil.
    func longestMatch(_ s: [UInt8], from: Int, end: Int) -> Int? {
        var node = 0, i = from, best: Int? = nil
        while i < end, let next = children[node][s[i]] {
            node = Int(next); i += 1
            if terminal[node] { best = i - from }
        }
        return best
    }

    /// `PrefixMatcher::PrefixMatch`: the longest key, else one UTF-8 character (clipped to the input).
    func prefixMatch(_ s: [UInt8], from: Int, end: Int) -> (length: Int, found: Bool) {
        if let n = longestMatch(s, from: from, end: end) { return (n, true) }
        return (min(end - from, oneCharLen(s[from])), false)
    }
}

/// The precompiled character map: `<trie size: u32 LE><Darts double array><NUL-separated replacements>`
/// (normalizer.cc `DecodePrecompiledCharsMap`). Lookups are bounds-checked; a corrupt map gives "no match"
/// instead of reading out of range.
struct PrecompiledCharsmap: Sendable {
    private let units: [UInt32]
    private let replacements: [UInt8]

    init(_ blob: [UInt8], path: String) throws {
        guard blob.count >= 4 else {
            throw SentencePieceError.malformedModel(path: path, reason: "normalizer_spec.precompiled_charsmap is shorter than 4 bytes")
        }
        let trieSize = Int(UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24)
        guard trieSize < blob.count, trieSize <= blob.count - 4, trieSize % 4 == 0, trieSize > 0 else {
            throw SentencePieceError.malformedModel(
                path: path, reason: "normalizer_spec.precompiled_charsmap: trie size \(trieSize) does not fit the \(blob.count)-byte blob")
        }
        var u = [UInt32](repeating: 0, count: trieSize / 4)
        for i in 0..<u.count {
            let o = 4 + 4 * i
            u[i] = UInt32(blob[o]) | UInt32(blob[o + 1]) << 8 | UInt32(blob[o + 2]) << 16 | UInt32(blob[o + 3]) << 24
        }
        units = u
        replacements = Array(blob[(4 + trieSize)...])
    }

    /// Darts-clone `commonPrefixSearch`, keeping the longest match (normalizer.cc `NormalizePrefix`
    /// takes the longest of at most 32 results). Returns (matched length, replacement bytes).
    func longestMatch(_ s: [UInt8], from: Int, end: Int) -> (Int, ArraySlice<UInt8>)? {
        guard !units.isEmpty else { return nil }
        func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }
        var nodePos = offset(units[0])
        var best: (Int, Int)? = nil
        var found = 0
        var i = from
        while i < end {
            let label = s[i]
            nodePos ^= Int(label)
            guard nodePos < units.count else { break }
            let unit = units[nodePos]
            if unit & ((1 << 31) | 0xFF) != UInt32(label) { break }
            nodePos ^= offset(unit)
            i += 1
            if (unit >> 8) & 1 == 1 {
                guard nodePos < units.count else { break }
                if found < 32 { best = (i - from, Int(units[nodePos] & ((1 << 31) - 1))) }
                found += 1
            }
        }
        guard let (length, value) = best, value < replacements.count else { return nil }
        var stop = value
        while stop < replacements.count, replacements[stop] != 0 { stop += 1 }
        return (length, replacements[value..<stop])
    }
}

struct Normalizer: Sendable {
    let spec: NormalizerSpec
    let treatWhitespaceAsSuffix: Bool
    let charsmap: PrecompiledCharsmap?
    let userDefined: PrefixMatcher

    /// `Normalizer::NormalizePrefix`: user-defined symbols pass through untouched, then the longest
    /// charsmap rule, else one character unchanged. (Input is valid UTF-8: it comes from a Swift String.)
    private func normalizePrefix(_ s: [UInt8], _ pos: Int) -> (ArraySlice<UInt8>, Int) {
        if let n = userDefined.longestMatch(s, from: pos, end: s.count) { return (s[pos..<(pos + n)], n) }
        if let cm = charsmap, let (n, replacement) = cm.longestMatch(s, from: pos, end: s.count) {
            return (replacement, n)
        }
        let n = min(s.count - pos, oneCharLen(s[pos]))
        return (s[pos..<(pos + n)], n)
    }

    /// `Normalizer::Normalize` without the alignment bookkeeping.
    func normalize(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.count + s.count / 2 + 3)
        var pos = 0
        if spec.removeExtraWhitespaces {   // drop leading spaces (after normalisation)
            while pos < s.count {
                let (piece, n) = normalizePrefix(s, pos)
                if !piece.elementsEqual([0x20]) { break }
                pos += n
            }
        }
        if pos >= s.count { return out }   // empty, or only whitespace
        if !treatWhitespaceAsSuffix && spec.addDummyPrefix { appendSpace(&out) }
        var isPrevSpace = spec.removeExtraWhitespaces
        while pos < s.count {
            var (piece, n) = normalizePrefix(s, pos)
            if isPrevSpace { while piece.first == 0x20 { piece = piece.dropFirst() } }
            if !piece.isEmpty {
                for b in piece {
                    if spec.escapeWhitespaces && b == 0x20 { out += spaceSymbol } else { out.append(b) }
                }
                isPrevSpace = piece.last == 0x20
            }
            pos += n
            if !spec.removeExtraWhitespaces { isPrevSpace = false }
        }
        if spec.removeExtraWhitespaces {   // drop trailing spaces
            let space: [UInt8] = spec.escapeWhitespaces ? spaceSymbol : [0x20]
            while out.count >= space.count && out.suffix(space.count).elementsEqual(space) {
                out.removeLast(space.count)
            }
        }
        if treatWhitespaceAsSuffix && spec.addDummyPrefix { appendSpace(&out) }
        return out
    }

    private func appendSpace(_ out: inout [UInt8]) {
        if spec.escapeWhitespaces { out += spaceSymbol } else { out.append(0x20) }
    }
}
