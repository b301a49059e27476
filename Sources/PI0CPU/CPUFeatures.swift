// CPU feature detection and the choice of kernel path.
//
// The fast paths are chosen at run time (docs/ARCHITECTURE.md: "AVX-512 BF16 → AVX-512 → AVX2 → portable").
// Paths this team could not run on its development machine (AVX-512, measured there: none) are checked
// once per process against the portable kernel before they are used, so a miscompiled or mis-written SIMD
// path falls back instead of producing wrong numbers.
import CPI0Kernels
import PI0Tensor

/// What the running CPU offers to the kernels.
public enum CPUFeatures {
    /// e.g. "avx2+fma", "avx512f+bw+vl+bf16", "arm64 (portable kernels)".
    public static var summary: String { String(cString: pi0k_cpu_summary()) }
    public static var hasAVX2FMA: Bool { KernelPath.avx2.isSupported }
    public static var hasAVX512: Bool { KernelPath.avx512.isSupported }
    public static var hasAVX512BF16: Bool { KernelPath.avx512bf16.isSupported }
}

/// A GEMM kernel family. The packed weight layout depends on it, so a `PackedWeight` is packed for one path.
public enum KernelPath: Int, Sendable, CaseIterable, CustomStringConvertible {
    /// Portable C loops (auto-vectorised); 4 x 16 tiles. Runs everywhere.
    case portable = 0
    /// AVX2 + FMA; 6 x 16 register tile.
    case avx2 = 1
    /// AVX-512 F/BW/VL; 6 x 64 register tile. Exact fp32 arithmetic like the others.
    case avx512 = 2
    /// AVX-512 BF16 `vdpbf16ps`: the activations are ROUNDED TO BF16 before the product (weights must be
    /// bf16). Not exact fp32 math, so never `best`; `CPUBackend` uses it only for layers whose inputs are bf16
    /// already (`bf16Products`), where the rounding changes nothing.
    case avx512bf16 = 3

    var c: Int32 { Int32(rawValue) }

    public var description: String {
        switch self {
        case .portable: "portable"
        case .avx2: "avx2"
        case .avx512: "avx512"
        case .avx512bf16: "avx512bf16"
        }
    }

    /// The CPU (and OS) support the instructions.
    public var isSupported: Bool { pi0k_path_supported(c) != 0 }

    /// Panel width NR and register-tile rows MR.
    public var panelWidth: Int { Int(pi0k_panel_width(c)) }
    public var rowTile: Int { Int(pi0k_row_tile(c)) }

    /// Supported paths that also passed the one-time self-check against the portable kernel.
    public static let usable: [KernelPath] = KernelPath.allCases.filter { $0 == .portable || ($0.isSupported && $0.selfCheck()) }

    /// The fastest exact-fp32 path that is usable here (never `.avx512bf16`). `PI0_KERNEL_PATH=portable|avx2|avx512`
    /// forces a path (if usable), for comparisons; it also turns `bf16Products` off unless it says `avx512bf16`.
    public static let best: KernelPath = {
        if let forced = Threading.environment("PI0_KERNEL_PATH"),
           let path = KernelPath.allCases.first(where: { $0.description == forced && $0 != .avx512bf16 }),
           usable.contains(path) {
            return path
        }
        return [.avx512, .avx2].first(where: { usable.contains($0) }) ?? .portable
    }()

    /// Whether bf16 layers whose inputs are bf16 already (the Gemma layers in bfloat16 mode: PyTorch's bf16
    /// `nn.Linear` multiplies bf16 by bf16 and accumulates in float32) run on `.avx512bf16`, where rounding
    /// the inputs changes nothing and `vdpbf16ps` does twice the multiply-adds per instruction. True when
    /// that path is usable here, unless `PI0_KERNEL_PATH` forces another path (for comparisons).
    public static let bf16Products: Bool = {
        guard usable.contains(.avx512bf16) else { return false }
        guard let forced = Threading.environment("PI0_KERNEL_PATH") else { return true }
        return forced == "avx512bf16"
    }()

    /// Runs a small GEMM (f32 and bf16 weights, odd sizes, bias, alpha) on this path and on the portable path
    /// and compares them. Tolerance 1e-5 of sum |x·w| (the bf16-dot path compares against the portable path
    /// fed the same bf16-rounded x).
    func selfCheck() -> Bool {
        if self == .portable { return true }
        let m = 13, n = 37, k = 301
        var state: UInt32 = 12345
        func next() -> Float { state = state &* 1_664_525 &+ 1_013_904_223; return Float(state >> 8) / Float(1 << 24) * 2 - 1 }
        var x = (0..<(m * k)).map { _ in next() }
        let w = (0..<(n * k)).map { _ in next() }
        let wb = w.map { UInt16($0.bitPattern >> 16) }
        let bias = (0..<n).map { _ in next() }
        if self == .avx512bf16 { // portable reference sees the same rounded activations
            x = x.map { BFloat16.round($0) }
        }
        var ok = true
        for useBF16 in [false, true] {
            if self == .avx512bf16 && !useBF16 { continue }
            let mine = useBF16 ? PackedWeight(bfloat16: wb, n: n, k: k, path: self) : PackedWeight(float32: w, n: n, k: k, path: self)
            let port = useBF16 ? PackedWeight(bfloat16: wb, n: n, k: k, path: .portable) : PackedWeight(float32: w, n: n, k: k, path: .portable)
            var y1 = [Float](repeating: 0, count: m * n), y2 = y1
            GEMM.linear(x: x, m: m, ldx: k, weight: mine, bias: bias, y: &y1, ldy: n, alpha: 0.5, threads: 1)
            GEMM.linear(x: x, m: m, ldx: k, weight: port, bias: bias, y: &y2, ldy: n, alpha: 0.5, threads: 1)
            for i in 0..<(m * n) where !(abs(y1[i] - y2[i]) <= 1e-5 * Float(k)) { ok = false }
        }
        return ok
    }
}

