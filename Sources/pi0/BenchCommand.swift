// `pi0 bench`: per-stage timings, GFLOP/s, peak memory and load time on a (full-size) checkpoint.
import ArgumentParser
import Foundation
import PI0
import PI0Runtime
import PI0Tensor
#if canImport(Glibc)
import Glibc
#endif

struct BenchCommand: ParsableCommand, GlobalOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark π0 / π0.5 inference: vision, prefix, each denoise step and total (median/min/max), GFLOP/s, peak RSS.",
        discussion: "Protocol: batch 1, 48 language tokens of which 20 valid (π0.5: 200 of which 50 valid, the default "
            + "prompt budget with a state prompt), the config's chunk, 10 steps unless --steps. "
            + "Write a full-size checkpoint first with `pi0 write-random-checkpoint DIR`.")

    @Option(help: "Checkpoint folder or Hugging Face id in the local cache.") var checkpoint: String
    @Option(help: "Number of cameras, \(Self.cameraRange.lowerBound)-\(Self.cameraRange.upperBound) (synthetic frames; the config's camera count does not limit it).")
    var cameras: Int = 1
    @Option(help: "Timed runs after one warm-up run.") var runs: Int = 3
    @Option(help: "Euler steps.") var steps: Int = 10
    @Option(help: "float32 or bfloat16 (default: the config's dtype).") var precision: String?
    @Option(help: "Machine peak in GFLOP/s for the % of peak column (default: measured FMA peak of the cpu backend).")
    var peakGflops: Double?
    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @Flag(help: "Also time every backend operation (linear layers by shape, attention, norms, activations) over the timed runs.")
    var profile = false
    @Flag(help: "Also time --runs observations pipelined: the next is submitted before the current is collected (on cuda its uploads travel on a second stream while the current one runs).")
    var pipeline = false
    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var global: GlobalOptions

    static let cameraRange = 1...8

    func validate() throws {
        guard Self.cameraRange.contains(cameras) else {
            throw ValidationError("--cameras must be \(Self.cameraRange.lowerBound)-\(Self.cameraRange.upperBound), got \(cameras)")
        }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1, got \(runs)") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        _ = try parsePrecision(precision)
    }

    func run() throws {
        let prec = try parsePrecision(precision)
        let t0 = Date()
        let ckpt = try Checkpoint(directory: try CheckpointLocator.resolve(checkpoint))
        let backend = try backendOptions.make()
        let profiler = profile ? ProfilingBackend(wrapping: backend) : nil
        let (model, _) = try Loading.run("weights", summary: false) { progress in
            ckpt.loadProgress = progress
            return try PI0Model(checkpoint: ckpt, precision: prec, backend: profiler ?? backend)
        }
        let loadSeconds = Date().timeIntervalSince(t0)
        note(String(format: "loaded in %.1f s (%@, %@)", loadSeconds, model.precision.rawValue, backend.name))
        let inputs = BenchInputs.make(dims: ckpt.dims, config: ckpt.config, cameras: cameras)
        // Graph modes: the first call warms up, the second captures; both are untimed.
        let engine = try SamplingEngine(model: model, mode: backendOptions.graph)
        if backendOptions.graph != .none { _ = try engine.sampleActions(inputs, steps: steps, seed: 0) }
        var samples: [String: [Double]] = [:]
        var order: [String] = []
        var firstInference = 0.0
        for r in 0...runs {
            let label = r == 0 ? "warm-up run" : "run \(r)/\(runs)"
            let timings = StageTimings()
            let display = Loading.inference(label, steps: steps, timings: timings)
            _ = try engine.sampleActions(inputs, steps: steps, seed: UInt64(r), timings: timings)
            display.finish(String(format: "%@: %.2f s", label, timings.total))
            if r == 0 { firstInference = timings.total; profiler?.reset(); continue }
            for s in timings.stages {
                if samples[s.name] == nil { order.append(s.name) }
                samples[s.name, default: []].append(s.seconds)
            }
            samples["total", default: []].append(timings.total)
        }
        order.append("total")
        let pipelined = pipeline ? try timePipelined(engine, inputs) : nil
        // The 28 padded language slots are dropped before the VLM (padding in every row): count the 20 valid.
        let f = ckpt.dims.flops(cameras: cameras, langTokens: BenchInputs.promptTokens(ckpt.config.model).valid, chunk: ckpt.config.chunkSize, maxActionDim: ckpt.config.maxActionDim)
        func flops(_ stage: String) -> Double {
            if stage == "vision" { return f.visionPerImage * Double(cameras) }
            if stage == "prefix" { return f.prefix }
            if stage.hasPrefix("denoise") { return f.denoiseStep }
            return f.visionPerImage * Double(cameras) + f.prefix + f.denoiseStep * Double(steps)
        }
        let peak = peakGflops ?? {
            let display = Progress("measuring the machine's FMA peak (--peak-gflops skips this)")
            defer { display.finish() }
            return Backends.measuredPeakGFLOPs(backend: backend)
        }()
        let rss = BenchInputs.peakRSSBytes()
        var stages: [String: Any] = [:]
        var rows: [String] = []
        for name in order {
            let xs = samples[name]!.sorted()
            let median = xs[xs.count / 2], gf = flops(name) / median / 1e9
            var entry: [String: Any] = ["median_s": median, "min_s": xs.first!, "max_s": xs.last!, "gflops": flops(name) / 1e9,
                                        "gflop_per_s": gf]
            if let peak { entry["percent_of_peak"] = 100 * gf / peak }
            stages[name] = entry
            rows.append(name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: " %9.1f %9.1f %9.1f %9.1f %8.1f %@", median * 1000, xs.first! * 1000,
                               xs.last! * 1000, flops(name) / 1e9, gf, peak.map { String(format: "%6.1f%%", 100 * gf / $0) } ?? "-"))
        }
        if json {
            var obj: [String: Any] = ["stages": stages, "total": stages["total"]!, "peak_rss_bytes": rss, "load_s": loadSeconds,
                                      "time_to_first_action_s": loadSeconds + firstInference, "threads": Backends.threadCount(backend),
                                      "backend": backend.name, "precision": model.precision.rawValue, "cameras": cameras,
                                      "steps": steps, "runs": runs]
            if let peak { obj["peak_gflop_per_s"] = peak }
            if let pipelined { obj["pipelined"] = ["observations": runs, "total_s": pipelined, "per_observation_s": pipelined / Double(runs)] }
            if let profiler {
                obj["profile"] = profiler.snapshot().map { p -> [String: Any] in
                    ["op": p.op, "calls_per_run": Double(p.entry.calls) / Double(runs), "seconds_per_run": p.entry.seconds / Double(runs),
                     "gflop_per_s": p.entry.seconds > 0 ? p.entry.flops / p.entry.seconds / 1e9 : 0]
                }
            }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(model.kind.displayName) bench: \(cameras) camera(s), \(steps) steps, \(runs) runs, \(model.precision.rawValue), \(backend.name)")
            print("stage             median ms    min ms    max ms    GFLOP  GFLOP/s  % peak")
            rows.forEach { print($0) }
            print(String(format: "peak RSS %.2f GB · load %.1f s · time to first action %.1f s · threads %d%@",
                         Double(rss) / 1e9, loadSeconds, loadSeconds + firstInference, Backends.threadCount(backend),
                         peak.map { String(format: " · peak %.0f GFLOP/s", $0) } ?? ""))
            if let pipelined {
                print(String(format: "pipelined: %d observations in %.1f ms, %.1f ms per observation (two in flight)",
                             runs, pipelined * 1000, pipelined / Double(runs) * 1000))
            }
            if let profiler { printProfile(profiler, total: samples["total"]!.reduce(0, +) / Double(runs)) }
        }
    }

    /// Seconds for `runs` observations with two in flight (SamplingEngine.submit / collect), after one
    /// untimed overlapping pair (it makes the shape's second plan and, in a graph mode, captures it).
    func timePipelined(_ engine: SamplingEngine, _ inputs: PI0Inputs) throws -> Double {
        let a = try engine.submit(inputs, steps: steps, seed: 1000), b = try engine.submit(inputs, steps: steps, seed: 1001)
        _ = try engine.collect(a); _ = try engine.collect(b)
        let display = Progress("pipelined: \(runs) observations")
        defer { display.finish() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        var tickets = [try engine.submit(inputs, steps: steps, seed: 2000)]
        for r in 1..<max(runs, 1) {
            tickets.append(try engine.submit(inputs, steps: steps, seed: UInt64(2000 + r)))
            _ = try engine.collect(tickets.removeFirst())
        }
        _ = try engine.collect(tickets.removeFirst())
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }
}

extension BenchCommand {
    /// Per-run averages over the timed runs; "other" is what the model does outside the backend.
    func printProfile(_ profiler: ProfilingBackend, total: Double) {
        let ops = profiler.snapshot()
        let listed = ops.reduce(0.0) { $0 + $1.entry.seconds } / Double(runs)
        print("\nprofile (per run; linear = rows×in→out)         calls        ms  % total  GFLOP/s")
        for (op, e) in ops {
            let ms = e.seconds / Double(runs) * 1000
            print(op.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: " %8.0f %9.1f %7.1f%% %8@",
                  Double(e.calls) / Double(runs), ms, 100 * ms / 1000 / total,
                  e.flops > 0 && e.seconds > 0 ? String(format: "%.1f", e.flops / e.seconds / 1e9) : "-"))
        }
        print("other (outside the backend)".padding(toLength: 44, withPad: " ", startingAt: 0)
              + String(format: " %8@ %9.1f %7.1f%%", "", (total - listed) * 1000, 100 * (total - listed) / total))
    }
}

enum BenchInputs {
    /// Prompt tokens (length, valid): π0 48 of which 20; π0.5 its default budget of 200, of which 50 (a
    /// task and a 14-d state in bins). tools/reference/bench_lerobot*.py use the same numbers.
    static func promptTokens(_ kind: ModelKind) -> (length: Int, valid: Int) { kind == .pi0 ? (48, 20) : (200, 50) }

    static func make(dims: ModelDims, config: PI0Config, cameras: Int) -> PI0Inputs {
        let side = dims.vision.imageSize
        let noise = GaussianNoise.sample(count: cameras * 3 * side * side, seed: 99)
        let images = (0..<cameras).map { c in Array(noise[(c * 3 * side * side)..<((c + 1) * 3 * side * side)]).map { max(-1, min(1, $0 * 0.5)) } }
        let (length, valid) = promptTokens(config.model)
        let tokens = (0..<length).map { $0 < valid ? 2 + ($0 * 7919) % (dims.vlm.vocabSize - 2) : 0 }
        return PI0Inputs(batch: 1, images: images, imageMasks: [[Bool]](repeating: [true], count: cameras),
                         langTokens: [tokens], langMasks: [(0..<length).map { $0 < valid }],
                         state: config.model == .pi0 ? GaussianNoise.sample(count: config.maxStateDim, seed: 5) : [])
    }

    static func peakRSSBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024   // kilobytes on Linux
    }
}
