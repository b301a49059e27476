// One HTTP exchange with URLSession, bridged to async/await, with the body streamed to disk.
// Linux's FoundationNetworking (libcurl) has no `bytes(for:)`/`download(for:)` async APIs and its download
// task keeps its own temporary file, so a URLSessionDataDelegate receives the body chunk by chunk and a
// `BlobWriter` appends it to `blobs/<etag>.incomplete` while hashing (memory stays at one chunk).
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation

/// Where a response body goes: decides on the response (200 → start over, 206 → append) and writes chunks.
protocol BodySink: AnyObject {
    /// Called once with the final (non-redirect) response; throwing cancels the transfer.
    func begin(_ response: HTTPURLResponse) throws
    func write(_ data: Data) throws
}

/// Delegate of one task. Callbacks arrive on a serial queue; `lock` guards the state read by `run`.
final class HubTransfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    private let lock = NSLock()
    private let followRedirects: Bool
    private let sink: BodySink?
    private var continuation: CheckedContinuation<HTTPURLResponse, Error>?
    private var response: HTTPURLResponse?
    private var sinkError: Error?
    /// True once a final response arrived: a later network error interrupted the body (worth resuming).
    private(set) var gotResponse = false

    private init(followRedirects: Bool, sink: BodySink?) {
        self.followRedirects = followRedirects
        self.sink = sink
    }

    enum Failure: Error {
        /// A URLError; `afterResponse` when the connection broke while the body was streaming.
        case network(URLError, afterResponse: Bool)
        case sink(Error)
    }

    /// Performs `request`; redirects are followed only when `followRedirects` (then the Authorization header
    /// is dropped when the host changes, as huggingface_hub does for its CDN). The body goes to `sink` only for
    /// 2xx final responses; other bodies are discarded. Returns the final response (a 3xx one when not
    /// following redirects).
    static func run(_ request: URLRequest, followRedirects: Bool, sink: BodySink?, timeout: TimeInterval) async throws -> HTTPURLResponse {
        let transfer = HubTransfer(followRedirects: followRedirects, sink: sink)
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        config.timeoutIntervalForResource = 7 * 24 * 3600
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        config.urlCache = nil
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: config, delegate: transfer, delegateQueue: queue)
        defer { session.finishTasksAndInvalidate() }
        let task = session.dataTask(with: request)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<HTTPURLResponse, Error>) in
                transfer.lock.lock()
                transfer.continuation = c
                transfer.lock.unlock()
                task.resume()
            }
        } onCancel: {
            task.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        guard followRedirects else { completionHandler(nil); return }
        var next = request
        // Carry our headers over explicitly (Range, Accept-Encoding, User-Agent), Authorization only to the same host.
        let original = task.originalRequest
        let sameHost = request.url?.host == original?.url?.host
        for (k, v) in original?.allHTTPHeaderFields ?? [:] where sameHost || k.lowercased() != "authorization" {
            next.setValue(v, forHTTPHeaderField: k)
        }
        if !sameHost { next.setValue(nil, forHTTPHeaderField: "Authorization") }
        completionHandler(next)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
        guard let http = response as? HTTPURLResponse else { completionHandler(.cancel); return }
        lock.lock()
        self.response = http
        gotResponse = true
        lock.unlock()
        if (200..<300).contains(http.statusCode), let sink {
            do { try sink.begin(http) } catch {
                lock.lock(); sinkError = error; lock.unlock()
                completionHandler(.cancel)
                return
            }
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        let status = response?.statusCode ?? 0, failed = sinkError != nil
        lock.unlock()
        guard let sink, !failed, (200..<300).contains(status) else { return }
        do { try sink.write(data) } catch {
            lock.lock(); sinkError = error; lock.unlock()
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        let c = continuation
        continuation = nil
        let sinkError = self.sinkError, response = self.response ?? (task.response as? HTTPURLResponse)
        let afterResponse = gotResponse
        lock.unlock()
        guard let c else { return }
        if let sinkError { c.resume(throwing: Failure.sink(sinkError)); return }
        if let error {
            let urlError = (error as? URLError) ?? URLError(.unknown, userInfo: [NSLocalizedDescriptionKey: "\(error)"])
            // A redirect we declined completes as "cancelled" on some platforms: the 3xx response is the answer.
            if !followRedirects, let response, (300..<400).contains(response.statusCode) { c.resume(returning: response); return }
            c.resume(throwing: Failure.network(urlError, afterResponse: afterResponse))
            return
        }
        guard let response else {
            c.resume(throwing: Failure.network(URLError(.badServerResponse), afterResponse: false))
            return
        }
        c.resume(returning: response)
    }
}

/// Appends a body to `path`, hashing as it goes (seeded with the bytes already on disk when resuming).
final class BlobWriter: BodySink, @unchecked Sendable {
    let path: String
    private(set) var hasher = SHA256()
    private(set) var size: Int64
    private let resumeFrom: Int64
    private var handle: FileHandle?
    private let onProgress: (Int64) -> Void
    /// What the file held before this transfer (for the rate).
    private(set) var startSize: Int64 = 0

    /// `resumeFrom`: the bytes already in `path` that were asked for with `Range: bytes=N-`.
    init(path: String, resumeFrom: Int64, onProgress: @escaping (Int64) -> Void) {
        self.path = path
        self.resumeFrom = resumeFrom
        self.size = 0
        self.onProgress = onProgress
    }

    func begin(_ response: HTTPURLResponse) throws {
        let fm = FileManager.default
        if response.statusCode == 206 {
            // Content-Range: bytes START-END/TOTAL must start where our file ends.
            let range = response.value(forHTTPHeaderField: "Content-Range") ?? ""
            guard let start = Self.contentRangeStart(range), start == resumeFrom else {
                throw HubDownloadError.badResponse(url: response.url?.absoluteString ?? "",
                                                   reason: "asked for bytes \(resumeFrom)- but got Content-Range '\(range)'")
            }
            if resumeFrom == 0, !fm.fileExists(atPath: path) { _ = fm.createFile(atPath: path, contents: nil) }
            guard let h = FileHandle(forUpdatingAtPath: path) else {
                throw HubDownloadError.fileSystem(path: path, reason: "cannot open the partial download to resume")
            }
            // Re-hash what is already there so the final digest covers the whole file.
            try h.seek(toOffset: 0)
            var done: Int64 = 0
            while done < resumeFrom {
                let chunk = try h.read(upToCount: Int(min(Int64(1 << 22), resumeFrom - done))) ?? Data()
                if chunk.isEmpty { break }
                chunk.withUnsafeBytes { hasher.update($0.bindMemory(to: UInt8.self)) }
                done += Int64(chunk.count)
            }
            guard done == resumeFrom else {
                throw HubDownloadError.fileSystem(path: path, reason: "partial download shrank while resuming")
            }
            try h.truncate(atOffset: UInt64(resumeFrom))
            try h.seek(toOffset: UInt64(resumeFrom))
            handle = h
            size = resumeFrom
        } else {
            // 200: the server sent the whole file (no Range asked, or Range ignored): start over.
            guard fm.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw HubDownloadError.fileSystem(path: path, reason: "cannot create the download file")
            }
            handle = h
            hasher = SHA256()
            size = 0
        }
        startSize = size
        onProgress(size)
    }

    func write(_ data: Data) throws {
        guard let handle else { return }
        do { try handle.write(contentsOf: data) } catch {
            throw HubDownloadError.fileSystem(path: path, reason: "write failed: \(error.localizedDescription)")
        }
        data.withUnsafeBytes { hasher.update($0.bindMemory(to: UInt8.self)) }
        size += Int64(data.count)
        onProgress(size)
    }

    /// Flushes and closes the file; returns the hex SHA-256 of everything written (including a resumed prefix).
    func finish() throws -> String {
        if let handle {
            try? handle.synchronize()
            try? handle.close()
        }
        handle = nil
        return SHA256.hex(hasher.finalize())
    }

    func close() {
        try? handle?.close()
        handle = nil
    }

    static func contentRangeStart(_ header: String) -> Int64? {
        // "bytes 100-199/200"
        let parts = header.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bytes" else { return nil }
        guard let dash = parts[1].firstIndex(of: "-") else { return nil }
        return Int64(parts[1][..<dash])
    }
}
