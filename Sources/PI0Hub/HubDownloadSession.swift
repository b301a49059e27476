// The per-file work of `HubDownload`: metadata (HEAD), the resumable verified transfer, the cache links.
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation

public enum HubDownloadError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidRepoID(String)
    case invalidRevision(String)
    case invalidEndpoint(String)
    case invalidFileName(file: String, reason: String)
    /// 401/403: a gated or private repo and no token, or a token without access.
    case unauthorized(repo: String, file: String, status: Int, hadToken: Bool)
    /// The hub does not know the repo (it answers 401 or 404 for a repo that does not exist or is private).
    case repoNotFound(repo: String, status: Int, hadToken: Bool)
    case revisionNotFound(repo: String, revision: String)
    case fileNotFound(repo: String, revision: String, file: String)
    case httpError(repo: String, file: String, status: Int, url: String)
    /// The server could not be reached, or the connection broke (after the retries).
    case network(url: String, reason: String)
    /// The server answered in a way the hub protocol does not allow (missing X-Repo-Commit, wrong Content-Range...).
    case badResponse(url: String, reason: String)
    /// The content's SHA-256 is not the one the hub announced; the bad download was deleted.
    case checksumMismatch(repo: String, file: String, expected: String, actual: String)
    case badProcessorConfig(file: String, reason: String)
    case fileSystem(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidRepoID(let r): return "'\(r)' is not a Hugging Face model id of the form ORG/NAME"
        case .invalidRevision(let r): return "'\(r)' is not a valid revision (branch, tag or commit hash)"
        case .invalidEndpoint(let e): return "endpoint '\(e)' is not an http(s) URL"
        case .invalidFileName(let f, let why): return "file name '\(f)' is not allowed: \(why)"
        case .unauthorized(let repo, let file, let status, let hadToken):
            let fix = hadToken
                ? "the token given (HF_TOKEN) has no access to it: accept the model's license at https://huggingface.co/\(repo) with that account, or use a token of an account that has"
                : "set HF_TOKEN to an access token (https://huggingface.co/settings/tokens) of an account that accepted the model's license at https://huggingface.co/\(repo)"
            return "access to \(repo) denied (HTTP \(status)) while fetching \(file): the repository is gated or private; \(fix)"
        case .repoNotFound(let repo, let status, let hadToken):
            return "repository \(repo) not found on the hub (HTTP \(status))"
                + (hadToken ? "; check the name and that the token has access to it" : "; check the name, or set HF_TOKEN if it is private")
        case .revisionNotFound(let repo, let rev): return "revision '\(rev)' not found in \(repo)"
        case .fileNotFound(let repo, let rev, let file): return "file \(file) not found in \(repo) at revision \(rev) (HTTP 404)"
        case .httpError(let repo, let file, let status, let url): return "HTTP \(status) fetching \(file) of \(repo) (\(url))"
        case .network(let url, let why):
            return "cannot download \(url): \(why). Check the network connection (and proxy settings), or set HF_ENDPOINT to a reachable mirror; a partial download resumes when run again"
        case .badResponse(let url, let why): return "unexpected answer from \(url): \(why)"
        case .checksumMismatch(let repo, let file, let expected, let actual):
            return "\(file) of \(repo) is corrupt: SHA-256 \(actual), the hub announced \(expected); the download was deleted, run again"
        case .badProcessorConfig(let file, let why): return "\(file): \(why)"
        case .fileSystem(let path, let why): return "\(path): \(why)"
        }
    }
}

extension HubDownloadError: LocalizedError {
    public var errorDescription: String? { description }
}

/// The hub's answer to HEAD .../resolve/{rev}/{file}.
struct HubFileMetadata {
    let commit: String
    let etag: String
    let size: Int64?
    let downloadURL: URL
    var isSHA256: Bool { etag.count == 64 && etag.allSatisfy { $0.isHexDigit } }
}

/// The state of one `download` call (used by one task only).
final class Session {
    let repo: String, endpoint: String, token: String?, retries: Int, timeout: TimeInterval
    let repoDir: String
    let progress: (@Sendable (HubDownloadEvent) -> Void)?
    /// The commit of the first file; later files are asked for by this hash.
    private(set) var commit: String?

    init(repo: String, endpoint: String, token: String?, retries: Int, timeout: TimeInterval, repoDir: String,
         progress: (@Sendable (HubDownloadEvent) -> Void)?) {
        (self.repo, self.endpoint, self.token, self.retries, self.timeout) = (repo, endpoint, token, retries, timeout)
        (self.repoDir, self.progress) = (repoDir, progress)
    }

    /// Brings `file` into the cache and links it into the snapshot; returns the blob path, or nil for an
    /// optional file the repo does not have.
    func fetch(_ file: String, revision: String, optional: Bool) async throws -> String? {
        if let why = HubDownload.invalidFileNameReason(file) { throw HubDownloadError.invalidFileName(file: file, reason: why) }
        let asked = commit ?? revision
        guard let meta = try await metadata(file, revision: asked, optional: optional) else {
            progress?(.skipped(file: file))
            return nil
        }
        if commit == nil { commit = meta.commit }
        let blobs = (repoDir as NSString).appendingPathComponent("blobs")
        let blob = (blobs as NSString).appendingPathComponent(meta.etag)
        let fm = FileManager.default
        func cached() -> Bool {
            guard let size = Self.fileSize(blob), meta.size == nil || meta.size == size else { return false }
            progress?(.cached(file: file, size: size))
            return true
        }
        if !cached() {
            do { try fm.createDirectory(atPath: blobs, withIntermediateDirectories: true) } catch {
                throw HubDownloadError.fileSystem(path: blobs, reason: "cannot create the cache folder: \(error.localizedDescription)")
            }
            let lockPath = ((repoDir as NSString).deletingLastPathComponent as NSString)
                .appendingPathComponent(".locks/\((repoDir as NSString).lastPathComponent)/\(meta.etag).lock")
            let lock = try await BlobLock.acquire(lockPath) { progress?(.waitingForLock(file: file, lockPath: lockPath)) }
            defer { lock.release() }
            // Whoever held the lock may have finished this blob.
            if !cached() { try await transfer(file, meta: meta, blob: blob) }
        }
        try link(file, etag: meta.etag, commit: commit ?? meta.commit)
        return blob
    }

    // MARK: metadata

    func resolveURL(_ file: String, revision: String) -> URL {
        var pathChars = CharacterSet.urlPathAllowed
        pathChars.remove(charactersIn: ";?#%")
        var revChars = pathChars
        revChars.remove("/")  // "refs/pr/1" is one path segment, as huggingface_hub quotes it (safe="")
        let rev = revision.addingPercentEncoding(withAllowedCharacters: revChars) ?? revision
        let f = file.addingPercentEncoding(withAllowedCharacters: pathChars) ?? file
        return URL(string: "\(endpoint)/\(repo)/resolve/\(rev)/\(f)")!
    }

    private func request(_ url: URL, method: String) -> URLRequest {
        var r = URLRequest(url: url)
        r.httpMethod = method
        r.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        r.setValue("pi0-swift/1 (huggingface_hub-compatible downloader)", forHTTPHeaderField: "User-Agent")
        // The token goes only to the hub itself, never to the CDN a file is redirected to.
        if let token, url.host == URL(string: endpoint)?.host { r.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return r
    }

    func metadata(_ file: String, revision: String, optional: Bool) async throws -> HubFileMetadata? {
        var url = resolveURL(file, revision: revision)
        for _ in 0..<6 {
            let resp: HTTPURLResponse
            do { resp = try await HubTransfer.run(request(url, method: "HEAD"), followRedirects: false, sink: nil, timeout: timeout) }
            catch HubTransfer.Failure.network(let e, _) { throw Self.networkError(url, e) }
            let status = resp.statusCode
            if (300..<400).contains(status) {
                guard let loc = Self.header(resp, "Location"), let next = URL(string: loc, relativeTo: url)?.absoluteURL else {
                    throw HubDownloadError.badResponse(url: url.absoluteString, reason: "HTTP \(status) without a Location")
                }
                // As huggingface_hub (utils/_http.py `_httpx_follow_hub_redirects_with_backoff`): a redirect to the
                // same host or a hub host (a renamed repo, the resolve-cache) is followed for the metadata; one to
                // another host (the CDN, a signed URL) carries the file's metadata and points at the content.
                if Self.isHubHost(next, from: url) { url = next; continue }
                return try Self.makeMetadata(resp, url: url, downloadURL: next, size: Self.header(resp, "X-Linked-Size"))
            }
            if (200..<300).contains(status) {
                return try Self.makeMetadata(resp, url: url, downloadURL: url,
                                             size: Self.header(resp, "X-Linked-Size") ?? Self.header(resp, "Content-Length"))
            }
            let code = Self.header(resp, "X-Error-Code")
            if status == 404, optional, code == nil || code == "EntryNotFound" { return nil }
            throw statusError(status, code: code, file: file, revision: revision, url: url)
        }
        throw HubDownloadError.badResponse(url: url.absoluteString, reason: "too many redirects")
    }

    /// huggingface_hub's constants.HF_URL_HOSTS (the hub's own hosts) plus the host asked.
    static let hubHosts: Set<String> = ["hf.co", "huggingface.co", "hub-ci.huggingface.co"]

    static func isHubHost(_ target: URL, from url: URL) -> Bool {
        guard let t = target.host?.lowercased() else { return true }
        return t == url.host?.lowercased() || hubHosts.contains(t)
    }

    func statusError(_ status: Int, code: String?, file: String, revision: String, url: URL) -> HubDownloadError {
        switch (status, code) {
        case (_, "RepoNotFound"): return .repoNotFound(repo: repo, status: status, hadToken: token != nil)
        case (_, "RevisionNotFound"): return .revisionNotFound(repo: repo, revision: revision)
        case (401, _), (403, _): return .unauthorized(repo: repo, file: file, status: status, hadToken: token != nil)
        case (404, _): return .fileNotFound(repo: repo, revision: revision, file: file)
        default: return .httpError(repo: repo, file: file, status: status, url: url.absoluteString)
        }
    }

    static func makeMetadata(_ resp: HTTPURLResponse, url: URL, downloadURL: URL, size: String?) throws -> HubFileMetadata {
        guard let commit = header(resp, "X-Repo-Commit"), isSafeName(commit) else {
            throw HubDownloadError.badResponse(url: url.absoluteString, reason: "no usable X-Repo-Commit header (is this a Hugging Face hub endpoint?)")
        }
        guard let raw = header(resp, "X-Linked-Etag") ?? header(resp, "ETag") else {
            throw HubDownloadError.badResponse(url: url.absoluteString, reason: "no ETag header")
        }
        var etag = raw.trimmingCharacters(in: .whitespaces)
        if etag.hasPrefix("W/") { etag.removeFirst(2) }
        etag = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard isSafeName(etag) else { throw HubDownloadError.badResponse(url: url.absoluteString, reason: "unusable ETag '\(raw)'") }
        return HubFileMetadata(commit: commit, etag: etag.count == 64 ? etag.lowercased() : etag,
                               size: size.flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }, downloadURL: downloadURL)
    }

    /// Etags and commits become file names: letters, digits, '-', '_', '.' only.
    static func isSafeName(_ s: String) -> Bool {
        !s.isEmpty && s != "." && s != ".." && s.count <= 200
            && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
    }

    static func header(_ r: HTTPURLResponse, _ name: String) -> String? {
        for (k, v) in r.allHeaderFields {
            if let k = k as? String, k.caseInsensitiveCompare(name) == .orderedSame { return v as? String ?? "\(v)" }
        }
        return nil
    }

    static func networkError(_ url: URL, _ e: URLError) -> HubDownloadError {
        let why: String
        switch e.code {
        case .cannotFindHost, .dnsLookupFailed: why = "host \(url.host ?? "?") not found"
        case .cannotConnectToHost: why = "connection to \(url.host ?? "?") refused or unreachable"
        case .notConnectedToInternet: why = "no network connection"
        case .timedOut: why = "timed out"
        case .networkConnectionLost: why = "the connection was lost"
        default: why = e.localizedDescription
        }
        return .network(url: url.absoluteString, reason: why)
    }

    static func fileSize(_ path: String) -> Int64? {
        guard let a = try? FileManager.default.attributesOfItem(atPath: path), (a[.type] as? FileAttributeType) == .typeRegular
        else { return nil }
        return (a[.size] as? NSNumber)?.int64Value
    }
}
