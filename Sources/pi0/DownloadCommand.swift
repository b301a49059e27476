// `pi0 download ORG/NAME`: fetch a checkpoint from the Hugging Face hub into the local hub cache.
import ArgumentParser
import Dispatch
import Foundation
import PI0Hub

struct DownloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "Download a π0 checkpoint from the Hugging Face hub into the local cache (resumable, verified).",
        discussion: """
        Fetches config.json, model.safetensors, LeRobot's policy_preprocessor.json / policy_postprocessor.json \
        with the statistics files they name, and tokenizer.model when the repo has one, into the cache layout \
        huggingface_hub uses ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub), then prints the \
        snapshot folder. An interrupted download continues where it stopped when run again; files stored with \
        Git LFS are checked against their SHA-256. Gated repos need $HF_TOKEN (or `hf auth login`).
        """)

    @Argument(help: "Hugging Face model id, ORG/NAME (for example lerobot/pi0_base).") var repo: String
    @Option(help: "Branch, tag or commit hash.") var revision = "main"
    @Option(help: "Hub URL (default: $HF_ENDPOINT or https://huggingface.co).") var endpoint: String?
    @Option(help: "Hub cache folder (default: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub).") var cache: String?
    @Option(name: .customLong("file"), help: "Download only this file (repeatable) instead of the checkpoint's set.") var files: [String] = []
    @Option(help: "Times a broken transfer is resumed before giving up.") var retries = 3

    func run() throws {
        let (repo, revision, files, retries) = (self.repo, self.revision, self.files, self.retries)
        let endpoint = self.endpoint ?? HubDownload.defaultEndpoint
        let cache = self.cache ?? HubCache.directory
        let display = ProgressDisplay(interactive: isatty(2) != 0)
        let result = ResultBox()
        let done = DispatchSemaphore(value: 0)
        // ParsableCommand bridging to async: the download runs on the cooperative pool while this thread waits.
        Task {
            do {
                let path = try await HubDownload.download(
                    repo: repo, revision: revision, files: files.isEmpty ? nil : files, endpoint: endpoint,
                    cache: cache, retries: retries, progress: { display.show($0) })
                result.set(.success(path))
            } catch { result.set(.failure(error)) }
            done.signal()
        }
        done.wait()
        display.finishLine()
        switch result.get() {
        case .success(let path): print(path)
        case .failure(let e as HubDownloadError): throw CLIError(e.description)
        case .failure(let e): throw e
        case nil: throw CLIError("download ended without a result")
        }
    }
}

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<String, Error>?
    func set(_ r: Result<String, Error>) { lock.lock(); value = r; lock.unlock() }
    func get() -> Result<String, Error>? { lock.lock(); defer { lock.unlock() }; return value }
}

/// Progress on standard error: one rewritten line per file on a terminal, plain lines otherwise.
private final class ProgressDisplay: @unchecked Sendable {
    private let lock = NSLock()
    private let interactive: Bool
    private var open = false

    init(interactive: Bool) { self.interactive = interactive }

    func show(_ event: HubDownloadEvent) {
        lock.lock(); defer { lock.unlock() }
        switch event {
        case .cached(let file, let size): line("\(file): in the cache (\(Self.bytes(size)))")
        case .skipped(let file): line("\(file): not in the repository (optional), skipped")
        case .started(let file, let at, let total):
            let size = total.map { Self.bytes($0) }
            line(at > 0 ? "\(file): resuming at \(Self.bytes(at))" + (size.map { " of \($0)" } ?? "")
                        : "\(file): downloading" + (size.map { " \($0)" } ?? ""))
        case .progress(let file, let bytes, let total, let rate):
            guard interactive else { return }
            var s = "\(file): \(Self.bytes(bytes))"
            if let total, total > 0 {
                s += " / \(Self.bytes(total))" + String(format: "  %5.1f%%", 100 * Double(bytes) / Double(total))
            }
            s += String(format: "  %.1f MB/s", rate / 1e6)
            write("\r\u{1B}[K" + s)
            open = true
        case .finished(let file, let size, let verified):
            line("\(file): done, \(Self.bytes(size))" + (verified ? ", SHA-256 verified" : ""))
        case .retrying(let file, let attempt, let reason): line("\(file): retry \(attempt): \(reason)")
        case .waitingForLock(let file, let lockPath): line("\(file): another process is downloading it (\(lockPath)), waiting")
        }
    }

    func finishLine() {
        lock.lock(); defer { lock.unlock() }
        if open { write("\n"); open = false }
    }

    private func line(_ s: String) {
        write((open ? "\r\u{1B}[K" : "") + s + "\n")
        open = false
    }

    private func write(_ s: String) { FileHandle.standardError.write(s.data(using: .utf8)!) }

    static func bytes(_ n: Int64) -> String {
        let d = Double(n)
        if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
        if d >= 1e3 { return String(format: "%.1f kB", d / 1e3) }
        return "\(n) B"
    }
}
