// The run-time loader on machines without CUDA: every missing piece is a typed `unavailable` error
// naming what was missing (never a crash), and the search order honours the environment.
import Foundation
import XCTest
@testable import PI0CUDA
import PI0Tensor

final class LoaderTests: XCTestCase {
    /// True when this machine has the CUDA driver library (then the "missing" tests do not apply).
    static var driverPresent: Bool { (try? CUDADriver.load()) != nil }

    func testMissingDriverIsUnavailableNamingLibcuda() throws {
        if Self.driverPresent { throw XCTSkip("libcuda.so.1 is installed here; the missing-driver path cannot be observed") }
        XCTAssertThrowsError(try CUDABackend.make()) { error in
            guard let e = error as? BackendError, case let .unavailable(backend, reason) = e else {
                return XCTFail("expected BackendError.unavailable, got \(error)")
            }
            XCTAssertEqual(backend, "cuda")
            XCTAssertTrue(reason.contains("libcuda.so.1"), reason)
            XCTAssertTrue("\(error)".hasPrefix("backend cuda is unavailable: "), "\(error)")
        }
    }

    func testMissingLibraryListsEveryCandidate() {
        XCTAssertThrowsError(try DynamicLibrary.open(["libpi0-no-such-lib.so.7", "/nonexistent/libx.so"], what: "the test library")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("the test library"), text)
            XCTAssertTrue(text.contains("libpi0-no-such-lib.so.7"), text)
            XCTAssertTrue(text.contains("/nonexistent/libx.so"), text)
        }
    }

    func testMissingSymbolNamesSymbolAndLibrary() throws {
        let libc = try DynamicLibrary.open(["libc.so.6"], what: "libc")
        typealias Strlen = @convention(c) (UnsafePointer<CChar>?) -> Int
        // A symbol that exists resolves and is callable through the C function type.
        let strlen = try libc.symbol("strlen", as: Strlen.self)
        XCTAssertEqual("pi0".withCString { strlen($0) }, 3)
        XCTAssertNil(libc.optionalSymbol("cuPi0Missing", as: Strlen.self))
        XCTAssertThrowsError(try libc.symbol("cuPi0Missing_v2", "cuPi0Missing", as: Strlen.self)) { error in
            XCTAssertEqual(error as? BackendError,
                           .unavailable(backend: "cuda", reason: "symbol cuPi0Missing_v2 / cuPi0Missing not found in libc.so.6"))
        }
    }

    func testSearchOrderPutsTheEnvironmentFolderFirst() {
        let c = LibrarySearch.candidates(["libcuda.so.1"], extraDirectories: ["/opt/extra"])
        let env = ProcessInfo.processInfo.environment["PI0_CUDA_LIB_DIR"]
        if let env, !env.isEmpty { XCTAssertEqual(c.first, "\(env)/libcuda.so.1") }
        XCTAssertTrue(c.contains("/opt/extra/libcuda.so.1"))
        XCTAssertTrue(c.contains("libcuda.so.1"), "the bare soname lets the dynamic linker search LD_LIBRARY_PATH")
        XCTAssertLessThan(c.firstIndex(of: "/opt/extra/libcuda.so.1")!, c.firstIndex(of: "libcuda.so.1")!)
        XCTAssertTrue(c.contains("/usr/local/cuda/lib64/libcuda.so.1"))
    }

    func testCacheKeyIsStableAndNamesTheArchitecture() {
        XCTAssertEqual(CUDAKernelCache.sourceHash.count, 16)
        XCTAssertEqual(CUDAKernelCache.sourceHash, CUDAKernelCache.sourceHash)
        XCTAssertEqual(CUDAKernelCache.path(arch: "sm_90", cubin: true, in: "/c"), "/c/\(CUDAKernelCache.sourceHash)-sm_90.cubin")
        XCTAssertEqual(CUDAKernelCache.path(arch: "sm_80", cubin: false, in: "/c"), "/c/\(CUDAKernelCache.sourceHash)-sm_80.ptx")
    }

    func testMissingNVRTCSaysHowToInstallIt() throws {
        // Point PI0_NVRTC_PATH at a folder without NVRTC (restored afterwards; XCTest runs tests serially).
        let saved = ProcessInfo.processInfo.environment["PI0_NVRTC_PATH"]
        setenv("PI0_NVRTC_PATH", "/nonexistent/pi0-nvrtc", 1)
        defer { if let saved { setenv("PI0_NVRTC_PATH", saved, 1) } else { unsetenv("PI0_NVRTC_PATH") } }
        XCTAssertEqual(LibrarySearch.nvrtcCandidates().first, "/nonexistent/pi0-nvrtc", "a non-folder path is taken as the library file")
        guard (try? NVRTC()) == nil else { throw XCTSkip("NVRTC is installed system-wide or already loaded by an earlier test in this process; the missing path cannot be observed") }
        XCTAssertThrowsError(try NVRTC()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("pip install nvidia-cuda-nvrtc"), text)
            XCTAssertTrue(text.contains("/nonexistent/pi0-nvrtc"), text)
        }
    }
}
