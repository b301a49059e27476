// What a robot hands the policy: camera frames, its raw state and an instruction.
import Foundation
import ImageIO

/// One camera frame: 8-bit or float ([0, 1]) RGB, channels-last (HWC) or channels-first (CHW).
public struct CameraFrame: Sendable {
    public enum Layout: String, Sendable { case hwc, chw }
    public enum Pixels: Sendable { case uint8([UInt8]), float32([Float]) }
    public let height: Int
    public let width: Int
    public let layout: Layout
    public let pixels: Pixels

    public init(height: Int, width: Int, layout: Layout, pixels: Pixels) {
        self.height = height; self.width = width; self.layout = layout; self.pixels = pixels
    }

    public init(_ image: RGBImage) {
        self.init(height: image.height, width: image.width, layout: .hwc, pixels: .uint8(image.pixels))
    }

    /// Decodes a PNG or JPEG file.
    public static func load(path: String) throws -> CameraFrame { CameraFrame(try ImageDecoder.decode(path: path)) }

    /// Float32 CHW in [0, 1], as LeRobot receives images (uint8 values / 255): the one layout conversion on
    /// the policy's path. Values are not checked here; `ImagePreprocessing` rejects non-finite ones.
    func floatCHW(camera: String) throws -> [Float] {
        let n = height * width
        guard height > 0, width > 0 else { throw PolicyError.badImage(camera: camera, reason: "empty image \(height)×\(width)") }
        let count: Int
        switch pixels { case .uint8(let p): count = p.count; case .float32(let p): count = p.count }
        guard count == 3 * n else {
            throw PolicyError.badImage(camera: camera, reason: "\(count) values for a \(height)×\(width) RGB image (expected \(3 * n); only 3-channel RGB is accepted)")
        }
        var out = [Float](repeating: 0, count: 3 * n)
        func value(_ i: Int) -> Float {
            switch pixels {
            case .uint8(let p): return Float(p[i]) / 255
            case .float32(let p): return p[i]
            }
        }
        for c in 0..<3 { for i in 0..<n {
            out[c * n + i] = layout == .chw ? value(c * n + i) : value(i * 3 + c)
        } }
        return out
    }
}

extension CameraFrame {
    /// The model's image input for this frame: CHW [3, side, side] in [-1, 1] (LeRobot's preprocessing).
    /// 8-bit frames are resized straight from their bytes (no float copy of a large source image).
    func modelInput(camera: String, side: Int) throws -> [Float] {
        do {
            if case .uint8(let p) = pixels, height > 0, width > 0, p.count == 3 * height * width {
                return try ImagePreprocessing.resizeWithPadToPM1(uint8: p, channelsLast: layout == .hwc, height: height, width: width,
                                                                 outHeight: side, outWidth: side)
            }
            return try ImagePreprocessing.resizeWithPadToPM1(chw: try floatCHW(camera: camera), height: height, width: width,
                                                             outHeight: side, outWidth: side)
        } catch let e as ImagePreprocessingError {
            throw PolicyError.badImage(camera: camera, reason: e.description)
        }
    }
}

public struct Observation: Sendable {
    /// Camera name → frame. Names are the checkpoint's (`observation.images.top`) or their last part (`top`).
    public var images: [String: CameraFrame]
    /// The robot state in its own units and dimensions (normalised by the policy).
    public var state: [Float]
    /// The instruction, e.g. "pick up the cube".
    public var prompt: String
    /// Already tokenised prompt (ids and mask, any length ≤ the tokenizer length), bypassing the tokenizer.
    /// For π0.5 these must already encode the state prompt (`PI05Prompt`); `state` is then only checked.
    public var tokens: (ids: [Int], mask: [Bool])?

    /// Real-time chunking: the previous chunk's actions that the robot has not executed yet (docs/RTC.md).
    public var previousChunk: PreviousChunk?

    public init(images: [String: CameraFrame], state: [Float], prompt: String, tokens: (ids: [Int], mask: [Bool])? = nil,
                previousChunk: PreviousChunk? = nil) {
        self.images = images; self.state = state; self.prompt = prompt; self.tokens = tokens
        self.previousChunk = previousChunk
    }
}

/// The unexecuted tail of the previous action chunk, in the robot's units as the policy returned it,
/// with the inference delay (control steps that pass while the model runs) and the execution horizon
/// (default: the checkpoint's rtc_config).
public struct PreviousChunk: Sendable, Equatable {
    /// Row-major [steps, actionDim] in the robot's units.
    public var actions: [Float]
    public var steps: Int
    public var inferenceDelay: Int
    public var executionHorizon: Int?

    public init(actions: [Float], steps: Int, inferenceDelay: Int, executionHorizon: Int? = nil) {
        self.actions = actions; self.steps = steps; self.inferenceDelay = inferenceDelay; self.executionHorizon = executionHorizon
    }
}

public enum PolicyError: Error, CustomStringConvertible, Equatable {
    case unknownCamera(name: String, known: [String])
    case noCameras(known: [String])
    case badImage(camera: String, reason: String)
    case badState(reason: String)
    case noTokenizer(reason: String)
    case badTokens(reason: String)
    case badPreviousChunk(reason: String)
    case checkpointNotFound(String)

    public var description: String {
        switch self {
        case let .unknownCamera(n, k): return "unknown camera '\(n)'; this checkpoint's cameras are: \(k.joined(separator: ", "))"
        case let .noCameras(k): return "no camera image given; at least one of \(k.joined(separator: ", ")) is required"
        case let .badImage(c, r): return "camera '\(c)': \(r)"
        case let .badState(r): return "state: \(r)"
        case let .noTokenizer(r): return "no tokenizer: \(r)"
        case let .badTokens(r): return "tokens: \(r)"
        case let .badPreviousChunk(r): return "previous chunk (real-time chunking): \(r)"
        case let .checkpointNotFound(r): return r
        }
    }
}
