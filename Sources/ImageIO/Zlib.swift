// zlib (RFC 1950) / DEFLATE (RFC 1951) in plain Swift, for PNG.
//
// Inflate follows Mark Adler's `puff.c` (the reference decoder shipped with zlib): canonical Huffman
// codes decoded from per-length counts, every read bounds-checked. Deflate emits one fixed-Huffman
// block with greedy LZ77 matching (hash of 3 bytes, one candidate): simple, valid, and smaller than
// stored blocks for typical images; compression ratio is not a goal here.

/// Malformed or truncated zlib data. PNG wraps it into `ImageIOError` with the file name.
public enum ZlibError: Error, CustomStringConvertible, Equatable {
    case truncated(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case let .truncated(what): return "zlib stream truncated: \(what)"
        case let .corrupt(what): return "corrupt zlib stream: \(what)"
        }
    }
}

public enum Zlib {
    // MARK: checksums

    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 (ISO-HDLC, as PNG and gzip use). `crc` continues a previous value.
    public static func crc32<C: Collection>(_ data: C, crc: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        var c = ~crc
        for b in data { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return ~c
    }

    /// Adler-32 (the zlib trailer checksum).
    public static func adler32<C: Collection>(_ data: C) -> UInt32 where C.Element == UInt8 {
        var a: UInt32 = 1, b: UInt32 = 0
        var n = 0
        for x in data {
            a &+= UInt32(x); b &+= a; n += 1
            if n == 5552 { a %= 65521; b %= 65521; n = 0 }   // 5552: zlib's NMAX, no overflow before it
        }
        return ((b % 65521) << 16) | (a % 65521)
    }

    // MARK: inflate

    /// Decompresses a zlib stream (2-byte header, DEFLATE blocks, Adler-32 trailer, all checked).
    public static func inflate(_ data: [UInt8]) throws -> [UInt8] { try inflate(data, maxOutput: Int.max) }

    /// As `inflate(_:)`, but throws as soon as the output would exceed `maxOutput` bytes (so a corrupt
    /// or hostile stream cannot expand without bound).
    /// With `reserveMaxOutput` the output buffer is reserved at `maxOutput` bytes up front (the caller
    /// knows the exact size, e.g. PNG scanlines): no regrowth, so no transient second copy.
    public static func inflate(_ data: [UInt8], maxOutput: Int, reserveMaxOutput: Bool = false) throws -> [UInt8] {
        guard data.count >= 2 else { throw ZlibError.truncated("no header") }
        let cmf = Int(data[0]), flg = Int(data[1])
        guard cmf & 0x0F == 8 else { throw ZlibError.corrupt("compression method \(cmf & 0x0F), expected 8 (deflate)") }
        guard cmf >> 4 <= 7 else { throw ZlibError.corrupt("window size field \(cmf >> 4) > 7") }
        guard (cmf * 256 + flg) % 31 == 0 else { throw ZlibError.corrupt("header check bits wrong") }
        guard flg & 0x20 == 0 else { throw ZlibError.corrupt("preset dictionary not allowed") }
        var s = InflateState(data: data, pos: 2, limit: maxOutput, reserve: reserveMaxOutput ? maxOutput : nil)
        try s.run()
        let end = s.pos
        guard end + 4 <= data.count else { throw ZlibError.truncated("missing Adler-32 trailer") }
        let want = UInt32(data[end]) << 24 | UInt32(data[end + 1]) << 16 | UInt32(data[end + 2]) << 8 | UInt32(data[end + 3])
        let got = adler32(s.out)
        guard want == got else { throw ZlibError.corrupt("Adler-32 mismatch (stored \(want), computed \(got))") }
        return s.out
    }

    // MARK: deflate

    /// Compresses to a zlib stream (one fixed-Huffman block, greedy LZ77 with a 32 KiB window).
    public static func deflate(_ data: [UInt8]) -> [UInt8] {
        var w = BitWriter()
        w.bytes = [0x78, 0x01]              // CMF: deflate, 32K window; FLG: fastest, check bits ok
        w.put(1, 1); w.put(1, 2)            // BFINAL = 1, BTYPE = 01 (fixed Huffman)
        var head = [Int](repeating: -1, count: 1 << 15)
        var i = 0
        let n = data.count
        while i < n {
            var bestLen = 0, bestDist = 0
            if i + 2 < n {
                let h = (Int(data[i]) << 10 ^ Int(data[i + 1]) << 5 ^ Int(data[i + 2])) & 0x7FFF
                let cand = head[h]
                head[h] = i
                if cand >= 0 && i - cand <= 32768 {
                    var l = 0
                    while l < 258 && i + l < n && data[cand + l] == data[i + l] { l += 1 }
                    if l >= 3 { bestLen = l; bestDist = i - cand }
                }
            }
            if bestLen >= 3 {
                w.putLength(bestLen); w.putDistance(bestDist)
                i += bestLen
            } else {
                w.putLiteral(Int(data[i])); i += 1
            }
        }
        w.putLiteral(256)                   // end of block
        w.flush()
        let a = adler32(data)
        w.bytes += [UInt8(a >> 24), UInt8(a >> 16 & 0xFF), UInt8(a >> 8 & 0xFF), UInt8(a & 0xFF)]
        return w.bytes
    }
}

// RFC 1951 §3.2.5 tables.
private let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                                 67, 83, 99, 115, 131, 163, 195, 227, 258]
private let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
private let distBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                               1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
private let distExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

/// A canonical Huffman code as puff.c stores it (number of codes per length, symbols in code order),
/// plus a 9-bit lookup table for the common short codes (a speed-up only; long codes use puff's loop).
private struct Huffman {
    static let fastBits = 9
    var count = [Int](repeating: 0, count: 16)
    var symbol: [Int]
    /// Indexed by the next 9 input bits (LSB-first): `length << 9 | symbol`, or 0 for a longer code.
    var fast = [UInt16](repeating: 0, count: 1 << fastBits)

    /// Builds from code lengths (0 = unused). Incomplete codes are allowed (RFC permits a single
    /// distance code); over-subscribed ones are rejected.
    init(lengths: [Int]) throws {
        symbol = [Int](repeating: 0, count: lengths.count)
        for l in lengths { count[l] += 1 }
        var left = 1
        for len in 1..<16 {
            left <<= 1
            left -= count[len]
            if left < 0 { throw ZlibError.corrupt("over-subscribed Huffman code") }
        }
        var offs = [Int](repeating: 0, count: 16)
        for len in 1..<15 { offs[len + 1] = offs[len] + count[len] }
        for (sym, l) in lengths.enumerated() where l != 0 {
            symbol[offs[l]] = sym
            offs[l] += 1
        }
        // Canonical codes (RFC 1951 §3.2.2), bit-reversed because deflate sends them MSB-first into an
        // LSB-first stream.
        var next = [Int](repeating: 0, count: 16)
        var code = 0
        for len in 1..<16 { code = (code + count[len - 1]) << 1; next[len] = code }
        for (sym, l) in lengths.enumerated() where l != 0 && l <= Self.fastBits {
            let c = next[l]; next[l] += 1
            var rev = 0
            for i in 0..<l { rev |= ((c >> i) & 1) << (l - 1 - i) }
            var k = rev
            while k < 1 << Self.fastBits { fast[k] = UInt16(l << 9 | sym); k += 1 << l }
        }
    }
}

private struct InflateState {
    let data: [UInt8]
    var pos: Int
    var bitBuf = 0
    var bitCnt = 0
    var out: [UInt8] = []
    let limit: Int

    init(data: [UInt8], pos: Int, limit: Int, reserve: Int? = nil) {
        self.data = data
        self.pos = pos
        self.limit = limit
        out.reserveCapacity(reserve ?? min(limit, data.count * 4))
    }

    func checkLimit(adding n: Int) throws {
        if n > limit - out.count { throw ZlibError.corrupt("output exceeds the expected \(limit) bytes") }
    }

    mutating func bits(_ need: Int) throws -> Int {
        var val = bitBuf
        while bitCnt < need {
            guard pos < data.count else { throw ZlibError.truncated("deflate data ends mid-block") }
            val |= Int(data[pos]) << bitCnt
            pos += 1
            bitCnt += 8
        }
        bitBuf = val >> need
        bitCnt -= need
        return val & ((1 << need) - 1)
    }

    mutating func decode(_ h: Huffman) throws -> Int {
        while bitCnt < Huffman.fastBits && pos < data.count {
            bitBuf |= Int(data[pos]) << bitCnt
            pos += 1
            bitCnt += 8
        }
        let e = Int(h.fast[bitBuf & ((1 << Huffman.fastBits) - 1)])
        if e != 0 && e >> 9 <= bitCnt {
            bitBuf >>= e >> 9
            bitCnt -= e >> 9
            return e & 511
        }
        // puff.c's bit-at-a-time canonical decode (long codes, or the last bits of the stream).
        var code = 0, first = 0, index = 0
        for len in 1..<16 {
            code |= try bits(1)
            let count = h.count[len]
            if code - count < first { return h.symbol[index + (code - first)] }
            index += count
            first += count
            first <<= 1
            code <<= 1
        }
        throw ZlibError.corrupt("invalid Huffman code")
    }

    mutating func run() throws {
        var last = 0
        repeat {
            last = try bits(1)
            switch try bits(2) {
            case 0: try stored()
            case 1: try codes(FixedCodes.lit, FixedCodes.dist)
            case 2: try dynamic()
            default: throw ZlibError.corrupt("block type 3")
            }
        } while last == 0
        byteAlign()              // the trailer starts at the next byte boundary
    }

    /// Drops the bits left of the current byte and gives back whole bytes the lookahead loaded early.
    mutating func byteAlign() {
        pos -= bitCnt / 8
        bitBuf = 0; bitCnt = 0
    }

    mutating func stored() throws {
        byteAlign()
        guard pos + 4 <= data.count else { throw ZlibError.truncated("stored block header") }
        let len = Int(data[pos]) | Int(data[pos + 1]) << 8
        let nlen = Int(data[pos + 2]) | Int(data[pos + 3]) << 8
        guard len == (~nlen & 0xFFFF) else { throw ZlibError.corrupt("stored block length check") }
        pos += 4
        guard pos + len <= data.count else { throw ZlibError.truncated("stored block data") }
        try checkLimit(adding: len)
        out.append(contentsOf: data[pos..<pos + len])
        pos += len
    }

    mutating func codes(_ lit: Huffman, _ dist: Huffman) throws {
        while true {
            var sym = try decode(lit)
            if sym < 256 { try checkLimit(adding: 1); out.append(UInt8(sym)); continue }
            if sym == 256 { return }
            sym -= 257
            guard sym < 29 else { throw ZlibError.corrupt("invalid length symbol \(sym + 257)") }
            let len = lengthBase[sym] + (try bits(lengthExtra[sym]))
            let dsym = try decode(dist)
            guard dsym < 30 else { throw ZlibError.corrupt("invalid distance symbol \(dsym)") }
            let d = distBase[dsym] + (try bits(distExtra[dsym]))
            guard d <= out.count else { throw ZlibError.corrupt("distance \(d) reaches before the start of the output") }
            try checkLimit(adding: len)
            let start = out.count - d
            for k in 0..<len { out.append(out[start + k]) }
        }
    }

    mutating func dynamic() throws {
        let nlen = try bits(5) + 257, ndist = try bits(5) + 1, ncode = try bits(4) + 4
        guard nlen <= 286 && ndist <= 30 else { throw ZlibError.corrupt("too many length or distance codes") }
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
        var lengths = [Int](repeating: 0, count: 19)
        for i in 0..<ncode { lengths[order[i]] = try bits(3) }
        let lencode = try Huffman(lengths: lengths)
        var all = [Int]()
        while all.count < nlen + ndist {
            let sym = try decode(lencode)
            if sym < 16 { all.append(sym); continue }
            var value = 0, rep = 0
            switch sym {
            case 16:
                guard let prev = all.last else { throw ZlibError.corrupt("repeat with no previous length") }
                value = prev; rep = 3 + (try bits(2))
            case 17: rep = 3 + (try bits(3))
            default: rep = 11 + (try bits(7))
            }
            guard all.count + rep <= nlen + ndist else { throw ZlibError.corrupt("too many code lengths") }
            all += [Int](repeating: value, count: rep)
        }
        guard all[256] != 0 else { throw ZlibError.corrupt("no end-of-block code") }
        try codes(try Huffman(lengths: Array(all[0..<nlen])), try Huffman(lengths: Array(all[nlen...])))
    }
}

private enum FixedCodes {
    static let lit: Huffman = {
        var l = [Int](repeating: 8, count: 288)
        for i in 144..<256 { l[i] = 9 }
        for i in 256..<280 { l[i] = 7 }
        return try! Huffman(lengths: l)  // constant, valid by construction
    }()
    static let dist: Huffman = try! Huffman(lengths: [Int](repeating: 5, count: 30))
}

/// LSB-first bit packer for deflate output; Huffman codes are written MSB-first as RFC 1951 requires.
private struct BitWriter {
    var bytes: [UInt8] = []
    var acc = 0
    var n = 0

    mutating func put(_ value: Int, _ count: Int) {
        acc |= value << n
        n += count
        while n >= 8 { bytes.append(UInt8(acc & 0xFF)); acc >>= 8; n -= 8 }
    }

    mutating func putCode(_ code: Int, _ len: Int) {
        var r = 0
        for i in 0..<len { r |= ((code >> i) & 1) << (len - 1 - i) }
        put(r, len)
    }

    mutating func putLiteral(_ sym: Int) {
        switch sym {
        case 0..<144: putCode(0x30 + sym, 8)
        case 144..<256: putCode(0x190 + sym - 144, 9)
        case 256..<280: putCode(sym - 256, 7)
        default: putCode(0xC0 + sym - 280, 8)
        }
    }

    mutating func putLength(_ len: Int) {
        var i = 28
        while lengthBase[i] > len { i -= 1 }
        putLiteral(257 + i)
        put(len - lengthBase[i], lengthExtra[i])
    }

    mutating func putDistance(_ d: Int) {
        var i = 29
        while distBase[i] > d { i -= 1 }
        putCode(i, 5)
        put(d - distBase[i], distExtra[i])
    }

    mutating func flush() { if n > 0 { bytes.append(UInt8(acc & 0xFF)); acc = 0; n = 0 } }
}
