// Everything about a policy call that is knowable before a single weight is read: the checkpoint folder
// and its config.json, the processor statistics, the tokenizer, the camera names and the state length.
// `pi0 run`, `pi0 serve` and `pi0 demo` check these first, so a typo fails in milliseconds instead of after
// a full-size load (docs/CLI.md "Checks before loading").
import Foundation
import PI0

public struct PolicyPreflight: Sendable {
    public let directory: String
    public let config: PI0Config
    /// Camera feature names as `PI0Policy.cameraNames` will have them (LeRobot's empty cameras appended).
    public let cameraNames: [String]
    public let stateDim: Int
    /// The tokenizer a `PI0Policy` built with the same arguments will use, or nil.
    public let tokenizerPath: String?
    let stats: NormalizationStats?

    /// How to get PaliGemma's tokenizer; every "no tokenizer" message ends with it.
    public static let tokenizerHelp =
        "get PaliGemma's tokenizer.model with `pi0 download --tokenizer` (needs HF_TOKEN: the repository is gated) "
        + "or from openpi's public copy (docs/TOKENIZER.md), then put it next to the checkpoint or pass --tokenizer PATH"

    /// Reads `config.json` and the processor files of `checkpoint` (a folder or a cached hub id) and finds the
    /// tokenizer (`tokenizer` when given, which must be a readable file).
    public init(checkpoint: String, tokenizer: String? = nil) throws {
        directory = try CheckpointLocator.resolve(checkpoint)
        let configPath = (directory as NSString).appendingPathComponent("config.json")
        for path in [configPath, (directory as NSString).appendingPathComponent("model.safetensors")] {
            guard FileManager.default.fileExists(atPath: path) else { throw CheckpointError.missingFile(path: path) }
        }
        config = try PI0Config.load(path: configPath)
        stats = try NormalizationStats.loadIfPresent(checkpointDirectory: directory)
        if let tokenizer {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: tokenizer, isDirectory: &isDir), !isDir.boolValue,
                  FileManager.default.isReadableFile(atPath: tokenizer) else {
                throw PolicyError.noTokenizer(reason: "\(tokenizer): no such readable file; " + Self.tokenizerHelp)
            }
            tokenizerPath = tokenizer
        } else {
            tokenizerPath = CheckpointLocator.defaultTokenizer(near: directory)
        }
        cameraNames = Self.cameraNames(config)
        stateDim = config.stateDim ?? config.maxStateDim
    }

    /// The config's cameras plus the `empty_camera_i` features LeRobot's validate_features adds.
    public static func cameraNames(_ config: PI0Config) -> [String] {
        var cams = config.cameraNames
        for i in 0..<config.emptyCameras where !cams.contains("observation.images.empty_camera_\(i)") {
            cams.append("observation.images.empty_camera_\(i)")
        }
        return cams
    }

    /// The full camera name for a user-given one (`top` or `observation.images.top`), as `PI0Policy.resolveCamera`.
    public func resolveCamera(_ name: String) throws -> String {
        if cameraNames.contains(name) { return name }
        if let m = cameraNames.first(where: { $0 == "observation.images." + name }) { return m }
        throw PolicyError.unknownCamera(name: name, known: cameraNames)
    }

    /// A state of `count` values fits the checkpoint's config and its normaliser statistics.
    public func checkState(count: Int) throws {
        guard count == stateDim else {
            throw PolicyError.badState(reason: "expected \(stateDim) values for this checkpoint (config.json input_features), got \(count)")
        }
        _ = try stats?.normalizeState([Float](repeating: 0, count: count))
    }

    /// The tokenizer path, or an error saying how to get one.
    public func requireTokenizer() throws -> String {
        guard let tokenizerPath else {
            throw PolicyError.noTokenizer(reason: "no tokenizer.model next to the checkpoint (\(directory)) "
                                          + "or of google/paligemma-3b-pt-224 in the Hugging Face cache; " + Self.tokenizerHelp)
        }
        return tokenizerPath
    }
}
