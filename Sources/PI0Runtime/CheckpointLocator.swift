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
        throw PolicyError.checkpointNotFound(notFoundMessage(spec))
    }

    /// The right next step for a checkpoint that was not found: a download only for something shaped like
    /// a hub id (ORG/NAME), never for a path.
    static func notFoundMessage(_ spec: String) -> String {
        if FileManager.default.fileExists(atPath: spec) {
            return "checkpoint '\(spec)' is a file; pass the folder that holds config.json and model.safetensors"
        }
        let parts = spec.split(separator: "/", omittingEmptySubsequences: false)
        let idChars = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_."))
        let looksLikeID = parts.count == 2 && parts.allSatisfy { p in
            !p.isEmpty && p != "." && p != ".." && !p.hasPrefix(".") && p.unicodeScalars.allSatisfy(idChars.contains)
        } && !spec.hasPrefix("~")
        if looksLikeID {
            return "checkpoint '\(spec)' is not a folder here and not in the local Hugging Face cache (\(hubCache)); "
                + "download it with `pi0 download \(spec)`, or pass a folder"
        }
        return "checkpoint folder '\(spec)' does not exist"
    }

    /// `tokenizer.model` next to the checkpoint, else PaliGemma's in the hub cache (`pi0 download --tokenizer`),
    /// else the copy openpi caches ($OPENPI_DATA_HOME or ~/.cache/openpi, big_vision/paligemma_tokenizer.model).
    public static func defaultTokenizer(near dir: String) -> String? {
        let local = (dir as NSString).appendingPathComponent("tokenizer.model")
        if FileManager.default.fileExists(atPath: local) { return local }
        if let snap = cachedSnapshot("google/paligemma-3b-pt-224") {
            let p = (snap as NSString).appendingPathComponent("tokenizer.model")
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        let openpi = ProcessInfo.processInfo.environment["OPENPI_DATA_HOME"]
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/openpi")
        let p = (openpi as NSString).appendingPathComponent("big_vision/paligemma_tokenizer.model")
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }
}
