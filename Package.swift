// swift-tools-version: 6.0
// PI0-Swift: π0 (pi0) vision-language-action policy inference in Swift.
// Targets depend downwards only (see docs/ARCHITECTURE.md):
//   PI0Tensor ← PI0CPU(CPI0Kernels) ← PI0 ← PI0Runtime ← PI0Server ← pi0
//   SafeTensors, SentencePiece, ImageIO, MessagePack, PI0Hub are standalone (InputFiles, a file-opening helper, aside).
import PackageDescription

let package = Package(
    name: "PI0Swift",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "PI0", targets: ["PI0"]),
        .library(name: "PI0Runtime", targets: ["PI0Runtime"]),
        .library(name: "PI0Hub", targets: ["PI0Hub"]),
        .library(name: "PI0Server", targets: ["PI0Server"]),
        .library(name: "SafeTensors", targets: ["SafeTensors"]),
        .library(name: "SentencePiece", targets: ["SentencePiece"]),
        .library(name: "MessagePack", targets: ["MessagePack"]),
        .executable(name: "pi0", targets: ["pi0"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        // Storage, dtypes and the backend interface.
        .target(name: "PI0Tensor"),
        // SIMD micro-kernels with function-level target attributes (runtime CPU dispatch, no unsafeFlags).
        .target(name: "CPI0Kernels"),
        // The fast CPU backend.
        .target(name: "PI0CPU", dependencies: ["PI0Tensor", "CPI0Kernels"]),
        // The CUDA backend: driver API, cuBLAS and NVRTC loaded at run time (dlopen), no link-time CUDA.
        .target(name: "PI0CUDA", dependencies: ["PI0Tensor"]),
        // Opening user-named input files without blocking (FIFOs, devices, directories refused).
        .target(name: "InputFiles"),
        .target(name: "SafeTensors", dependencies: ["InputFiles"]),
        .target(name: "SentencePiece", dependencies: ["InputFiles"]),
        .target(name: "ImageIO", dependencies: ["InputFiles"]),
        .target(name: "MessagePack"),
        // The model: configs, checkpoint mapping, SigLIP, Gemma, PaliGemmaWithExpert, PI0.
        .target(name: "PI0", dependencies: ["PI0Tensor", "SafeTensors", "InputFiles"]),
        // Hugging Face hub: the local cache layout and resumable, verified downloads (the only FoundationNetworking user).
        .target(name: "PI0Hub"),
        // The policy: observations, preprocessing, normalisation, tokenizer, checkpoint discovery.
        .target(name: "PI0Runtime", dependencies: ["PI0", "PI0CPU", "PI0CUDA", "PI0Hub", "SafeTensors", "SentencePiece", "ImageIO", "InputFiles"]),
        // openpi-compatible websocket policy server.
        .target(name: "PI0Server", dependencies: [
            "PI0Runtime", "MessagePack",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "pi0", dependencies: [
            "PI0", "PI0Hub", "PI0Runtime", "PI0Server", "PI0CUDA", "SafeTensors", "SentencePiece", "ImageIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], resources: [.copy("Resources/DemoCheckpoint"), .copy("Resources/SampleFrames")]),
        // GEMM / attention benchmark on π0's shapes (tools/kernels; not a test).
        .executableTarget(name: "pi0-kernel-bench", dependencies: ["PI0CPU"], path: "tools/kernels"),

        // Helpers shared by the test targets (running the built `pi0`, the seeded random generator, the counting
        // backend, the op-conformance table).
        .target(name: "PI0TestSupport", dependencies: ["PI0Tensor"], path: "Tests/PI0TestSupport"),
        .testTarget(name: "PI0TensorTests", dependencies: ["PI0Tensor", "PI0TestSupport"]),
        .testTarget(name: "PI0CPUTests", dependencies: ["PI0CPU", "PI0Tensor", "PI0TestSupport"]),
        .testTarget(name: "PI0CUDATests", dependencies: ["PI0CUDA", "PI0Tensor", "PI0", "PI0Runtime", "SafeTensors"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "PI0TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PI0Tests", dependencies: ["PI0", "PI0CPU", "SafeTensors", "PI0TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "SentencePieceTests", dependencies: ["SentencePiece", "PI0TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ImageIOTests", dependencies: ["ImageIO", "PI0TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PI0RuntimeTests", dependencies: ["PI0Runtime", "PI0", "PI0Tensor", "PI0CPU", "PI0Server", "MessagePack", "SafeTensors", "ImageIO", "SentencePiece", "PI0TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PI0HubTests", dependencies: ["PI0Hub", "PI0Runtime", "PI0TestSupport"]),
        .testTarget(name: "MessagePackTests", dependencies: ["MessagePack", "PI0TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PI0ServerTests", dependencies: ["PI0Server", "MessagePack", "PI0Runtime", "PI0TestSupport"]),
    ]
)
