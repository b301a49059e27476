// The parts of sentencepiece's `ModelProto` (src/sentencepiece_model.proto) that encoding and decoding
// need, read with a small protobuf wire-format reader so the package has no swift-protobuf dependency.
// Field numbers and defaults are the .proto's; unknown fields are skipped as protobuf requires.

/// Everything this module can report. Every failure names the file (or "<memory>") it came from.
public enum SentencePieceError: Error, CustomStringConvertible, Equatable {
    case cannotRead(path: String, reason: String)
    case malformedModel(path: String, reason: String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .cannotRead(let path, let reason): return "cannot read SentencePiece model \(path): \(reason)"
        case .malformedModel(let path, let reason): return "malformed SentencePiece model \(path): \(reason)"
        case .unsupported(let what): return "unsupported SentencePiece model: \(what)"
        }
    }
}

/// `ModelProto.SentencePiece.Type`.
enum PieceType: Int, Sendable {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

struct ModelPiece: Sendable {
    var piece: [UInt8] = []          // UTF-8 bytes; never compared as a Swift String (see SentencePieceProcessor)
    var score: Float = 0
    var type: PieceType = .normal
}

/// `TrainerSpec`: only the fields that affect encoding/decoding (the rest are training options).
struct TrainerSpec: Sendable {
    enum ModelType: Int, Sendable { case unigram = 1, bpe = 2, word = 3, char = 4 }
    var modelTypeRaw: UInt64 = 1   // [default = UNIGRAM]
    /// nil for a value this reader does not know.
    var modelType: ModelType? { modelTypeRaw <= 4 ? ModelType(rawValue: Int(modelTypeRaw)) : nil }
    var treatWhitespaceAsSuffix = false
    var byteFallback = false
    var unkPiece: [UInt8] = Array("<unk>".utf8)
    var bosPiece: [UInt8] = Array("<s>".utf8)
    var eosPiece: [UInt8] = Array("</s>".utf8)
    var padPiece: [UInt8] = Array("<pad>".utf8)
    var unkSurface: [UInt8] = Array(" \u{2047} ".utf8)   // kDefaultUnknownSymbol
}

/// `NormalizerSpec`.
struct NormalizerSpec: Sendable {
    var name = ""
    var precompiledCharsmap: [UInt8] = []
    var addDummyPrefix = true
    var removeExtraWhitespaces = true
    var escapeWhitespaces = true
    var normalizationRuleTSV = ""
}

struct ModelProto: Sendable {
    var pieces: [ModelPiece] = []
    var trainerSpec = TrainerSpec()
    var normalizerSpec = NormalizerSpec()
}

/// A bounds-checked protobuf wire-format cursor over a byte range. Every read either stays inside
/// `bytes[start..<end]` or throws; nothing is trusted from the file.
struct WireReader {
    let bytes: [UInt8]
    var pos: Int
    let end: Int
    let path: String
    let context: String   // message name, for error messages

    init(_ bytes: [UInt8], start: Int, end: Int, path: String, context: String) {
        self.bytes = bytes; self.pos = start; self.end = end; self.path = path; self.context = context
    }

    var atEnd: Bool { pos >= end }

    func fail(_ reason: String) -> SentencePieceError {
        .malformedModel(path: path, reason: "\(context) at byte \(pos): \(reason)")
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < end else { throw fail("truncated varint") }
            let b = bytes[pos]; pos += 1
            if shift == 63 && b > 1 { throw fail("varint overflows 64 bits") }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw fail("varint longer than 10 bytes") }
        }
    }

    /// Returns (field number, wire type).
    mutating func tag() throws -> (Int, Int) {
        let t = try varint()
        let field = t >> 3
        guard field >= 1, field <= 0x1fff_ffff else { throw fail("invalid field number \(field)") }
        return (Int(field), Int(t & 7))
    }

    mutating func fixed32() throws -> UInt32 {
        guard end - pos >= 4 else { throw fail("truncated fixed32") }
        let v = UInt32(bytes[pos]) | UInt32(bytes[pos + 1]) << 8 | UInt32(bytes[pos + 2]) << 16 | UInt32(bytes[pos + 3]) << 24
        pos += 4
        return v
    }

    /// A length-delimited field: returns its byte range and moves past it.
    mutating func lengthDelimited() throws -> Range<Int> {
        let n = try varint()
        guard n <= UInt64(end - pos) else { throw fail("length \(n) runs past the end of the \(context)") }
        let r = pos..<(pos + Int(n))
        pos += Int(n)
        return r
    }

    mutating func bytesField() throws -> [UInt8] { Array(bytes[try lengthDelimited()]) }

    /// An int32/enum: protobuf sign-extends negative int32 values to 64 bits.
    mutating func int32() throws -> Int { Int(Int32(truncatingIfNeeded: try varint())) }

    mutating func bool() throws -> Bool { try varint() != 0 }

    mutating func skip(wireType: Int, field: Int) throws {
        switch wireType {
        case 0: _ = try varint()
        case 1:
            guard end - pos >= 8 else { throw fail("truncated fixed64 (field \(field))") }
            pos += 8
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw fail("unsupported wire type \(wireType) (field \(field))")
        }
    }

    mutating func expect(_ wireType: Int, _ want: Int, field: Int) throws {
        guard wireType == want else { throw fail("field \(field) has wire type \(wireType), expected \(want)") }
    }

    func sub(_ range: Range<Int>, _ context: String) -> WireReader {
        WireReader(bytes, start: range.lowerBound, end: range.upperBound, path: path, context: context)
    }
}

extension ModelProto {
    /// Parses a serialized `ModelProto`.
    init(parsing data: [UInt8], path: String) throws {
        var r = WireReader(data, start: 0, end: data.count, path: path, context: "ModelProto")
        while !r.atEnd {
            let (field, wt) = try r.tag()
            switch field {
            case 1:
                try r.expect(wt, 2, field: field)
                var p = r.sub(try r.lengthDelimited(), "ModelProto.pieces[\(pieces.count)]")
                pieces.append(try ModelPiece(&p))
            case 2:
                try r.expect(wt, 2, field: field)
                var p = r.sub(try r.lengthDelimited(), "ModelProto.trainer_spec")
                try trainerSpec.merge(&p)
            case 3:
                try r.expect(wt, 2, field: field)
                var p = r.sub(try r.lengthDelimited(), "ModelProto.normalizer_spec")
                try normalizerSpec.merge(&p)
            default:
                try r.skip(wireType: wt, field: field)   // self_test_data, denormalizer_spec, extensions
            }
        }
    }
}

extension ModelPiece {
    init(_ r: inout WireReader) throws {
        while !r.atEnd {
            let (field, wt) = try r.tag()
            switch field {
            case 1: try r.expect(wt, 2, field: field); piece = try r.bytesField()
            case 2: try r.expect(wt, 5, field: field); score = Float(bitPattern: try r.fixed32())
            case 3:
                try r.expect(wt, 0, field: field)
                let raw = try r.int32()
                guard let t = PieceType(rawValue: raw) else { throw r.fail("unknown piece type \(raw)") }
                type = t
            default: try r.skip(wireType: wt, field: field)
            }
        }
    }
}

extension TrainerSpec {
    mutating func merge(_ r: inout WireReader) throws {
        while !r.atEnd {
            let (field, wt) = try r.tag()
            switch field {
            case 3:
                try r.expect(wt, 0, field: field)
                modelTypeRaw = try r.varint()
            case 24: try r.expect(wt, 0, field: field); treatWhitespaceAsSuffix = try r.bool()
            case 35: try r.expect(wt, 0, field: field); byteFallback = try r.bool()
            case 44: try r.expect(wt, 2, field: field); unkSurface = try r.bytesField()
            case 45: try r.expect(wt, 2, field: field); unkPiece = try r.bytesField()
            case 46: try r.expect(wt, 2, field: field); bosPiece = try r.bytesField()
            case 47: try r.expect(wt, 2, field: field); eosPiece = try r.bytesField()
            case 48: try r.expect(wt, 2, field: field); padPiece = try r.bytesField()
            default: try r.skip(wireType: wt, field: field)   // training-only options
            }
        }
    }
}

extension NormalizerSpec {
    mutating func merge(_ r: inout WireReader) throws {
        while !r.atEnd {
            let (field, wt) = try r.tag()
            switch field {
            case 1: try r.expect(wt, 2, field: field); name = String(decoding: try r.bytesField(), as: UTF8.self)
            case 2: try r.expect(wt, 2, field: field); precompiledCharsmap = try r.bytesField()
            case 3: try r.expect(wt, 0, field: field); addDummyPrefix = try r.bool()
            case 4: try r.expect(wt, 0, field: field); removeExtraWhitespaces = try r.bool()
            case 5: try r.expect(wt, 0, field: field); escapeWhitespaces = try r.bool()
            case 6:
                try r.expect(wt, 2, field: field)
                normalizationRuleTSV = String(decoding: try r.bytesField(), as: UTF8.self)
            default: try r.skip(wireType: wt, field: field)
            }
        }
    }
}
