// Attention-mask and position rules (docs/SPEC.md §3.4, §3.5, §5.2), LeRobot's `make_att_2d_masks`.
// A token's `att` flag starts a new block: with cum = cumsum(att), query q may attend key k iff
// cum[k] ≤ cum[q] and both are valid (pad mask true). Masks become additive float32: 0 or
// −2.3819763e38 (finite, so a query with no valid key attends uniformly, as in LeRobot).

public enum AttentionMasks {
    /// The additive value LeRobot uses for disallowed positions (openpi's OPENPI_ATTENTION_MASK_VALUE).
    public static let maskedValue: Float = -2.3819763e38

    /// [T, T] booleans for one batch row.
    public static func make2D(pad: [Bool], att: [Int]) -> [[Bool]] {
        precondition(pad.count == att.count)
        var cum = [Int](repeating: 0, count: att.count), c = 0
        for i in 0..<att.count { c += att[i]; cum[i] = c }
        return (0..<pad.count).map { q in (0..<pad.count).map { k in cum[k] <= cum[q] && pad[q] && pad[k] } }
    }

    /// Prefix positions: cumsum(pad) − 1 (padding repeats the previous position).
    public static func positions(pad: [Bool]) -> [Int] {
        var out = [Int](), c = 0
        for p in pad { if p { c += 1 }; out.append(c - 1) }
        return out
    }

    /// The denoise-step mask [S, P+S] for one row: every suffix query sees every valid prefix token
    /// (columns 0..<P), and the suffix part follows `make2D` on the suffix alone.
    public static func suffix(prefixPad: [Bool], suffixPad: [Bool], suffixAtt: [Int]) -> [[Bool]] {
        let s2 = make2D(pad: suffixPad, att: suffixAtt)
        return (0..<suffixPad.count).map { q in prefixPad + s2[q] }
    }

    /// Writes a boolean mask as additive float32 values.
    public static func additive(_ allowed: [[Bool]], into p: UnsafeMutablePointer<Float>) {
        var i = 0
        for row in allowed { for a in row { p[i] = a ? 0 : maskedValue; i += 1 } }
    }
}
