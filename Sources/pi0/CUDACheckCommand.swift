// `pi0 cuda-check`: every CUDA kernel against the CPU reference on random odd shapes, and with
// `--fixtures DIR` the golden cases end to end through `SamplingEngine` in every graph mode (the GPU
// machine has no XCTest; tools/cuda/device_check.sh runs this).
import ArgumentParser
import Foundation
import PI0
import PI0CUDA
import PI0Runtime
import SafeTensors

struct CUDACheckCommand: ParsableCommand, GlobalOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "cuda-check", abstract: "Check every CUDA kernel against the CPU reference (needs an NVIDIA GPU).")

    @Option(help: "Random seed for the inputs.") var seed: UInt64 = 1
    @Option(help: "A folder of golden cases (each with model.safetensors, inputs.safetensors, outputs.safetensors): run each through --graph none, full and loop, three calls per mode, and compare the actions with LeRobot's.")
    var fixtures: String?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let backend = try CUDABackend.make()
        print(backend.name, backend.cublasNote ?? "")
        let checks = try CUDASelfTest.run(backend, seed: seed)
        checks.forEach { print($0) }
        var failed = checks.contains(where: { !$0.passed })
        if let fixtures { failed = try checkFixtures(fixtures, backend: backend) || failed }
        if failed { throw ExitCode(1) }
    }

    /// Every case through every graph mode; bf16 cases (config dtype) at the bf16 tolerance. Returns true if any failed.
    func checkFixtures(_ root: String, backend: CUDABackend) throws -> Bool {
        let fm = FileManager.default
        let cases = try fm.contentsOfDirectory(atPath: root).sorted().filter { fm.fileExists(atPath: "\(root)/\($0)/outputs.safetensors") }
        var failed = false
        for name in cases {
            let dir = root + "/" + name
            let ckpt = try Checkpoint(directory: dir)
            let model = try PI0Model(checkpoint: ckpt, backend: backend)
            let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
            let outputs = try SafeTensorsFile(path: dir + "/outputs.safetensors")
            let steps = outputs.contains("timesteps") ? try outputs.info("timesteps").shape[0] : nil
            let expected = try outputs.floats("actions")
            let (pcc, rel) = model.precision == .bfloat16 ? (0.999, 1e-2) : (0.99999, 2e-5)
            for mode in GraphMode.allCases {
                let engine = try SamplingEngine(model: model, mode: mode)
                for call in 0..<3 {   // warm-up, capture, replay
                    let r = ParityResult(name: "actions", actual: try engine.sampleActions(inputs, steps: steps).array, expected: expected)
                    let ok = r.passes(minPCC: pcc, maxRelL2: rel)
                    failed = failed || !ok
                    print("\(ok ? "PASS" : "FAIL") fixture \(name) graph \(mode.rawValue) call \(call): \(r)")
                }
            }
        }
        return failed
    }
}
