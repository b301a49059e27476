// A pure-Swift `sentencepiece.SentencePieceProcessor` for encoding and decoding (no sampling, no
// training). Mirrors src/sentencepiece_processor.cc and src/model_interface.cc of sentencepiece 0.2.x.
//
// Strings are handled as UTF-8 bytes throughout and pieces are looked up by bytes, never as Swift
// `String`s: Swift's String equality is Unicode canonical equivalence ("é" == "e\u{301}"), which would
// silently merge pieces that sentencepiece keeps apart.

import Foundation
import InputFiles

public final class SentencePieceProcessor: Sendable {
    let name: String
    let modelType: TrainerSpec.ModelType
    let byteFallback: Bool
    let normalizer: Normalizer
    let unkSurface: [UInt8]
    let pieceBytes: [[UInt8]]
    let scores: [Float]
    let types: [PieceType]
    /// NORMAL, USER_DEFINED and UNUSED pieces (model_interface.cc `pieces_`).
    let pieces: [ArraySlice<UInt8>: Int]
    /// CONTROL, UNKNOWN and BYTE pieces (`reserved_id_map_`).
    let reserved: [ArraySlice<UInt8>: Int]
    let userDefined: PrefixMatcher
    let unkIdInternal: Int
    /// id of `<0xNN>` for each byte, when byte fallback is on.
    let byteIds: [Int]
    let byteValue: [Int: UInt8]
    let maxPieceBytes: Int
    let unigramMinScore: Float
    let unigramMaxScore: Float
    let specialIds: (bos: Int, eos: Int, pad: Int, unk: Int)

    public convenience init(modelPath: String) throws {
        let data: [UInt8]
        do {
            data = try InputFile.readAll(modelPath, limit: 1 << 30)   // refuses FIFOs, devices, directories
        } catch let e as InputFileError {
            throw SentencePieceError.cannotRead(path: modelPath, reason: e.reason)
        }
        try self.init(modelData: data, name: modelPath)
    }

    public init(modelData: [UInt8], name: String = "<memory>") throws {
        self.name = name
        func malformed(_ reason: String) -> SentencePieceError { .malformedModel(path: name, reason: reason) }
        let proto = try ModelProto(parsing: modelData, path: name)
        let trainer = proto.trainerSpec
        switch trainer.modelType {
        case .bpe?: modelType = .bpe
        case .unigram?: modelType = .unigram
        default:
            throw SentencePieceError.unsupported("\(name): trainer_spec.model_type \(trainer.modelTypeRaw) (only BPE = 2 and UNIGRAM = 1 are implemented)")
        }
        guard !proto.pieces.isEmpty else { throw malformed("no pieces (ModelProto.pieces is empty)") }
        byteFallback = trainer.byteFallback
        unkSurface = trainer.unkSurface

        // model_interface.cc `InitializePieces`, with the same checks.
        var pieces: [ArraySlice<UInt8>: Int] = [:], reserved: [ArraySlice<UInt8>: Int] = [:]
        let normalCount = proto.pieces.count { $0.type == .normal || $0.type == .userDefined || $0.type == .unused }
        pieces.reserveCapacity(normalCount)   // 3x faster loading of a 257k vocabulary than growing
        reserved.reserveCapacity(proto.pieces.count - normalCount)
        var userDefinedKeys: [[UInt8]] = []
        var unk = -1
        var byteIds = [Int](repeating: -1, count: 256)
        var byteValue: [Int: UInt8] = [:]
        var maxLen = 0
        var minScore = Float.greatestFiniteMagnitude, maxScore = Float.leastNormalMagnitude   // FLT_MAX, FLT_MIN
        for (i, p) in proto.pieces.enumerated() {
            guard !p.piece.isEmpty else { throw malformed("piece \(i) is empty") }
            let isNormal = p.type == .normal || p.type == .userDefined || p.type == .unused
            let key = ArraySlice(p.piece)
            if isNormal {
                guard pieces[key] == nil else { throw malformed("piece \(i) \(String(decoding: p.piece, as: UTF8.self)) is already defined") }
                pieces[key] = i
            } else {
                guard reserved[key] == nil else { throw malformed("piece \(i) \(String(decoding: p.piece, as: UTF8.self)) is already defined") }
                reserved[key] = i
            }
            maxLen = max(maxLen, p.piece.count)
            switch p.type {
            case .userDefined: userDefinedKeys.append(p.piece)
            case .unknown:
                guard unk < 0 else { throw malformed("a second UNKNOWN piece at id \(i) (the first is \(unk))") }
                unk = i
            case .byte:
                guard trainer.byteFallback else { throw malformed("BYTE piece at id \(i) although trainer_spec.byte_fallback is false") }
                guard let b = Self.pieceToByte(p.piece) else { throw malformed("BYTE piece at id \(i) is not of the form <0xNN>") }
                byteIds[Int(b)] = i; byteValue[i] = b
            case .normal:
                minScore = min(minScore, p.score); maxScore = max(maxScore, p.score)
            default: break
            }
        }
        guard unk >= 0 else { throw malformed("no UNKNOWN piece (unk is not defined)") }
        if trainer.byteFallback, let missing = byteIds.firstIndex(of: -1) {
            throw malformed(String(format: "byte_fallback is true but the piece <0x%02X> is missing", missing))
        }
        // unigram_model.cc: scores of NORMAL pieces only; FLT_MAX/FLT_MIN when there are none become 0.
        unigramMinScore = minScore == .greatestFiniteMagnitude ? 0 : minScore
        unigramMaxScore = maxScore == .leastNormalMagnitude ? 0 : maxScore

        self.pieces = pieces; self.reserved = reserved
        self.pieceBytes = proto.pieces.map(\.piece)
        self.scores = proto.pieces.map(\.score)
        self.types = proto.pieces.map(\.type)
        self.unkIdInternal = unk
        self.byteIds = byteIds; self.byteValue = byteValue
        self.maxPieceBytes = maxLen
        let matcher = PrefixMatcher(userDefinedKeys)
        self.userDefined = matcher

        var spec = proto.normalizerSpec
        let charsmap: PrecompiledCharsmap?
        if !spec.precompiledCharsmap.isEmpty {
            charsmap = try PrecompiledCharsmap(spec.precompiledCharsmap, path: name)
        } else if !spec.normalizationRuleTSV.isEmpty {
            throw SentencePieceError.unsupported("\(name): normalizer_spec.normalization_rule_tsv (a custom rule table without a precompiled charsmap)")
        } else {
            charsmap = nil
        }
        spec.precompiledCharsmap = []
        normalizer = Normalizer(spec: spec, treatWhitespaceAsSuffix: trainer.treatWhitespaceAsSuffix,
                                charsmap: charsmap, userDefined: matcher)

        // sentencepiece_processor.cc `bos_id()` etc.: the id of the trainer_spec piece name, if it has the
        // right type, else -1.
        func special(_ piece: [UInt8], _ wanted: PieceType) -> Int {
            let id = reserved[ArraySlice(piece)] ?? pieces[ArraySlice(piece)] ?? unk
            return proto.pieces[id].type == wanted ? id : -1
        }
        specialIds = (special(trainer.bosPiece, .control), special(trainer.eosPiece, .control),
                      special(trainer.padPiece, .control), special(trainer.unkPiece, .unknown))
    }

    // MARK: vocabulary

    public var vocabSize: Int { pieceBytes.count }
    public var bosId: Int { specialIds.bos }
    public var eosId: Int { specialIds.eos }
    public var padId: Int { specialIds.pad }
    public var unkId: Int { specialIds.unk }

    /// The id of `piece` (compared as UTF-8 bytes), or nil when it is not in the vocabulary.
    /// (sentencepiece's `piece_to_id` returns the unk id instead of nil.)
    public func pieceToId(_ piece: String) -> Int? {
        let key = ArraySlice(Array(piece.utf8))
        return reserved[key] ?? pieces[key]
    }

    public func idToPiece(_ id: Int) -> String? {
        guard id >= 0, id < pieceBytes.count else { return nil }
        return String(decoding: pieceBytes[id], as: UTF8.self)
    }

    /// model_interface.h `PieceToId`: reserved pieces first, then normal ones, else unk.
    func pieceToIdInternal(_ w: ArraySlice<UInt8>) -> Int {
        reserved[w] ?? pieces[w] ?? unkIdInternal
    }

    /// "<0xNN>" (two upper-case hex digits, as `ByteToPiece` writes them) → NN, as `PieceToByte`.
    static func pieceToByte(_ p: [UInt8]) -> UInt8? {
        guard p.count == 6, p[0] == 0x3C, p[1] == 0x30, p[2] == 0x78, p[5] == 0x3E,
              let hi = hexDigit(p[3]), let lo = hexDigit(p[4]) else { return nil }
        return hi << 4 | lo
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}
