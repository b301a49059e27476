// `pi0 cuda-check`: every CUDA kernel against the CPU reference on random odd shapes (the GPU
// machine has no XCTest; tools/cuda/device_check.sh runs this).
import ArgumentParser
import PI0CUDA

struct CUDACheckCommand: ParsableCommand, GlobalOptionsCommand {
    static let configuration = CommandConfiguration(
        commandName: "cuda-check", abstract: "Check every CUDA kernel against the CPU reference (needs an NVIDIA GPU).")

    @Option(help: "Random seed for the inputs.") var seed: UInt64 = 1

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let backend = try CUDABackend.make()
        print(backend.name, backend.cublasNote ?? "")
        let checks = try CUDASelfTest.run(backend, seed: seed)
        checks.forEach { print($0) }
        if checks.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }
}
