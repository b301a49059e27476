// The local Hugging Face hub cache, laid out as huggingface_hub writes it: $HF_HUB_CACHE, else
// $HF_HOME/hub, else ~/.cache/huggingface/hub, with models--ORG--NAME/snapshots/<revision>/ folders and
// refs/main naming the current revision. Reading it needs no network; `HubDownload` fills it.
import Foundation

public enum HubCache {
    /// The cache folder the environment selects.
    public static var directory: String {
        let env = ProcessInfo.processInfo.environment
        if let c = env["HF_HUB_CACHE"] { return c }
        if let h = env["HF_HOME"] { return (h as NSString).appendingPathComponent("hub") }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".cache/huggingface/hub")
    }

    /// The snapshot folder of `id` ("ORG/NAME") in the cache: the revision refs/main names when it is
    /// there, else the newest snapshot; nil when the model is not cached.
    public static func snapshot(_ id: String, cache: String = HubCache.directory) -> String? {
        let parts = id.split(separator: "/")
        guard parts.count == 2 else { return nil }
        let repo = (cache as NSString).appendingPathComponent("models--\(parts[0])--\(parts[1])")
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
}
