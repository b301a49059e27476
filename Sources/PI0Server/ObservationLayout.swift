// Mapping openpi client observations onto a π0 checkpoint (docs/PROTOCOL.md, "Observations of the
// shipped example policies"). Each layout names its camera keys, its state key(s) and the robot's action
// width; cameras map onto the checkpoint's cameras by name when the checkpoint uses the same names,
// otherwise in order. `native` uses the checkpoint's own LeRobot feature names.
//
// Strict checking (the default for the named layouts; docs/SERVER.md "Strict observations"): a state
// of the wrong length, a layout camera the checkpoint uses but the observation lacks, and a float image
// outside [0, 1] (e.g. 0..255 sent as float) are errors naming the key. Lenient mapping (the default
// for `native`) zero-pads or cuts the state, masks missing cameras and clamps float images, as before.
import Foundation
import MessagePack
import PI0Runtime

public enum ObservationLayout: String, Sendable, CaseIterable {
    case libero, aloha, droid, native

    /// (client key path, short camera name) in the layout's order.
    var cameras: [(path: [String], name: String)] {
        switch self {
        case .libero: return [(["observation/image"], "image"), (["observation/wrist_image"], "wrist_image")]
        // Positional order when the checkpoint uses other names: the top view first, then the wrists.
        case .aloha: return ["cam_high", "cam_left_wrist", "cam_right_wrist", "cam_low"].map { (["images", $0], $0) }
        case .droid: return [(["observation/exterior_image_1_left"], "exterior_image_1_left"),
                             (["observation/wrist_image_left"], "wrist_image_left")]
        case .native: return []
        }
    }

    /// State key paths, concatenated in order.
    var stateKeys: [[String]] {
        switch self {
        case .libero: return [["observation/state"]]
        case .aloha: return [["state"]]
        case .droid: return [["observation/joint_position"], ["observation/gripper_position"]]
        case .native: return [["observation.state"]]
        }
    }

    /// The robot's action width for the layout (nil: the checkpoint's).
    var actionDim: Int? {
        switch self {
        case .libero: return 7
        case .aloha: return 14
        case .droid: return 8
        case .native: return nil
        }
    }
}

public enum ObservationError: ClientInputError, CustomStringConvertible, Equatable {
    case missingKey(String)
    case unexpectedKey(String)
    case badValue(key: String, reason: String)

    public var description: String {
        switch self {
        case let .missingKey(k): return "observation is missing '\(k)'"
        case let .unexpectedKey(k): return "unexpected observation key '\(k)' for this layout"
        case let .badValue(k, r): return "observation '\(k)': \(r)"
        }
    }
}

/// Turns a decoded openpi observation into a policy `Observation` for one checkpoint.
public struct ObservationMapper: Sendable {
    public let layout: ObservationLayout
    public let checkpointCameras: [String]
    public let stateDim: Int
    public let defaultPrompt: String?
    /// Refuse observations that lenient mapping would silently reshape (see the file comment).
    public let strict: Bool

    /// `strict` defaults to true for the named layouts (libero, aloha, droid) and false for `native`.
    public init(layout: ObservationLayout, checkpointCameras: [String], stateDim: Int, defaultPrompt: String? = nil,
                strict: Bool? = nil) {
        self.layout = layout; self.checkpointCameras = checkpointCameras; self.stateDim = stateDim; self.defaultPrompt = defaultPrompt
        self.strict = strict ?? (layout != .native)
    }

    /// Layout camera i → checkpoint camera: same last name if the checkpoint has it, else by position.
    func target(forLayoutCamera i: Int, name: String) -> String? {
        if let m = checkpointCameras.first(where: { $0.split(separator: ".").last.map(String.init) == name }) { return m }
        let byName = Set(layout.cameras.map(\.name)).intersection(checkpointCameras.compactMap { $0.split(separator: ".").last.map(String.init) })
        return byName.isEmpty && i < checkpointCameras.count ? checkpointCameras[i] : nil
    }

    public func map(_ obs: NumpyValue) throws -> Observation {
        guard case .map = obs else { throw ObservationError.badValue(key: "<root>", reason: "expected a map") }
        var known: Set<String> = Self.rtcKeys.union(["prompt"])
        var images: [String: CameraFrame] = [:]
        if layout == .native {
            for key in obs.keys where key.hasPrefix("observation.images.") {
                known.insert(key)
                guard checkpointCameras.contains(key) else { throw ObservationError.unexpectedKey(key) }
                images[key] = try Self.frame(obs[key]!, key: key, strict: strict)
            }
        } else {
            for (i, cam) in layout.cameras.enumerated() {
                known.insert(cam.path[0])
                guard let v = Self.lookup(obs, cam.path) else { continue }
                let key = cam.path.joined(separator: "/")
                if let target = target(forLayoutCamera: i, name: cam.name) { images[target] = try Self.frame(v, key: key, strict: strict) }
            }
            if layout == .aloha, let imgs = obs["images"] {
                for k in imgs.keys where !layout.cameras.contains(where: { $0.name == k }) { throw ObservationError.unexpectedKey("images/\(k)") }
            }
        }
        if images.isEmpty {
            throw ObservationError.missingKey(layout == .native ? "observation.images.*" : layout.cameras.map { $0.path.joined(separator: "/") }.joined(separator: " or "))
        }
        var state: [Float] = []
        for path in layout.stateKeys {
            known.insert(path[0])
            let key = path.joined(separator: "/")
            guard let v = Self.lookup(obs, path) else { throw ObservationError.missingKey(key) }
            state += try Self.floats(v, key: key)
        }
        if let i = state.firstIndex(where: { !$0.isFinite }) {
            throw ObservationError.badValue(key: layout.stateKeys[0].joined(separator: "/"), reason: "non-finite value at index \(i)")
        }
        for k in obs.keys where !known.contains(k) { throw ObservationError.unexpectedKey(k) }
        if strict { try checkStrict(obs, images: images, stateCount: state.count) }
        state = Array(state.prefix(stateDim)) + [Float](repeating: 0, count: max(0, stateDim - state.count))
        let prompt: String
        if let p = obs["prompt"] {
            guard let s = p.string else { throw ObservationError.badValue(key: "prompt", reason: "expected a string") }
            prompt = s
        } else if let d = defaultPrompt {
            prompt = d
        } else {
            throw ObservationError.missingKey("prompt")
        }
        return Observation(images: images, state: state, prompt: prompt, previousChunk: try Self.previousChunk(obs))
    }

    /// The strict rules: the state has exactly the checkpoint's length; every camera of the layout
    /// (or, for `native`, of the checkpoint) that the checkpoint uses is present.
    func checkStrict(_ obs: NumpyValue, images: [String: CameraFrame], stateCount: Int) throws {
        let stateKey = layout.stateKeys.map { $0.joined(separator: "/") }.joined(separator: " + ")
        guard stateCount == stateDim else {
            throw ObservationError.badValue(key: stateKey, reason: "expected \(stateDim) values for this checkpoint, got \(stateCount) "
                + "(strict observation checking; serve with --no-strict-observations to zero-pad or cut)")
        }
        if layout == .native {
            for cam in checkpointCameras where images[cam] == nil && !cam.contains("empty_camera_") {
                throw ObservationError.missingKey(cam)
            }
        } else {
            for (i, cam) in layout.cameras.enumerated() where Self.lookup(obs, cam.path) == nil {
                if target(forLayoutCamera: i, name: cam.name) != nil { throw ObservationError.missingKey(cam.path.joined(separator: "/")) }
            }
        }
    }

    static func lookup(_ v: NumpyValue, _ path: [String]) -> NumpyValue? {
        var cur: NumpyValue? = v
        for p in path { cur = cur?[p] }
        return cur
    }

    static func floats(_ v: NumpyValue, key: String) throws -> [Float] {
        switch v {
        case .array(let a):
            do { return try a.floats() } catch { throw ObservationError.badValue(key: key, reason: "\(error)") }
        case .scalar(let s): return [Float(s.double())]
        case .list(let items): return try items.flatMap { try floats($0, key: key) }
        case .value(let x):
            guard let d = x.doubleValue else { throw ObservationError.badValue(key: key, reason: "expected numbers") }
            return [Float(d)]
        case .map: throw ObservationError.badValue(key: key, reason: "expected an array, got a map")
        }
    }

    /// An image array: uint8 (or float in [0, 1], converted as uint8(255·x) like openpi) HWC or CHW with 3 channels.
    static func frame(_ v: NumpyValue, key: String, strict: Bool = false) throws -> CameraFrame {
        guard let a = v.ndarray else { throw ObservationError.badValue(key: key, reason: "expected an image array") }
        guard a.shape.count == 3 else { throw ObservationError.badValue(key: key, reason: "expected 3 dimensions (HWC or CHW), got shape \(a.shape)") }
        let chw = a.shape[0] == 3 && a.shape[2] != 3
        guard chw || a.shape[2] == 3 else { throw ObservationError.badValue(key: key, reason: "no 3-channel axis in shape \(a.shape)") }
        let (h, w) = chw ? (a.shape[1], a.shape[2]) : (a.shape[0], a.shape[1])
        let pixels: [UInt8]
        switch a.dtype {
        case "|u1", "<u1": pixels = a.data
        case "<f4", "<f8", ">f4", ">f8", "<f2":
            let f = try a.floats()
            if let bad = f.firstIndex(where: { !$0.isFinite }) { throw ObservationError.badValue(key: key, reason: "non-finite pixel at \(bad)") }
            if strict, let bad = f.firstIndex(where: { $0 < 0 || $0 > 1 }) {
                throw ObservationError.badValue(key: key, reason: "float image value \(f[bad]) at index \(bad) is outside [0, 1] "
                    + "(send uint8 for 0..255 images; strict observation checking)")
            }
            pixels = f.map { UInt8(max(0, min(255, 255 * $0))) }
        default:
            throw ObservationError.badValue(key: key, reason: "unsupported image dtype \(a.dtype) (uint8 or float in [0,1])")
        }
        return CameraFrame(height: h, width: w, layout: chw ? .chw : .hwc, pixels: .uint8(pixels))
    }
}
