// The CUDA driver API (libcuda.so.1, installed with the NVIDIA driver), resolved with dlsym.
// Types follow cuda.h: CUresult is an int enum (0 = CUDA_SUCCESS), CUdevice an int, CUdeviceptr a
// 64-bit integer, the other handles opaque pointers. Versioned entry points (`_v2`) are the ones the
// toolkit headers map the plain names to; we name them explicitly since we have no header.
import Foundation
import PI0Tensor

struct CUDADriver: @unchecked Sendable {
    typealias FnInit = @convention(c) (UInt32) -> CUresult
    typealias FnIntOut = @convention(c) (UnsafeMutablePointer<Int32>?) -> CUresult
    typealias FnDeviceGet = @convention(c) (UnsafeMutablePointer<Int32>?, Int32) -> CUresult
    typealias FnDeviceGetName = @convention(c) (UnsafeMutablePointer<CChar>?, Int32, Int32) -> CUresult
    typealias FnDeviceGetAttribute = @convention(c) (UnsafeMutablePointer<Int32>?, Int32, Int32) -> CUresult
    typealias FnPrimaryCtxRetain = @convention(c) (UnsafeMutablePointer<CUhandle?>?, Int32) -> CUresult
    typealias FnCtxSetCurrent = @convention(c) (CUhandle?) -> CUresult
    typealias FnMemAlloc = @convention(c) (UnsafeMutablePointer<CUdeviceptr>?, Int) -> CUresult
    typealias FnMemFree = @convention(c) (CUdeviceptr) -> CUresult
    typealias FnMemsetD32Async = @convention(c) (CUdeviceptr, UInt32, Int, CUhandle?) -> CUresult
    typealias FnFuncSetAttribute = @convention(c) (CUhandle?, Int32, Int32) -> CUresult
    typealias FnHtoDAsync = @convention(c) (CUdeviceptr, UnsafeRawPointer?, Int, CUhandle?) -> CUresult
    typealias FnDtoHAsync = @convention(c) (UnsafeMutableRawPointer?, CUdeviceptr, Int, CUhandle?) -> CUresult
    typealias FnModuleLoadData = @convention(c) (UnsafeMutablePointer<CUhandle?>?, UnsafeRawPointer?) -> CUresult
    typealias FnModuleGetFunction = @convention(c) (UnsafeMutablePointer<CUhandle?>?, CUhandle?, UnsafePointer<CChar>?) -> CUresult
    typealias FnLaunchKernel = @convention(c) (CUhandle?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, CUhandle?,
                                               UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> CUresult
    typealias FnStreamCreate = @convention(c) (UnsafeMutablePointer<CUhandle?>?, UInt32) -> CUresult
    typealias FnHandle = @convention(c) (CUhandle?) -> CUresult
    typealias FnEventCreate = @convention(c) (UnsafeMutablePointer<CUhandle?>?, UInt32) -> CUresult
    typealias FnEventRecord = @convention(c) (CUhandle?, CUhandle?) -> CUresult
    typealias FnEventElapsed = @convention(c) (UnsafeMutablePointer<Float>?, CUhandle?, CUhandle?) -> CUresult
    typealias FnBeginCapture = @convention(c) (CUhandle?, Int32) -> CUresult
    typealias FnEndCapture = @convention(c) (CUhandle?, UnsafeMutablePointer<CUhandle?>?) -> CUresult
    typealias FnGraphInstantiate = @convention(c) (UnsafeMutablePointer<CUhandle?>?, CUhandle?, UInt64) -> CUresult
    typealias FnGraphLaunch = @convention(c) (CUhandle?, CUhandle?) -> CUresult
    typealias FnMemHostAlloc = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int, UInt32) -> CUresult
    typealias FnMemFreeHost = @convention(c) (UnsafeMutableRawPointer?) -> CUresult
    typealias FnStreamWaitEvent = @convention(c) (CUhandle?, CUhandle?, UInt32) -> CUresult
    typealias FnErrorString = @convention(c) (CUresult, UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> CUresult

    let library: DynamicLibrary
    let cuInit: FnInit
    let cuDriverGetVersion: FnIntOut
    let cuDeviceGetCount: FnIntOut
    let cuDeviceGet: FnDeviceGet
    let cuDeviceGetName: FnDeviceGetName
    let cuDeviceGetAttribute: FnDeviceGetAttribute
    let cuDevicePrimaryCtxRetain: FnPrimaryCtxRetain
    let cuCtxSetCurrent: FnCtxSetCurrent
    let cuMemAlloc: FnMemAlloc
    let cuMemFree: FnMemFree
    let cuMemsetD32Async: FnMemsetD32Async
    let cuFuncSetAttribute: FnFuncSetAttribute?
    let cuMemcpyHtoDAsync: FnHtoDAsync
    let cuMemcpyDtoHAsync: FnDtoHAsync
    let cuModuleLoadData: FnModuleLoadData
    let cuModuleGetFunction: FnModuleGetFunction
    let cuLaunchKernel: FnLaunchKernel
    let cuStreamCreate: FnStreamCreate
    let cuStreamSynchronize: FnHandle
    let cuStreamDestroy: FnHandle
    let cuMemHostAlloc: FnMemHostAlloc
    let cuMemFreeHost: FnMemFreeHost
    let cuStreamWaitEvent: FnStreamWaitEvent
    let cuEventDestroy: FnHandle
    let cuEventCreate: FnEventCreate
    let cuEventRecord: FnEventRecord
    let cuEventSynchronize: FnHandle
    let cuEventElapsedTime: FnEventElapsed
    let cuStreamBeginCapture: FnBeginCapture
    let cuStreamEndCapture: FnEndCapture
    let cuGraphInstantiate: FnGraphInstantiate
    let cuGraphLaunch: FnGraphLaunch
    let cuGraphDestroy: FnHandle
    let cuGraphExecDestroy: FnHandle
    let cuGetErrorString: FnErrorString?

    /// CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR (cuda.h).
    static let attrComputeMajor: Int32 = 75, attrComputeMinor: Int32 = 76
    /// CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN and CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
    static let attrSharedOptIn: Int32 = 97, funcMaxDynamicShared: Int32 = 8
    /// CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: other threads' unsafe calls do not break the capture.
    static let captureThreadLocal: Int32 = 1

    /// Loads libcuda.so.1 and resolves every entry point the backend uses.
    static func load() throws -> CUDADriver {
        let lib = try DynamicLibrary.open(LibrarySearch.candidates(["libcuda.so.1", "libcuda.so"]),
                                          what: "the CUDA driver library libcuda.so.1 (installed with the NVIDIA driver)")
        return try CUDADriver(lib)
    }

    private init(_ l: DynamicLibrary) throws {
        library = l
        cuInit = try l.symbol("cuInit", as: FnInit.self)
        cuDriverGetVersion = try l.symbol("cuDriverGetVersion", as: FnIntOut.self)
        cuDeviceGetCount = try l.symbol("cuDeviceGetCount", as: FnIntOut.self)
        cuDeviceGet = try l.symbol("cuDeviceGet", as: FnDeviceGet.self)
        cuDeviceGetName = try l.symbol("cuDeviceGetName", as: FnDeviceGetName.self)
        cuDeviceGetAttribute = try l.symbol("cuDeviceGetAttribute", as: FnDeviceGetAttribute.self)
        cuDevicePrimaryCtxRetain = try l.symbol("cuDevicePrimaryCtxRetain", as: FnPrimaryCtxRetain.self)
        cuCtxSetCurrent = try l.symbol("cuCtxSetCurrent", as: FnCtxSetCurrent.self)
        cuMemAlloc = try l.symbol("cuMemAlloc_v2", "cuMemAlloc", as: FnMemAlloc.self)
        cuMemFree = try l.symbol("cuMemFree_v2", "cuMemFree", as: FnMemFree.self)
        cuMemsetD32Async = try l.symbol("cuMemsetD32Async", as: FnMemsetD32Async.self)
        cuFuncSetAttribute = l.optionalSymbol("cuFuncSetAttribute", as: FnFuncSetAttribute.self)
        cuMemcpyHtoDAsync = try l.symbol("cuMemcpyHtoDAsync_v2", "cuMemcpyHtoDAsync", as: FnHtoDAsync.self)
        cuMemcpyDtoHAsync = try l.symbol("cuMemcpyDtoHAsync_v2", "cuMemcpyDtoHAsync", as: FnDtoHAsync.self)
        cuModuleLoadData = try l.symbol("cuModuleLoadData", as: FnModuleLoadData.self)
        cuModuleGetFunction = try l.symbol("cuModuleGetFunction", as: FnModuleGetFunction.self)
        cuLaunchKernel = try l.symbol("cuLaunchKernel", as: FnLaunchKernel.self)
        cuStreamCreate = try l.symbol("cuStreamCreate", as: FnStreamCreate.self)
        cuStreamSynchronize = try l.symbol("cuStreamSynchronize", as: FnHandle.self)
        cuStreamDestroy = try l.symbol("cuStreamDestroy_v2", "cuStreamDestroy", as: FnHandle.self)
        cuMemHostAlloc = try l.symbol("cuMemHostAlloc", as: FnMemHostAlloc.self)
        cuMemFreeHost = try l.symbol("cuMemFreeHost", as: FnMemFreeHost.self)
        cuStreamWaitEvent = try l.symbol("cuStreamWaitEvent", as: FnStreamWaitEvent.self)
        cuEventDestroy = try l.symbol("cuEventDestroy_v2", "cuEventDestroy", as: FnHandle.self)
        cuEventCreate = try l.symbol("cuEventCreate", as: FnEventCreate.self)
        cuEventRecord = try l.symbol("cuEventRecord", as: FnEventRecord.self)
        cuEventSynchronize = try l.symbol("cuEventSynchronize", as: FnHandle.self)
        cuEventElapsedTime = try l.symbol("cuEventElapsedTime_v2", "cuEventElapsedTime", as: FnEventElapsed.self)
        cuStreamBeginCapture = try l.symbol("cuStreamBeginCapture_v2", "cuStreamBeginCapture", as: FnBeginCapture.self)
        cuStreamEndCapture = try l.symbol("cuStreamEndCapture", as: FnEndCapture.self)
        cuGraphInstantiate = try l.symbol("cuGraphInstantiateWithFlags", as: FnGraphInstantiate.self)
        cuGraphLaunch = try l.symbol("cuGraphLaunch", as: FnGraphLaunch.self)
        cuGraphDestroy = try l.symbol("cuGraphDestroy", as: FnHandle.self)
        cuGraphExecDestroy = try l.symbol("cuGraphExecDestroy", as: FnHandle.self)
        cuGetErrorString = l.optionalSymbol("cuGetErrorString", as: FnErrorString.self)
    }

    /// Throws `unavailable` with the driver's own message when `r` is not CUDA_SUCCESS.
    func check(_ r: CUresult, _ call: String) throws {
        guard r != 0 else { return }
        var msg: UnsafePointer<CChar>?
        var text = "error \(r)"
        if let f = cuGetErrorString, f(r, &msg) == 0, let m = msg { text = "\(String(cString: m)) (\(r))" }
        throw BackendError.unavailable(backend: "cuda", reason: "\(call) failed: \(text)")
    }
}
