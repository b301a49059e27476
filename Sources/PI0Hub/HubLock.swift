// An exclusive lock per blob while it is downloaded: flock(2) on {cache}/.locks/models--ORG--NAME/<etag>.lock,
// the path huggingface_hub's file_download.py locks (its `filelock` dependency also uses flock on Unix), so
// two `pi0 download`s, or pi0 and a Python process, never write the same `.incomplete` file at once.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

final class BlobLock {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// Takes the lock, polling (so no thread of the cooperative pool blocks); `onWait` is called once when
    /// another process holds it.
    static func acquire(_ path: String, onWait: () -> Void) async throws -> BlobLock {
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
        } catch { throw HubDownloadError.fileSystem(path: path, reason: "cannot create the lock folder: \(error.localizedDescription)") }
        let fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw HubDownloadError.fileSystem(path: path, reason: "cannot open the lock file (errno \(errno))") }
        var waited = false
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            guard e == EWOULDBLOCK || e == EINTR else {
                close(fd)
                throw HubDownloadError.fileSystem(path: path, reason: "cannot lock (errno \(e))")
            }
            if !waited { onWait(); waited = true }
            do { try await Task.sleep(nanoseconds: 200_000_000) } catch { close(fd); throw error }
        }
        return BlobLock(fd: fd)
    }

    func release() {
        guard fd >= 0 else { return }
        _ = flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
