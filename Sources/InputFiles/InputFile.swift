// Opening input files without ever blocking: a FIFO, a device node or a directory named where a file
// is expected gets a clear error instead of an `open`/`read` that never returns (a FIFO with no
// writer blocks `open` forever; `/dev/zero` never ends). Used by every reader of user-named files:
// SafeTensors, the config readers, the tokenizer and the image loader.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public struct InputFileError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let reason: String
    /// True when the path does not exist (callers map this to their own "not found" errors).
    public let missing: Bool

    public init(path: String, reason: String, missing: Bool = false) {
        self.path = path; self.reason = reason; self.missing = missing
    }

    public var description: String { "\(path): \(reason)" }
}

public enum InputFile {
    /// The kind of a non-regular file, for messages ("a FIFO", "a directory", ...).
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    static func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

    /// Opens `path` read-only after checking (with `stat`, then again on the descriptor with `fstat`,
    /// so a swap in between is caught) that it is a regular file. The open itself uses O_NONBLOCK, so
    /// even a FIFO swapped in after the first check cannot block it; the flag is cleared afterwards.
    /// Returns the descriptor and the file size; the caller closes the descriptor.
    public static func openRegular(_ path: String) throws -> (fd: Int32, size: Int) {
        var st = stat()
        if stat(path, &st) != 0 {
            let e = errno
            throw InputFileError(path: path, reason: errnoText(e), missing: e == ENOENT)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw InputFileError(path: path, reason: "is \(kind(st.st_mode)), expected a regular file")
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw InputFileError(path: path, reason: "cannot open: \(errnoText(e))", missing: e == ENOENT)
        }
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw InputFileError(path: path, reason: "is \(kind(st.st_mode)), expected a regular file")
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return (fd, Int(st.st_size))
    }

    /// The whole content of the regular file `path` (at most `limit` bytes, else an error).
    public static func readAll(_ path: String, limit: Int = 1 << 31) throws -> [UInt8] {
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        guard size <= limit else {
            throw InputFileError(path: path, reason: "is \(size) bytes, larger than the limit of \(limit) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw InputFileError(path: path, reason: "read failed: \(errnoText(errno))")
            }
            if n == 0 { break }   // the file shrank while being read
            done += n
        }
        return done == size ? bytes : Array(bytes[0..<done])
    }

    /// Throws unless `path` names a regular file (without opening it).
    public static func checkRegular(_ path: String) throws {
        let (fd, _) = try openRegular(path)
        close(fd)
    }
}
