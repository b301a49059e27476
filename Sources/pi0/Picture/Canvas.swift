// A small RGB raster canvas for the demo pictures: rectangles, lines, image blits with nearest-neighbour
// scaling, and text through `BitmapFont`. Everything is clipped to the canvas, so callers may draw
// partly outside it without range checks of their own. Encoded with ImageIO's PNG encoder.
import ImageIO

struct Color: Sendable, Equatable {
    var r: UInt8, g: UInt8, b: UInt8
    init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }

    static let white = Color(255, 255, 255)
    static let black = Color(0, 0, 0)
    static let ink = Color(40, 40, 48)
    static let grey = Color(140, 140, 150)
    static let lightGrey = Color(225, 226, 230)
    static let panel = Color(248, 248, 250)
    static let blue = Color(33, 102, 172)
    static let red = Color(200, 30, 30)
    static let orange = Color(230, 130, 20)
}

struct Canvas {
    let width: Int
    let height: Int
    /// HWC RGB bytes, row-major, as `RGBImage`.
    private(set) var pixels: [UInt8]

    init(width: Int, height: Int, background: Color = .white) {
        self.width = max(width, 0); self.height = max(height, 0)
        pixels = [UInt8](repeating: 0, count: self.width * self.height * 3)
        fill(x: 0, y: 0, width: self.width, height: self.height, color: background)
    }

    var image: RGBImage { RGBImage(width: width, height: height, pixels: pixels) }

    /// PNG bytes of the canvas.
    func png() -> [UInt8] { PNG.encode(image) }

    @inline(__always)
    mutating func set(_ x: Int, _ y: Int, _ c: Color) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let o = (y * width + x) * 3
        pixels[o] = c.r; pixels[o + 1] = c.g; pixels[o + 2] = c.b
    }

    func get(_ x: Int, _ y: Int) -> Color? {
        guard x >= 0, y >= 0, x < width, y < height else { return nil }
        let o = (y * width + x) * 3
        return Color(pixels[o], pixels[o + 1], pixels[o + 2])
    }

    /// Fills the rectangle [x, x+width) × [y, y+height), clipped.
    mutating func fill(x: Int, y: Int, width w: Int, height h: Int, color: Color) {
        let x0 = max(x, 0), y0 = max(y, 0), x1 = min(x + w, width), y1 = min(y + h, height)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 { for xx in x0..<x1 { set(xx, yy, color) } }
    }

    /// A one-pixel outline of the rectangle.
    mutating func stroke(x: Int, y: Int, width w: Int, height h: Int, color: Color) {
        guard w > 0, h > 0 else { return }
        fill(x: x, y: y, width: w, height: 1, color: color)
        fill(x: x, y: y + h - 1, width: w, height: 1, color: color)
        fill(x: x, y: y, width: 1, height: h, color: color)
        fill(x: x + w - 1, y: y, width: 1, height: h, color: color)
    }

    /// A line from (x0, y0) to (x1, y1) (Bresenham), `thickness` pixels wide (a square pen).
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, color: Color, thickness: Int = 1) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        let lo = -(thickness - 1) / 2, hi = thickness / 2
        while true {
            for oy in lo...hi { for ox in lo...hi { set(x + ox, y + oy, color) } }
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// A horizontal dashed line at row y from x0 to x1 (inclusive).
    mutating func dashedHLine(y: Int, from x0: Int, to x1: Int, color: Color, dash: Int = 4, gap: Int = 3) {
        var x = x0
        while x <= x1 {
            for i in 0..<dash where x + i <= x1 { set(x + i, y, color) }
            x += dash + gap
        }
    }

    /// Draws `image` into the rectangle at (x, y) of size width × height with nearest-neighbour scaling.
    mutating func blit(_ image: RGBImage, x: Int, y: Int, width w: Int, height h: Int) {
        guard image.width > 0, image.height > 0, w > 0, h > 0 else { return }
        for ty in 0..<h {
            let sy = min(image.height - 1, ty * image.height / h)
            for tx in 0..<w {
                let sx = min(image.width - 1, tx * image.width / w)
                let o = (sy * image.width + sx) * 3
                set(x + tx, y + ty, Color(image.pixels[o], image.pixels[o + 1], image.pixels[o + 2]))
            }
        }
    }

    /// Text with its top-left corner at (x, y); returns the width drawn.
    @discardableResult
    mutating func text(_ s: String, x: Int, y: Int, color: Color = .ink, scale: Int = 1) -> Int {
        BitmapFont.draw(s, into: &self, x: x, y: y, color: color, scale: scale)
    }

    /// Text centred horizontally on `centerX`.
    mutating func text(_ s: String, centerX: Int, y: Int, color: Color = .ink, scale: Int = 1) {
        text(s, x: centerX - BitmapFont.width(of: s, scale: scale) / 2, y: y, color: color, scale: scale)
    }

    /// Text ending at `rightX` (right-aligned).
    mutating func text(_ s: String, rightX: Int, y: Int, color: Color = .ink, scale: Int = 1) {
        text(s, x: rightX - BitmapFont.width(of: s, scale: scale), y: y, color: color, scale: scale)
    }
}
