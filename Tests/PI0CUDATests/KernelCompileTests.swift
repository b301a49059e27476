// Every kernel compiles with NVRTC (which needs no GPU) for Hopper (sm_90) and Ampere (sm_80), with an
// empty log, and exports each entry point the backend resolves. Needs NVRTC:
//   python3 -m venv .venv-nvrtc && .venv-nvrtc/bin/pip install nvidia-cuda-nvrtc      (.ci/run does this)
//   PI0_NVRTC_PATH=$PWD/.venv-nvrtc/lib/python3.11/site-packages/nvidia/cu13/lib swift test --filter PI0CUDATests
import Foundation
import XCTest
@testable import PI0CUDA
import PI0Tensor

final class KernelCompileTests: XCTestCase {
    static let howTo = "NVRTC not found: `pip install nvidia-cuda-nvrtc` (into a venv) and set PI0_NVRTC_PATH to its "
        + "site-packages/nvidia/cu13/lib (or nvidia/cuda_nvrtc/lib) folder to run the kernel compilation tests"

    func nvrtc() throws -> NVRTC {
        do { return try NVRTC() } catch { throw XCTSkip("\(Self.howTo) (\(error))") }
    }

    func testEveryKernelCompilesCleanlyForSm90AndSm80() throws {
        let compiler = try nvrtc()
        XCTAssertGreaterThanOrEqual(compiler.version.0, 11, "NVRTC \(compiler.version) at \(compiler.path)")
        // PI0_CUDA_CACHE_DIR set: keep the images there (tools/cuda/device_check.sh carries them to a GPU
        // machine without NVRTC); otherwise a temporary folder.
        let env = ProcessInfo.processInfo.environment["PI0_CUDA_CACHE_DIR"]
        let folder = env ?? NSTemporaryDirectory() + "pi0-cuda-test-\(getpid())"
        defer { if env == nil { try? FileManager.default.removeItem(atPath: folder) } }
        for arch in ["sm_90", "sm_80"] {
            let r = try CUDAKernelCache.compileAndStore(arch: arch, nvrtc: compiler, in: folder)
            XCTAssertEqual(r.ptx.log, "", "\(arch) PTX compile log")
            XCTAssertEqual(r.cubin.log, "", "\(arch) CUBIN compile log")
            let ptx = String(decoding: r.ptx.image, as: UTF8.self)
            XCTAssertTrue(ptx.contains(".target \(arch)"), "PTX for \(arch) targets another architecture")
            for name in CUDAKernelCache.kernelNames {
                XCTAssertTrue(ptx.contains(".entry \(name)("), "\(arch): kernel \(name) missing from the PTX (extern \"C\"?)")
            }
            // A CUBIN is an ELF file.
            XCTAssertEqual(Array(r.cubin.image.prefix(4)), [0x7F, 0x45, 0x4C, 0x46], "\(arch) CUBIN is not ELF")
            let stored = FileManager.default.contents(atPath: CUDAKernelCache.path(arch: arch, cubin: true, in: folder))
            XCTAssertEqual(stored.map { [UInt8]($0) }, r.cubin.image, "\(arch) CUBIN not stored in the cache")
        }
    }

    func testCompileErrorsCarryTheLog() throws {
        let compiler = try nvrtc()
        let broken = "extern \"C\" __global__ void k(float* x) { x[0] = undeclared_pi0_name; }"
        XCTAssertThrowsError(try compiler.compile(broken, arch: "sm_90")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("nvrtcCompileProgram (sm_90) failed"), text)
            XCTAssertTrue(text.contains("undeclared_pi0_name"), "the compiler log names the offending identifier: \(text)")
        }
    }

    func testNoFusedMultiplyAddsInTheFloat32Kernels() throws {
        // --fmad=false keeps every a·b + c as two roundings, as the CPU reference computes them. CUDA's
        // expf/tanhf are implemented with explicit fmaf (not affected by the flag, and not our arithmetic),
        // so the kernels calling them (silu, gelu_tanh, gelu_tanh_mul, attention's softmax) are left out.
        let compiler = try nvrtc()
        let ptx = String(decoding: try compiler.compile(CUDAKernelCache.source, arch: "compute_90").image, as: UTF8.self)
        var fmaCount: [String: Int] = [:], current = ""
        for line in ptx.split(separator: "\n") {
            if let r = line.range(of: ".entry ") { current = String(line[r.upperBound...].prefix { $0 != "(" }) }
            if line.contains("fma.rn.f32") { fmaCount[current, default: 0] += 1 }
        }
        let transcendental: Set = ["pi0_silu", "pi0_gelu_tanh", "pi0_gelu_tanh_mul", "pi0_attention"]
        let pure = CUDAKernelCache.kernelNames.filter { !transcendental.contains($0) }
        XCTAssertGreaterThan(pure.count, 20)
        for name in pure { XCTAssertNil(fmaCount[name], "\(name): \(fmaCount[name] ?? 0) single-precision FMAs in the PTX") }
        // Control: a·b + c stays mul + add with our options, and the check above would see an FMA:
        // overriding with --fmad=true (later option wins, NVRTC warns) contracts it.
        let axpy = "extern \"C\" __global__ void axpy(float* y, const float* x, float a) { y[0] = a * x[0] + y[0]; }"
        let plain = String(decoding: try compiler.compile(axpy, arch: "compute_90").image, as: UTF8.self)
        XCTAssertFalse(plain.contains("fma.rn.f32"), plain)
        XCTAssertTrue(plain.contains("mul.rn.f32") && plain.contains("add.rn.f32"), plain)
        let fused = String(decoding: try compiler.compile(axpy, arch: "compute_90", extraOptions: ["--fmad=true"]).image, as: UTF8.self)
        XCTAssertTrue(fused.contains("fma.rn.f32"), fused)
    }
}
