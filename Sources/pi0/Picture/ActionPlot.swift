// The `pi0 demo <scene>` picture: title, the camera frames the policy saw, a few lines of facts, and one
// small line plot per action dimension over the predicted chunk (x: chunk step, y: the action in the
// robot's units, with the current state of that joint as a dashed line where it is comparable).
import Foundation
import ImageIO

struct DemoPicture {
    struct Frame { var label: String; var image: RGBImage }

    var title: String
    /// Shown in red under the title (e.g. the random-weights warning).
    var warning: String?
    var frames: [Frame]
    /// Facts printed to the right of the frames (prompt, state, camera mapping, timings).
    var info: [String]
    /// Row-major [horizon, width] actions; the first `dimNames.count` dimensions are plotted.
    var actions: [Float]
    var horizon: Int
    var width: Int
    var dimNames: [String]
    /// Per plotted dimension, a reference level drawn dashed (the robot's current joint value), or nil.
    var reference: [Float?] = []
    var referenceLabel = "current state"
    var columns = 7

    // Layout constants (pixels).
    let margin = 16, gap = 10, panelWidth = 176, panelHeight = 128, frameSide = 224

    func render() -> Canvas {
        let dims = min(dimNames.count, width)
        let cols = max(1, min(columns, dims))
        let rows = (dims + cols - 1) / cols
        let framesWidth = frames.count * frameSide + max(frames.count - 1, 0) * gap
        let infoWidth = info.map { BitmapFont.width(of: $0) }.max() ?? 0
        let panelsWidth = cols * panelWidth + (cols - 1) * gap
        let titleWidth = max(BitmapFont.width(of: title, scale: 2), BitmapFont.width(of: warning ?? "", scale: 2))
        let w = 2 * margin + max(panelsWidth, framesWidth + 2 * gap + infoWidth, titleWidth)
        var y = margin
        let titleHeight = 2 * BitmapFont.lineHeight + (warning == nil ? 0 : 2 * BitmapFont.lineHeight + 4) + 10
        let framesTop = y + titleHeight
        let framesHeight = max(frameSide + 14, info.count * (BitmapFont.lineHeight + 4) + 14)
        let panelsTop = framesTop + framesHeight + 16
        let legendHeight = 24
        let h = panelsTop + rows * panelHeight + (rows - 1) * gap + legendHeight + margin
        var c = Canvas(width: w, height: h, background: .white)

        c.text(title, x: margin, y: y, color: .ink, scale: 2)
        y += 2 * BitmapFont.lineHeight + 4
        if let warning {
            c.text(warning, x: margin, y: y, color: .red, scale: 2)
        }
        // Frames, each labelled above.
        for (i, f) in frames.enumerated() {
            let x = margin + i * (frameSide + gap)
            c.text(f.label, x: x, y: framesTop, color: .ink)
            c.blit(f.image, x: x, y: framesTop + 12, width: frameSide, height: frameSide)
            c.stroke(x: x - 1, y: framesTop + 11, width: frameSide + 2, height: frameSide + 2, color: .grey)
        }
        let infoX = margin + framesWidth + 2 * gap
        for (i, line) in info.enumerated() {
            c.text(line, x: infoX, y: framesTop + 12 + i * (BitmapFont.lineHeight + 4), color: .ink)
        }
        // One panel per action dimension.
        for d in 0..<dims {
            let px = margin + (d % cols) * (panelWidth + gap)
            let py = panelsTop + (d / cols) * (panelHeight + gap)
            let series = (0..<horizon).map { actions[$0 * width + d] }
            drawPanel(&c, x: px, y: py, title: dimNames[d], series: series, reference: d < reference.count ? reference[d] : nil)
        }
        // Legend.
        let ly = h - margin - 10
        c.line(margin, ly + 3, margin + 20, ly + 3, color: .blue, thickness: 2)
        var lx = margin + 26
        lx += c.text("predicted action over the \(horizon)-step chunk (x: step)", x: lx, y: ly) + 16
        if reference.contains(where: { $0 != nil }) {
            c.dashedHLine(y: ly + 3, from: lx, to: lx + 20, color: .orange)
            c.dashedHLine(y: ly + 4, from: lx, to: lx + 20, color: .orange)
            c.text(referenceLabel, x: lx + 26, y: ly)
        }
        return c
    }

    /// A labelled line plot in the box (x, y, panelWidth, panelHeight).
    func drawPanel(_ c: inout Canvas, x: Int, y: Int, title: String, series: [Float], reference: Float?) {
        c.fill(x: x, y: y, width: panelWidth, height: panelHeight, color: .panel)
        c.stroke(x: x, y: y, width: panelWidth, height: panelHeight, color: .lightGrey)
        c.text(title, centerX: x + panelWidth / 2, y: y + 5, color: .ink)
        let left = x + 46, right = x + panelWidth - 10, top = y + 20, bottom = y + panelHeight - 20
        let finite = series.filter(\.isFinite) + (reference.map { [$0] } ?? []).filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if hi - lo < 1e-6 { let pad = max(abs(lo) * 0.05, 0.01); lo -= pad; hi += pad }
        let pad = (hi - lo) * 0.08
        lo -= pad; hi += pad
        func py(_ v: Float) -> Int { bottom - Int(((v - lo) / (hi - lo) * Float(bottom - top)).rounded()) }
        func px(_ t: Int) -> Int { left + Int((Float(t) / Float(max(series.count - 1, 1)) * Float(right - left)).rounded()) }
        // Grid and y tick labels: bottom, middle and top of the range.
        let decimals = Self.decimals(forSpan: hi - lo)
        for k in 0...2 {
            let v = lo + (hi - lo) * Float(k) / 2
            let yy = py(v)
            c.fill(x: left + 1, y: yy, width: right - left, height: 1, color: .lightGrey)
            c.fill(x: left - 3, y: yy, width: 3, height: 1, color: .grey)
            c.text(Self.tick(v, decimals: decimals), rightX: left - 5, y: yy - 3, color: .ink)
        }
        // X ticks every 10 steps, labels at 0, the middle and the end.
        let last = max(series.count - 1, 0)
        for t in stride(from: 0, through: last, by: 10) { c.fill(x: px(t), y: bottom + 1, width: 1, height: 3, color: .grey) }
        for t in Set([0, (last + 1) / 2, last]).sorted() {
            c.fill(x: px(t), y: bottom + 1, width: 1, height: 4, color: .grey)
            c.text("\(t)", centerX: px(t), y: bottom + 7, color: .ink)
        }
        c.fill(x: left, y: top, width: 1, height: bottom - top + 1, color: .grey)
        c.fill(x: left, y: bottom, width: right - left + 1, height: 1, color: .grey)
        if let reference, reference.isFinite {
            c.dashedHLine(y: py(reference), from: left + 1, to: right, color: .orange)
        }
        for t in 1..<max(series.count, 1) where series[t - 1].isFinite && series[t].isFinite {
            c.line(px(t - 1), py(series[t - 1]), px(t), py(series[t]), color: .blue, thickness: 2)
        }
    }

    /// A tick label; never "-0.00".
    static func tick(_ v: Float, decimals: Int) -> String {
        let s = String(format: "%.\(decimals)f", v)
        return s.hasPrefix("-") && s.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) ? String(s.dropFirst()) : s
    }

    /// Enough decimals that three ticks across `span` print differently.
    static func decimals(forSpan span: Float) -> Int {
        switch span {
        case 20...: return 0
        case 2...: return 1
        case 0.2...: return 2
        default: return 3
        }
    }
}
