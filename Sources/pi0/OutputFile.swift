// Where `pi0` may write a result (docs/CLI.md "Output files"): a new path or an existing regular file
// (replacing it needs --force), never a checkpoint's own files or the command's inputs, never a FIFO, device
// or directory; the format follows the extension. Checked before any weight is read; written to a temporary
// file beside the target and renamed, so an interrupted run never leaves a partial file.
import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct OutputFile {
    enum Format: String, CaseIterable { case json, npy, safetensors }
    let path: String
    let format: Format

    /// Checks `path` before any work: extension in `formats`, parent folder present, the target new or a
    /// regular file (replaced only with `force`) that is none of `protected` (files, or folders whose every
    /// file is protected, e.g. the checkpoint folder).
    init(_ path: String, option: String = "--output", formats: [Format], force: Bool, protected: [String]) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        guard let format = Format(rawValue: ext), formats.contains(format) else {
            throw ValidationError("\(option) must end in \(formats.map { "." + $0.rawValue }.joined(separator: ", ")), got '\(path)'"
                                + (formats.count == 1 ? "" : " (the format follows the extension)"))
        }
        self.path = path; self.format = format
        try Self.checkFolder(of: path, option: option)
        var st = stat()
        guard lstat(path, &st) == 0 else { return }   // a new file
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG else {
            let what = kind == S_IFDIR ? "a directory" : kind == S_IFLNK ? "a symbolic link" : kind == S_IFIFO ? "a FIFO"
                : kind == S_IFCHR || kind == S_IFBLK ? "a device" : kind == S_IFSOCK ? "a socket" : "not a regular file"
            throw ValidationError("\(option) \(path) is \(what); pi0 writes only regular files or new paths")
        }
        for p in protected {
            var ps = stat()
            guard stat(p, &ps) == 0 else { continue }
            var files = [p]
            if ps.st_mode & S_IFMT == S_IFDIR {
                files = ((try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []).map { (p as NSString).appendingPathComponent($0) }
            }
            for f in files {
                var fs = stat()
                if stat(f, &fs) == 0, fs.st_dev == st.st_dev, fs.st_ino == st.st_ino {
                    throw ValidationError("\(option) \(path) is one of this command's inputs" + (f == path ? "" : " (\(f))")
                                          + "; it is never replaced, even with --force: write the result elsewhere")
                }
            }
        }
        guard force else { throw ValidationError("\(option) \(path) exists; pass --force to replace it") }
    }

    /// The folder `path` would be written in exists and is writable, and `path` is not a directory.
    static func checkFolder(of path: String, option: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        let dir = parent.isEmpty ? "." : parent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationError("\(option) \(path): the folder \(dir) does not exist")
        }
        guard access(dir, W_OK) == 0 else { throw ValidationError("\(option) \(path): cannot write in \(dir) (permission denied)") }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw ValidationError("\(option) \(path) is a directory; pi0 writes only regular files or new paths")
        }
    }

    /// Writes `data` through a temporary file in the same folder, renamed over the target when complete.
    func write(_ data: Data) throws {
        try Self.atomicWrite(path: path) { tmp in try data.write(to: URL(fileURLWithPath: tmp)) }
    }

    /// Runs `body(temporaryPath)` and renames the temporary file to `path`; removes it on failure and on
    /// SIGINT/SIGTERM while `body` runs.
    static func atomicWrite(path: String, _ body: (String) throws -> Void) throws {
        let parent = (path as NSString).deletingLastPathComponent
        let tmp = (parent.isEmpty ? "." : parent) + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let guardToken = Interrupt.onInterrupt(tmp) { unlink(tmp) }
        defer { Interrupt.forget(guardToken) }
        do {
            try body(tmp)
            guard rename(tmp, path) == 0 else {
                throw CLIError("\(path): cannot move the finished file into place: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(tmp)
            throw error
        }
    }
}

/// Files to delete if the process is interrupted (SIGINT, SIGTERM) before they are complete; the process
/// then exits with 130 (SIGINT) or 143 (SIGTERM) as shells report.
enum Interrupt {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var cleanups: [Int: (what: String, run: () -> Void)] = [:]
    nonisolated(unsafe) private static var next = 0
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Installs the handlers once; later calls do nothing.
    static func install() {
        lock.lock(); defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global(qos: .userInteractive))
            s.setEventHandler {
                lock.lock()
                let pending = Array(cleanups.values)
                lock.unlock()
                pending.forEach { $0.run() }
                Console.write(pending.isEmpty ? "interrupted"
                              : "interrupted; removed the unfinished \(pending.map(\.what).joined(separator: ", "))")
                exit(128 + sig)
            }
            s.resume()
            sources.append(s)
        }
    }

    /// Runs `cleanup` if the process is interrupted before `forget(token)`; `what` names it in the message.
    static func onInterrupt(_ what: String, _ cleanup: @escaping () -> Void) -> Int {
        install()
        lock.lock(); defer { lock.unlock() }
        next += 1
        cleanups[next] = (what, cleanup)
        return next
    }

    static func forget(_ token: Int) {
        lock.lock(); defer { lock.unlock() }
        cleanups[token] = nil
    }
}
