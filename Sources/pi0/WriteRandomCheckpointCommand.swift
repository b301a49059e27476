// `pi0 write-random-checkpoint DIR`: a full-size π0 or π0.5 checkpoint with real key names and shapes.
import ArgumentParser
import Foundation
import PI0

struct WriteRandomCheckpointCommand: ParsableCommand, GlobalOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "write-random-checkpoint",
        abstract: "Write a full-size random-weight π0 or π0.5 checkpoint (real key names and shapes) for benchmarking.",
        discussion: "Refuses to replace an existing checkpoint without --force and checks the free space first; "
            + "an interrupted write removes its temporary file.")

    @Argument(help: "Output folder.") var directory: String
    @Option(help: "bfloat16 (~7 GB) or float32 (~14 GB).") var precision: String?
    @Option(help: .hidden) var dtype: String?   // the older name of --precision
    @Option(help: "pi0 or pi05.") var model: String = "pi0"
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Flag(help: "Print every tensor (name, shape) and the totals instead of writing anything.") var list = false
    @Flag(help: "Replace the checkpoint files already in the folder.") var force = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if precision != nil, dtype != nil { throw ValidationError("--dtype is the older name of --precision; give one") }
        _ = try parsePrecision(precision ?? dtype, option: dtype != nil ? "--dtype" : "--precision")
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), !isDir.boolValue {
            throw ValidationError("\(directory) exists and is not a folder")
        }
        if !force {
            for f in ["model.safetensors", "config.json"] where FileManager.default.fileExists(atPath: directory + "/" + f) {
                throw ValidationError("\(directory) already holds a checkpoint (\(f)); pass --force to replace it")
            }
        }
    }

    func run() throws {
        let p = try parsePrecision(precision ?? dtype) ?? .bfloat16
        guard let kind = ModelKind(rawValue: model) else { throw ValidationError("--model must be pi0 or pi05, got '\(model)'") }
        let dims = ModelDims(vision: .so400m, vlm: .gemma2b, expert: .gemma300m)
        let elementBytes = p == .bfloat16 ? 2 : 4
        if list {
            let tensors = CheckpointLayout.tensors(dims: dims, model: kind)
            for t in tensors { print("\(t.name) \(t.shape)") }
            let params = tensors.reduce(0) { $0 + $1.count }
            note("\(kind.rawValue): \(tensors.count) tensors, \(params) parameters, \(params * elementBytes) bytes of \(p.rawValue) (nothing written)")
            return
        }
        let bytes = Int64(CheckpointLayout.tensors(dims: dims, model: kind).reduce(0) { $0 + $1.count }) * Int64(elementBytes)
        try Self.checkFreeSpace(directory: directory, needed: bytes + (64 << 20))
        let start = Date()
        // The stream writer's temporary file is `model.safetensors.tmp-<pid>-<random>`; remove it on Ctrl-C.
        let dir = directory
        let token = Interrupt.onInterrupt("\(dir)/model.safetensors.tmp-*") {
            let prefix = "model.safetensors.tmp-\(getpid())-"
            for f in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where f.hasPrefix(prefix) {
                unlink(dir + "/" + f)
            }
        }
        defer { Interrupt.forget(token) }
        let display = Progress("writing model.safetensors", total: bytes, unit: .bytes)
        do {
            try RandomCheckpoint.write(to: directory, dims: dims, model: kind, dtype: p, seed: seed) { done, _ in
                display.update(done: Int64(done) * Int64(elementBytes))
            }
        } catch {
            display.finish()
            throw error
        }
        display.finish(String(format: "wrote %@ (%@ %@, random weights, %@) in %.1f s", directory, kind.rawValue, p.rawValue,
                              Progress.amount(bytes, .bytes), Date().timeIntervalSince(start)))
    }

    /// Fails before writing anything when the folder's file system lacks `needed` bytes.
    static func checkFreeSpace(directory: String, needed: Int64) throws {
        var probe = directory
        while !FileManager.default.fileExists(atPath: probe) {
            let up = (probe as NSString).deletingLastPathComponent
            probe = up.isEmpty ? "." : up
            if probe == "/" || probe == "." { break }
        }
        guard let free = freeBytes(probe) else { return }
        if free < needed {
            throw CLIError("not enough free space for \(directory): needs \(Progress.amount(needed, .bytes)), "
                           + "\(Progress.amount(free, .bytes)) free on that file system")
        }
    }

    /// Free bytes on the file system holding `path`; debug builds take PI0_DEBUG_FREE_BYTES instead when set (tests).
    static func freeBytes(_ path: String) -> Int64? {
        #if DEBUG
        if let fake = ProcessInfo.processInfo.environment["PI0_DEBUG_FREE_BYTES"].flatMap(Int64.init) { return fake }
        #endif
        return ((try? FileManager.default.attributesOfFileSystem(forPath: path))?[.systemFreeSize] as? NSNumber)?.int64Value
    }
}
