// `pi0 download ORG/NAME`: fetching a π0 checkpoint from the Hugging Face hub into the same cache layout
// huggingface_hub writes (so `HubCache`, LeRobot and `hf` all find it):
//   models--ORG--NAME/blobs/<etag>                 file content (LFS files: etag = SHA-256 of the content)
//   models--ORG--NAME/snapshots/<commit>/<file>    relative symlink to ../../blobs/<etag>
//   models--ORG--NAME/refs/<revision>              the commit hash
//   .locks/models--ORG--NAME/<etag>.lock           flock held while a blob is written
// Protocol as huggingface_hub's `hf_hub_download` (file_download.py): HEAD {endpoint}/{repo}/resolve/{rev}/{file}
// without following redirects gives X-Repo-Commit, X-Linked-Etag/ETag and X-Linked-Size/Content-Length; the
// content comes from the redirect's Location (the CDN) or the same URL. Downloads go to blobs/<etag>.incomplete
// and resume with `Range: bytes=N-`; LFS blobs are checked against their SHA-256 before they are renamed.
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation

/// What `HubDownload.download` reports while it works.
public enum HubDownloadEvent: Sendable {
    /// The blob was already in the cache.
    case cached(file: String, size: Int64)
    /// A transfer starts; `resumingAt` > 0 when a partial download is continued.
    case started(file: String, resumingAt: Int64, total: Int64?)
    /// Bytes on disk so far (throttled to a few per second), with the rate of this transfer.
    case progress(file: String, bytes: Int64, total: Int64?, bytesPerSecond: Double)
    /// The file is in the cache; `verified` when its SHA-256 was checked against the hub's.
    case finished(file: String, size: Int64, verified: Bool)
    /// An optional file the repo does not have.
    case skipped(file: String)
    /// Another process is downloading this blob (it holds the lock); waiting for it.
    case waitingForLock(file: String, lockPath: String)
    /// A transfer broke and is tried again from where it stopped.
    case retrying(file: String, attempt: Int, reason: String)
}

public enum HubDownload {
    /// `$HF_ENDPOINT` or https://huggingface.co.
    public static var defaultEndpoint: String {
        ProcessInfo.processInfo.environment["HF_ENDPOINT"] ?? "https://huggingface.co"
    }

    /// `$HF_TOKEN` (or the legacy `$HUGGING_FACE_HUB_TOKEN`), else the token `hf auth login` stored
    /// (`$HF_TOKEN_PATH`, `$HF_HOME/token` or ~/.cache/huggingface/token), as huggingface_hub looks it up.
    public static var defaultToken: String? {
        let env = ProcessInfo.processInfo.environment
        for k in ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"] { if let t = env[k], !t.isEmpty { return t } }
        let path = env["HF_TOKEN_PATH"]
            ?? env["HF_HOME"].map { ($0 as NSString).appendingPathComponent("token") }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/huggingface/token")
        let t = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return (t?.isEmpty ?? true) ? nil : t
    }

    /// Processor pipelines LeRobot saves next to the model (optional: older checkpoints have none).
    public static let processorFiles = ["policy_preprocessor.json", "policy_postprocessor.json"]

    /// Downloads a π0 checkpoint (or exactly `files`) and returns its snapshot folder.
    ///
    /// Default files: `config.json` and `model.safetensors` (required), `policy_preprocessor.json` and
    /// `policy_postprocessor.json` (optional) with every `state_file` their steps name (required once named),
    /// and `tokenizer.model` (optional). With `files` given, exactly those, all required.
    /// - Parameters:
    ///   - retries: how many times a transfer that broke off is resumed before giving up.
    ///   - timeout: seconds without data before a request counts as failed.
    public static func download(
        repo: String, revision: String = "main", files: [String]? = nil,
        endpoint: String = HubDownload.defaultEndpoint, token: String? = HubDownload.defaultToken,
        cache: String = HubCache.directory, retries: Int = 3, timeout: TimeInterval = 60,
        progress: (@Sendable (HubDownloadEvent) -> Void)? = nil
    ) async throws -> String {
        let parts = repo.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\\") }) else {
            throw HubDownloadError.invalidRepoID(repo)
        }
        guard !revision.isEmpty, !revision.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            throw HubDownloadError.invalidRevision(revision)
        }
        var base = endpoint
        while base.hasSuffix("/") { base.removeLast() }
        guard let endpointURL = URL(string: base), let scheme = endpointURL.scheme?.lowercased(),
              scheme == "http" || scheme == "https", endpointURL.host != nil else {
            throw HubDownloadError.invalidEndpoint(endpoint)
        }
        let session = Session(repo: repo, endpoint: base, token: token, retries: max(0, retries), timeout: timeout,
                              repoDir: (cache as NSString).appendingPathComponent("models--\(parts[0])--\(parts[1])"),
                              progress: progress)
        func fetch(_ file: String, optional: Bool) async throws -> String? {
            try await session.fetch(file, revision: revision, optional: optional)
        }

        if let files {
            guard !files.isEmpty else { throw HubDownloadError.invalidFileName(file: "", reason: "no files asked for") }
            for f in files { _ = try await fetch(f, optional: false) }
        } else {
            _ = try await fetch("config.json", optional: false)
            var stateFiles: [String] = []
            for p in processorFiles {
                guard let blob = try await fetch(p, optional: true) else { continue }
                for s in try processorStateFiles(blobPath: blob, file: p) where !stateFiles.contains(s) { stateFiles.append(s) }
            }
            for s in stateFiles { _ = try await fetch(s, optional: false) }
            _ = try await fetch("tokenizer.model", optional: true)
            _ = try await fetch("model.safetensors", optional: false)
        }
        guard let commit = session.commit else {
            throw HubDownloadError.invalidFileName(file: "", reason: "nothing was downloaded")
        }
        let snapshot = (session.repoDir as NSString).appendingPathComponent("snapshots/\(commit)")
        // refs/<revision> → commit, unless the revision already is the commit (huggingface_hub does the same).
        if revision != commit {
            let ref = (session.repoDir as NSString).appendingPathComponent("refs/\(revision)")
            do {
                try FileManager.default.createDirectory(atPath: (ref as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try commit.write(toFile: ref, atomically: true, encoding: .utf8)
            } catch { throw HubDownloadError.fileSystem(path: ref, reason: "\(error.localizedDescription)") }
        }
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        return snapshot
    }

    /// The `state_file` names of a LeRobot processor JSON's steps, validated as plain relative file names.
    static func processorStateFiles(blobPath: String, file: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: blobPath) else {
            throw HubDownloadError.badProcessorConfig(file: file, reason: "cannot read the downloaded file")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw HubDownloadError.badProcessorConfig(file: file, reason: "not a JSON object")
        }
        guard let steps = root["steps"] as? [Any] else {
            throw HubDownloadError.badProcessorConfig(file: file, reason: "no \"steps\" array")
        }
        var out: [String] = []
        for (i, step) in steps.enumerated() {
            guard let dict = step as? [String: Any] else {
                throw HubDownloadError.badProcessorConfig(file: file, reason: "steps[\(i)] is not an object")
            }
            guard let sf = dict["state_file"], !(sf is NSNull) else { continue }
            guard let name = sf as? String else {
                throw HubDownloadError.badProcessorConfig(file: file, reason: "steps[\(i)].state_file is not a string")
            }
            if let why = invalidFileNameReason(name) {
                throw HubDownloadError.badProcessorConfig(file: file, reason: "steps[\(i)].state_file '\(name)': \(why)")
            }
            out.append(name)
        }
        return out
    }

    /// Why `name` cannot be a repo file path (nil when fine): it must stay inside the snapshot folder.
    static func invalidFileNameReason(_ name: String) -> String? {
        if name.isEmpty { return "empty name" }
        if name.hasPrefix("/") { return "absolute path" }
        if name.contains("\\") || name.contains("\0") { return "backslash or NUL in the name" }
        if name.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            return "empty, '.' or '..' path component"
        }
        return nil
    }
}
