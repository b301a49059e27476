// Encode and decode as sentencepiece_processor.cc does (`Encode` → `PopulateSentencePieceText`,
// `Decode`), with the default options of the Python package: no BOS/EOS, no sampling.

extension SentencePieceProcessor {
    /// Token ids of `text` (sentencepiece `encode(text)`).
    public func encode(_ text: String) -> [Int] { encodeRaw(text).map(\.id) }

    /// Pieces of `text` (sentencepiece `encode(text, out_type=str)`): normalised surface forms with
    /// "▁" for spaces, "<0xNN>" for byte-fallback pieces, and the raw text of unknown runs.
    public func encodeAsPieces(_ text: String) -> [String] {
        encodeRaw(text).map { String(decoding: $0.piece, as: UTF8.self) }
    }

    func encodeRaw(_ text: String) -> [(piece: [UInt8], id: Int)] {
        let normalized = normalizer.normalize(Array(text.utf8))
        let result = modelType == .bpe ? encodeBPE(normalized) : encodeUnigram(normalized)
        var out: [(piece: [UInt8], id: Int)] = []
        out.reserveCapacity(result.count)
        var prevIsUnk = false
        for (w, id) in result {
            let isUnk = types[id] == .unknown
            if types[id] == .control {
                out.append((Array(w), id))
            } else if isUnk && byteFallback {
                // An unknown piece becomes one <0xNN> piece per UTF-8 byte.
                for b in w { out.append((pieceBytes[byteIds[Int(b)]], byteIds[Int(b)])) }
            } else if isUnk && prevIsUnk {
                // "Merges continuous run of unknown pieces so that decoder can copy or generate unknown
                // tokens easily."
                out[out.count - 1].piece += w
            } else {
                out.append((Array(w), id))
            }
            prevIsUnk = isUnk
        }
        return out
    }

    /// Text of `ids` (sentencepiece `decode(ids)`). Control pieces decode to nothing, the unknown piece
    /// to `trainer_spec.unk_surface` (" ⁇ "), runs of byte pieces to their UTF-8 text with U+FFFD for each
    /// byte that does not start a valid sequence, "▁" to " ". Ids outside the vocabulary are skipped
    /// (the Python package raises IndexError for them).
    public func decode(_ ids: [Int]) -> String {
        var out: [UInt8] = []
        var bytes: [UInt8] = []
        var isBosWs = true   // still at the start of the text (for add_dummy_prefix)
        for rawId in ids where rawId >= 0 && rawId < pieceBytes.count {
            let piece = pieceBytes[rawId]
            let id = pieceToIdInternal(piece[...])   // as the reference: ids → pieces → ids
            if types[id] == .byte, let b = byteValue[id] {
                bytes.append(b)
                // A byte run always decodes to something (a character or U+FFFD), so the text no longer
                // starts here: a following "▁" is a real space (checked against the package's output).
                isBosWs = false
                continue
            }
            flushBytes(&bytes, into: &out)
            let (surface, consumedBosWs) = decodePiece(piece[...], id: id, isBosWs: isBosWs)
            out += surface
            if consumedBosWs || !surface.isEmpty { isBosWs = false }
        }
        flushBytes(&bytes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `DecodeSentencePiece` in sentencepiece_processor.cc.
    private func decodePiece(_ piece: ArraySlice<UInt8>, id: Int, isBosWs: Bool) -> ([UInt8], Bool) {
        switch types[id] {
        case .control: return ([], false)
        case .unknown: return (pieceBytes[id][...] == piece ? unkSurface : Array(piece), false)
        default: break
        }
        var p = piece
        var hasBosWs = false
        let spec = normalizer.spec
        if isBosWs && (spec.addDummyPrefix || spec.removeExtraWhitespaces) {
            if p.starts(with: spaceSymbol) { p = p.dropFirst(3); hasBosWs = true }
            // "if we are removing extra whitespace, we remove all leading whitespace"
            if spec.removeExtraWhitespaces { hasBosWs = false }
        }
        var out: [UInt8] = []
        out.reserveCapacity(p.count)
        var i = p.startIndex
        while i < p.endIndex {
            if p.endIndex - i >= 3 && p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81 {
                out.append(0x20); i += 3
            } else {
                out.append(p[i]); i += 1
            }
        }
        return (out, hasBosWs)
    }

    /// `ProcessBytePieces`: one character per valid UTF-8 sequence (string_util::DecodeUTF8 rules: no
    /// overlong forms, no surrogates, nothing above U+10FFFF), U+FFFD for every other byte.
    private func flushBytes(_ bytes: inout [UInt8], into out: inout [UInt8]) {
        var i = 0
        while i < bytes.count {
            let n = validUTF8Length(bytes, i)
            if n == 0 {
                out += [0xEF, 0xBF, 0xBD]; i += 1
            } else {
                out += bytes[i..<(i + n)]; i += n
            }
        }
        bytes.removeAll(keepingCapacity: true)
    }
}

/// Length of the valid UTF-8 sequence at `s[i]`, or 0 when it is not one (sentencepiece's DecodeUTF8).
func validUTF8Length(_ s: [UInt8], _ i: Int) -> Int {
    let len = s.count - i
    let b0 = UInt32(s[i])
    @inline(__always) func trail(_ k: Int) -> Bool { s[i + k] & 0xC0 == 0x80 }
    func validCodepoint(_ c: UInt32) -> Bool { c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF) }
    if b0 < 0x80 { return 1 }
    if len >= 2 && b0 & 0xE0 == 0xC0 {
        let cp = (b0 & 0x1F) << 6 | UInt32(s[i + 1] & 0x3F)
        return trail(1) && cp >= 0x80 && validCodepoint(cp) ? 2 : 0
    }
    if len >= 3 && b0 & 0xF0 == 0xE0 {
        let cp = (b0 & 0x0F) << 12 | UInt32(s[i + 1] & 0x3F) << 6 | UInt32(s[i + 2] & 0x3F)
        return trail(1) && trail(2) && cp >= 0x800 && validCodepoint(cp) ? 3 : 0
    }
    if len >= 4 && b0 & 0xF8 == 0xF0 {
        let cp = (b0 & 0x07) << 18 | UInt32(s[i + 1] & 0x3F) << 12 | UInt32(s[i + 2] & 0x3F) << 6 | UInt32(s[i + 3] & 0x3F)
        return trail(1) && trail(2) && trail(3) && cp >= 0x10000 && validCodepoint(cp) ? 4 : 0
    }
    return 0
}
