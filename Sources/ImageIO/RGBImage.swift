// The decoded-image value type, the module's error type, and format sniffing.
//
// Everything in ImageIO decodes to 8-bit RGB because that is what the π0 pipeline consumes: LeRobot
// receives camera frames as uint8 RGB (or float in [0,1] made from them) and divides by 255.
// Alpha channels are dropped, never composited (PIL's `convert("RGB")` drops alpha the same way).

import Foundation
import InputFiles

/// An 8-bit RGB image, pixels interleaved HWC (row-major, 3 bytes per pixel, no row padding).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `height * width * 3` bytes: R, G, B of pixel (0,0), then (0,1), ...
    public var pixels: [UInt8]

    /// Builds an image; `pixels.count` must be `width * height * 3` (programmer error otherwise).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) bytes for \(width)x\(height)x3")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// RGB of pixel (`y`, `x`).
    public func pixel(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let o = (y * width + x) * 3
        return (pixels[o], pixels[o + 1], pixels[o + 2])
    }
}

/// Everything that can go wrong reading an image. Every case names the file (or the `name` given to a
/// `decode(data:name:)` call) so that a bad camera frame in a batch can be found.
public enum ImageIOError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read.
    case unreadable(file: String, reason: String)
    /// The bytes are neither PNG nor JPEG.
    case unknownFormat(file: String)
    /// The data ends before the structure it announced (`what` says which part was cut).
    case truncated(file: String, what: String)
    /// The data is malformed (bad CRC, bad header field, impossible Huffman code, ...).
    case corrupt(file: String, reason: String)
    /// Valid, but a feature this decoder does not implement (arithmetic coding, lossless JPEG, CMYK, ...).
    case unsupported(file: String, feature: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read file: \(reason)"
        case let .unknownFormat(file): return "\(file): not a PNG or JPEG file (unrecognised signature)"
        case let .truncated(file, what): return "\(file): file is truncated (\(what))"
        case let .corrupt(file, reason): return "\(file): corrupt image data: \(reason)"
        case let .unsupported(file, feature): return "\(file): unsupported image feature: \(feature)"
        }
    }
}

/// Reads PNG or JPEG by content (the file extension is ignored).
public enum ImageDecoder {
    /// Reads and decodes the file at `path`.
    public static func decode(path: String) throws -> RGBImage {
        let data: [UInt8]
        do { data = try InputFile.readAll(path, limit: 1 << 30) } catch let e as InputFileError {
            throw ImageIOError.unreadable(file: path, reason: e.reason)   // missing, FIFO, device, directory
        }
        return try decode(data: data, name: path)
    }

    /// Decodes bytes, choosing the format from the signature. `name` is used in error messages.
    public static func decode(data: [UInt8], name: String) throws -> RGBImage {
        if data.count >= 8 && Array(data[0..<8]) == PNG.signature {
            return try PNG.decode(data, name: name)
        }
        if data.count >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF {
            return try JPEG.decode(data, name: name)
        }
        if data.count < 8 { throw ImageIOError.truncated(file: name, what: "only \(data.count) bytes, no signature") }
        throw ImageIOError.unknownFormat(file: name)
    }
}
