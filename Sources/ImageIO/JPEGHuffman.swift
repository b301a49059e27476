// JPEG entropy-coded-segment bit reader and Huffman tables (ITU-T T.81 Annex C/F), written after
// libjpeg's jdhuff.c: codes MSB-first, 0xFF00 byte stuffing, and zero bits fed once a marker (or the
// end of the data) is reached. Unlike libjpeg, which silently decodes those zero bits and warns, we
// count them: consuming one means the scan is cut short, and the decoder throws.

/// A Huffman table built from a DHT segment: a 9-bit lookahead table plus libjpeg's maxcode/valptr
/// arrays for longer codes.
struct JPEGHuffmanTable: Sendable {
    static let lookBits = 9
    /// (length << 8 | value) for every 9-bit prefix whose code is ≤ 9 bits; 0 when longer.
    var lookup = [UInt16](repeating: 0, count: 1 << lookBits)
    var maxcode = [Int](repeating: -1, count: 18)
    var valptr = [Int](repeating: 0, count: 17)
    var mincode = [Int](repeating: 0, count: 17)
    var values: [UInt8]

    /// `counts[l-1]` codes of length l (l = 1...16), `values` in code order.
    init(counts: [Int], values: [UInt8]) throws {
        self.values = values
        var code = 0, k = 0
        for l in 1...16 {
            valptr[l] = k
            mincode[l] = code
            for _ in 0..<counts[l - 1] {
                // Over-subscribed code space (libjpeg's jpeg_make_d_derived_tbl rejects it too).
                guard code < 1 << l else { throw JPEGHuffmanError.overSubscribed }
                if l <= Self.lookBits {
                    let shift = Self.lookBits - l
                    for p in (code << shift)..<((code + 1) << shift) { lookup[p] = UInt16(l << 8) | UInt16(values[k]) }
                }
                code += 1
                k += 1
            }
            maxcode[l] = counts[l - 1] > 0 ? code - 1 : -1
            code <<= 1
        }
        maxcode[17] = Int.max   // sentinel, as libjpeg
    }
}

enum JPEGHuffmanError: Error { case overSubscribed }

/// Reads the bits of one entropy-coded segment.
struct JPEGBitReader {
    let data: [UInt8]
    /// Next byte to load. When `atMarker` is true it points at the marker's 0xFF.
    var pos: Int
    /// Bits, MSB-aligned: the next bit to read is bit 63.
    var buf: UInt64 = 0
    var count = 0
    /// True once a marker (or the end of the data) stopped the loading of real bytes.
    var atMarker = false
    /// How many of the `count` buffered bits at the low end are zero padding, not data.
    var padBits = 0

    init(data: [UInt8], pos: Int) {
        self.data = data
        self.pos = pos
    }

    /// Tops the buffer up to more than 56 bits.
    @inline(__always) mutating func fill() {
        while count <= 56 {
            var byte: UInt64 = 0
            if !atMarker && pos < data.count {
                let b = data[pos]
                if b != 0xFF {
                    pos += 1
                    byte = UInt64(b)
                } else {
                    // 0xFF 0x00 is a stuffed 0xFF data byte; 0xFF 0xFF... is fill before a marker.
                    var q = pos + 1
                    while q < data.count && data[q] == 0xFF { q += 1 }
                    if q < data.count && data[q] == 0 {
                        pos = q + 1
                        byte = 0xFF
                    } else {
                        atMarker = true
                        pos = q - 1
                        padBits += 8
                    }
                }
            } else {
                atMarker = true
                padBits += 8
            }
            buf |= byte << UInt64(56 - count)
            count += 8
        }
    }

    /// True when more bits were consumed than the segment holds.
    var overran: Bool { count < padBits }

    @inline(__always) mutating func bits(_ n: Int) -> Int {
        if n == 0 { return 0 }
        if count < n { fill() }
        let v = Int(buf >> UInt64(64 - n))
        buf <<= UInt64(n)
        count -= n
        return v
    }

    @inline(__always) mutating func bit() -> Int { bits(1) }

    /// Decodes one Huffman symbol, or nil for a bit pattern that is no code of the table.
    @inline(__always) mutating func decode(_ t: JPEGHuffmanTable) -> Int? {
        if count < 16 { fill() }
        let e = t.lookup[Int(buf >> UInt64(64 - JPEGHuffmanTable.lookBits))]
        if e != 0 {
            let l = Int(e >> 8)
            buf <<= UInt64(l)
            count -= l
            return Int(e & 0xFF)
        }
        var l = JPEGHuffmanTable.lookBits + 1
        while l <= 16 {
            let code = Int(buf >> UInt64(64 - l))
            if code <= t.maxcode[l] {
                buf <<= UInt64(l)
                count -= l
                let idx = t.valptr[l] + code - t.mincode[l]
                return idx < t.values.count ? Int(t.values[idx]) : nil
            }
            l += 1
        }
        return nil
    }

    /// Drops buffered bits and moves `pos` to the next marker's 0xFF (at a restart or the scan's end).
    mutating func seekMarker() {
        buf = 0; count = 0; padBits = 0
        if atMarker { atMarker = false; return }
        while pos + 1 < data.count {
            if data[pos] == 0xFF && data[pos + 1] != 0 && data[pos + 1] != 0xFF { return }
            pos += 1
        }
        pos = data.count
    }
}

/// JPEG's sign extension of an `s`-bit magnitude category value (T.81 F.2.2.1, libjpeg HUFF_EXTEND).
@inline(__always) func jpegExtend(_ v: Int, _ s: Int) -> Int {
    s == 0 ? 0 : (v < (1 << (s - 1)) ? v - (1 << s) + 1 : v)
}

/// Zig-zag position -> natural (row-major) index, with 16 extra entries of 63 like libjpeg's
/// jpeg_natural_order, so a corrupt run length that overshoots lands on coefficient 63 instead of
/// outside the block.
let jpegNaturalOrder: [Int] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
] + [Int](repeating: 63, count: 16)
