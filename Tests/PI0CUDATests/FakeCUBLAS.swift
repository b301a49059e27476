// A stand-in for cuBLAS's `cublasGemmEx` on the emulated device (whose device pointers are host
// addresses): column-major C = α·op(A)·op(B) + β·C for float32 or bf16 A/B and float32 C, each sum in
// index order. It goes through `EmulatedDevice.submit`, so a GEMM issued during a capture is recorded and
// replayed like a kernel, and it is logged as "cublasGemmEx" by a `RecordingDevice`. This checks the
// backend's cuBLAS argument mapping (transposes, leading dimensions, types, the bf16 conversion and the
// bias) and its capture-retry logic without a GPU; cuBLAS itself runs only in GPUTests.
import Foundation
@testable import PI0CUDA

enum FakeCUBLAS {
    /// The device the GEMMs run on (tests run serially).
    nonisolated(unsafe) static var device: EmulatedDevice?
    nonisolated(unsafe) static var recorder: RecordingDevice?

    static func make(on device: EmulatedDevice, recorder: RecordingDevice? = nil) throws -> CUBLAS {
        FakeCUBLAS.device = device; FakeCUBLAS.recorder = recorder
        let libc = try DynamicLibrary.open(["libc.so.6"], what: "libc")
        return CUBLAS(library: libc, handle: CUBLAS.Handle(bitPattern: 1)!, gemmEx: gemmEx, setWorkspaceFn: nil)
    }

    static let gemmEx: CUBLAS.FnGemmEx = { _, transa, transb, m, n, k, alpha, a, aType, lda, b, bType, ldb, beta, c, cType, ldc, _, _ in
        guard cType == CUBLAS.r32F, let a, let b, let c, let alpha, let beta else { return 7 }   // CUBLAS_STATUS_INVALID_VALUE
        let al = alpha.load(as: Float.self), be = beta.load(as: Float.self)
        func loader(_ p: UnsafeRawPointer, _ type: Int32) -> (Int) -> Float {
            type == CUBLAS.r16BF ? { Float(bitPattern: UInt32(p.load(fromByteOffset: $0 * 2, as: UInt16.self)) << 16) }
                                 : { p.load(fromByteOffset: $0 * 4, as: Float.self) }
        }
        let la = loader(a, aType), lb = loader(b, bType)
        let (ta, tb, mm, nn, kk, sa, sb, sc) = (transa == CUBLAS.opT, transb == CUBLAS.opT, Int(m), Int(n), Int(k), Int(lda), Int(ldb), Int(ldc))
        let cp = UnsafeMutableRawPointer(mutating: c).assumingMemoryBound(to: Float.self)
        let work = {
            for j in 0..<nn { for i in 0..<mm {
                var acc: Float = 0
                for l in 0..<kk { acc += la(ta ? l + i * sa : i + l * sa) * lb(tb ? j + l * sb : l + j * sb) }
                let v = al * acc
                cp[i + j * sc] = be == 0 ? v : v + be * cp[i + j * sc]
            } }
        }
        FakeCUBLAS.recorder?.note("cublasGemmEx")
        FakeCUBLAS.device!.submit(work)
        return 0
    }
}
