// The resumable, verified transfer of one blob and its snapshot link.
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation

/// Turns byte counts into throttled `.progress` events (at most ~4 a second, plus the last one).
private final class ProgressThrottle: @unchecked Sendable {
    let file: String, total: Int64?, start = Date()
    let emit: (@Sendable (HubDownloadEvent) -> Void)?
    var first: Int64?, last = Date.distantPast, lastBytes: Int64 = -1

    init(file: String, total: Int64?, emit: (@Sendable (HubDownloadEvent) -> Void)?) {
        (self.file, self.total, self.emit) = (file, total, emit)
    }

    func update(_ bytes: Int64, force: Bool = false) {
        guard let emit else { return }
        if first == nil { first = bytes }
        let now = Date()
        guard bytes != lastBytes, force || now.timeIntervalSince(last) >= 0.25 || bytes == total else { return }
        (last, lastBytes) = (now, bytes)
        let elapsed = max(now.timeIntervalSince(start), 1e-3)
        emit(.progress(file: file, bytes: bytes, total: total, bytesPerSecond: Double(bytes - (first ?? 0)) / elapsed))
    }
}

extension Session {
    /// Downloads `meta.downloadURL` to `blob` via `blob.incomplete`, resuming what a previous run left and
    /// retrying a broken connection up to `retries` times; checks the size and (LFS files) the SHA-256.
    func transfer(_ file: String, meta: HubFileMetadata, blob: String) async throws {
        let partial = blob + ".incomplete"
        let fm = FileManager.default
        var attempt = 0
        while true {
            var existing = Self.fileSize(partial) ?? 0
            if let total = meta.size, existing > total {
                try? fm.removeItem(atPath: partial)  // longer than the file: not ours to trust
                existing = 0
            }
            if let total = meta.size, total > 0, existing == total {
                // A previous run got every byte but stopped before the check.
                try finalize(file, meta: meta, partial: partial, blob: blob, size: existing, sha: try Self.hashFile(partial))
                return
            }
            var req = URLRequest(url: meta.downloadURL)
            req.httpMethod = "GET"
            req.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
            req.setValue("pi0-swift/1 (huggingface_hub-compatible downloader)", forHTTPHeaderField: "User-Agent")
            if let token, meta.downloadURL.host == URL(string: endpoint)?.host {
                req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
            }
            if existing > 0 { req.setValue("bytes=\(existing)-", forHTTPHeaderField: "Range") }
            let throttle = ProgressThrottle(file: file, total: meta.size, emit: progress)
            let writer = BlobWriter(path: partial, resumeFrom: existing) { throttle.update($0) }
            progress?(.started(file: file, resumingAt: existing, total: meta.size))
            let resp: HTTPURLResponse
            do {
                resp = try await HubTransfer.run(req, followRedirects: true, sink: writer, timeout: timeout)
            } catch HubTransfer.Failure.network(let e, let afterResponse) {
                writer.close()
                // Only a transfer that had started is worth resuming; an unreachable host fails at once.
                if afterResponse, attempt < retries {
                    attempt += 1
                    progress?(.retrying(file: file, attempt: attempt, reason: Self.networkError(meta.downloadURL, e).description))
                    try await Task.sleep(nanoseconds: UInt64(attempt) * 300_000_000)
                    continue
                }
                throw Self.networkError(meta.downloadURL, e)
            } catch HubTransfer.Failure.sink(let e) {
                writer.close()
                throw e
            }
            if resp.statusCode == 416, existing > 0 {
                // Range not satisfiable: the partial file does not fit this blob; start over once more.
                writer.close()
                try? fm.removeItem(atPath: partial)
                attempt += 1
                if attempt > retries { throw HubDownloadError.badResponse(url: meta.downloadURL.absoluteString, reason: "HTTP 416 for bytes=\(existing)-") }
                continue
            }
            guard (200..<300).contains(resp.statusCode) else {
                writer.close()
                throw statusError(resp.statusCode, code: Self.header(resp, "X-Error-Code"), file: file,
                                  revision: commit ?? meta.commit, url: meta.downloadURL)
            }
            let sha = try writer.finish()
            throttle.update(writer.size, force: true)
            if let total = meta.size, writer.size < total {
                // The body ended early without an error from the transport: resume like a broken connection.
                if attempt < retries {
                    attempt += 1
                    progress?(.retrying(file: file, attempt: attempt, reason: "got \(writer.size) of \(total) bytes"))
                    continue
                }
                throw HubDownloadError.network(url: meta.downloadURL.absoluteString, reason: "the body ended after \(writer.size) of \(total) bytes")
            }
            try finalize(file, meta: meta, partial: partial, blob: blob, size: writer.size, sha: sha)
            return
        }
    }

    /// Checks size and SHA-256 (LFS files), then renames `partial` to `blob`; a bad file is deleted.
    private func finalize(_ file: String, meta: HubFileMetadata, partial: String, blob: String, size: Int64, sha: String) throws {
        let fm = FileManager.default
        if let total = meta.size, size != total {
            try? fm.removeItem(atPath: partial)
            throw HubDownloadError.badResponse(url: meta.downloadURL.absoluteString,
                                               reason: "\(file) has \(size) bytes, the hub announced \(total); the download was deleted")
        }
        if meta.isSHA256, sha != meta.etag {
            try? fm.removeItem(atPath: partial)
            throw HubDownloadError.checksumMismatch(repo: repo, file: file, expected: meta.etag, actual: sha)
        }
        do {
            if fm.fileExists(atPath: blob) { try fm.removeItem(atPath: blob) }
            try fm.moveItem(atPath: partial, toPath: blob)
        } catch { throw HubDownloadError.fileSystem(path: blob, reason: "cannot move the download into place: \(error.localizedDescription)") }
        progress?(.finished(file: file, size: size, verified: meta.isSHA256))
    }

    /// snapshots/<commit>/<file> → ../../blobs/<etag> (one more ../ per sub-folder of `file`), as huggingface_hub.
    func link(_ file: String, etag: String, commit: String) throws {
        let fm = FileManager.default
        let path = (repoDir as NSString).appendingPathComponent("snapshots/\(commit)/\(file)")
        let depth = file.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth + 2) + "blobs/" + etag
        do {
            try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if (try? fm.attributesOfItem(atPath: path)) != nil {
                if (try? fm.destinationOfSymbolicLink(atPath: path)) == target { return }
                try fm.removeItem(atPath: path)
            }
            try fm.createSymbolicLink(atPath: path, withDestinationPath: target)
        } catch { throw HubDownloadError.fileSystem(path: path, reason: "cannot link the snapshot file: \(error.localizedDescription)") }
    }

    static func hashFile(_ path: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw HubDownloadError.fileSystem(path: path, reason: "cannot read") }
        defer { try? h.close() }
        var s = SHA256()
        while let chunk = try h.read(upToCount: 1 << 22), !chunk.isEmpty {
            chunk.withUnsafeBytes { s.update($0.bindMemory(to: UInt8.self)) }
        }
        return SHA256.hex(s.finalize())
    }
}
