// Finding checkpoints and tokenizers: a local folder, or a Hugging Face id ("ORG/NAME") resolved from
// the local hub cache (`HubCache` in PI0Hub; nothing is downloaded here, see `pi0 download`).
import Foundation
import PI0Hub

public enum CheckpointLocator {
    /// The local Hugging Face hub cache folder (`HubCache.directory`).
    public static var hubCache: String { HubCache.directory }

    /// The snapshot folder of `id` in the hub cache, or nil (`HubCache.snapshot`).
    public static func cachedSnapshot(_ id: String) -> String? { HubCache.snapshot(id) }

    /// A checkpoint folder for a path or a hub id.
    public static func resolve(_ spec: String) throws -> String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: spec, isDirectory: &isDir), isDir.boolValue { return spec }
        if let snap = cachedSnapshot(spec) { return snap }
        throw PolicyError.checkpointNotFound(
            "checkpoint '\(spec)' is neither a folder nor a Hugging Face id in the local cache (\(hubCache)); "
            + "download it with `pi0 download \(spec)` or pass a folder")
    }

    /// `tokenizer.model` next to the checkpoint, else PaliGemma's in the hub cache.
    public static func defaultTokenizer(near dir: String) -> String? {
        let local = (dir as NSString).appendingPathComponent("tokenizer.model")
        if FileManager.default.fileExists(atPath: local) { return local }
        if let snap = cachedSnapshot("google/paligemma-3b-pt-224") {
            let p = (snap as NSString).appendingPathComponent("tokenizer.model")
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        return nil
    }
}
