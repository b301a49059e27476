// FileSink.swift — buffered, all-or-nothing file output shared by both writers.
//
// Data goes to a temporary file beside the destination (`<path>.tmp-<pid>-<random>`) and is renamed over `path`
// only by `commit()`, so a crash or an abandoned stream writer never leaves a half-written checkpoint at
// the final path. Short writes and EINTR are retried; every failing system call becomes
// `SafeTensorsError.writeFailed` naming the destination file.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// `write` is shadowed by FileSink's own methods; name the C function explicitly.
#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Musl)
private let systemWrite = Musl.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

final class FileSink {
    let path: String
    private let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferCapacity = 1 << 22
    private var committed = false

    init(path: String) throws {
        self.path = path
        self.temporaryPath = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SafeTensorsError.writeFailed(file: path, reason: "cannot create '\(temporaryPath)': \(Self.errnoText())")
        }
        buffer.reserveCapacity(bufferCapacity)
    }

    deinit {
        // Abandoned (not committed): remove the partial temporary file.
        if !committed {
            if fd >= 0 { close(fd) }
            unlink(temporaryPath)
        }
    }

    static func errnoText() -> String {
        let code = errno
        return "\(String(cString: strerror(code))) (errno \(code))"
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if bytes.isEmpty { return }
        if buffer.count + bytes.count <= bufferCapacity {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        if bytes.count >= bufferCapacity {
            try writeFully(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeFully($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw SafeTensorsError.writeFailed(file: path, reason: "file already closed") }
        var done = 0
        while done < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError.writeFailed(file: path, reason: "write: \(Self.errnoText())")
            }
            done += n
        }
    }

    /// Flushes, closes and atomically renames the temporary file to `path`.
    func commit() throws {
        try flush()
        let rc = close(fd)
        fd = -1
        guard rc == 0 else { throw SafeTensorsError.writeFailed(file: path, reason: "close: \(Self.errnoText())") }
        guard rename(temporaryPath, path) == 0 else {
            throw SafeTensorsError.writeFailed(file: path, reason: "rename from '\(temporaryPath)': \(Self.errnoText())")
        }
        committed = true
    }
}
