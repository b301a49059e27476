// Finding checkpoints and tokenizers: a local folder, or a Hugging Face id ("ORG/NAME") resolved from
// the local hub cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub:
// models--ORG--NAME/snapshots/<revision>/, the revision named by refs/main when present).
import Foundation

public enum CheckpointLocator {
    public static var hubCache: String {
        let env = ProcessInfo.processInfo.environment
        if let c = env["HF_HUB_CACHE"] { return c }
        if let h = env["HF_HOME"] { return (h as NSString).appendingPathComponent("hub") }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".cache/huggingface/hub")
    }

    /// The snapshot folder of `id` in the hub cache, or nil.
    public static func cachedSnapshot(_ id: String) -> String? {
        let parts = id.split(separator: "/")
        guard parts.count == 2 else { return nil }
        let repo = (hubCache as NSString).appendingPathComponent("models--\(parts[0])--\(parts[1])")
        let snapshots = (repo as NSString).appendingPathComponent("snapshots")
        let fm = FileManager.default
        if let ref = try? String(contentsOfFile: (repo as NSString).appendingPathComponent("refs/main"), encoding: .utf8) {
            let p = (snapshots as NSString).appendingPathComponent(ref.trimmingCharacters(in: .whitespacesAndNewlines))
            if fm.fileExists(atPath: p) { return p }
        }
        guard let revs = try? fm.contentsOfDirectory(atPath: snapshots), !revs.isEmpty else { return nil }
        // Newest snapshot first.
        let sorted = revs.map { (snapshots as NSString).appendingPathComponent($0) }.sorted {
            let a = (try? fm.attributesOfItem(atPath: $0)[.modificationDate] as? Date) ?? .distantPast
            let b = (try? fm.attributesOfItem(atPath: $1)[.modificationDate] as? Date) ?? .distantPast
            return a > b
        }
        return sorted.first
    }

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
