// pi0-kernel-bench: GFLOP/s of PI0CPU's GEMM on π0's linear-layer shapes (fp32 and bf16 weights,
// 1 and 2 threads), beside the machine's measured FMA peak. Not a test.
//
//   swift build -c release --product pi0-kernel-bench --scratch-path .build-release
//   .build-release/release/pi0-kernel-bench [--quick] [--threads 1,2] [--only NAME] [--weights f32|bf16]
//       [--no-peak] [--attention] [--attention-only] [--packing]
//   .build-release/release/pi0-kernel-bench --peak-only [--threads N]   (one JSON line: the FMA peak of one
//       thread by its CPU time and of N threads at once by the wall clock; the quiet-machine probe of
//       tools/reference/compare_speed.py)
// PI0_KERNEL_PATH=portable|avx2|avx512 forces a kernel path.
import Foundation
import PI0CPU

struct Shape { let name: String; let m: Int; let k: Int; let n: Int }

// π0 (PaliGemma 3B + Gemma-300M expert), M x K -> N; see the issue "A fast CPU engine".
let shapes: [Shape] = [
    Shape(name: "siglip qkvo", m: 256, k: 1152, n: 1152),
    Shape(name: "siglip fc1", m: 256, k: 1152, n: 4304),
    Shape(name: "siglip fc2", m: 256, k: 4304, n: 1152),
    Shape(name: "projector", m: 256, k: 1152, n: 2048),
    Shape(name: "siglip3 qkvo", m: 768, k: 1152, n: 1152),      // three cameras stacked
    Shape(name: "siglip3 fc1", m: 768, k: 1152, n: 4304),
    Shape(name: "siglip3 fc2", m: 768, k: 4304, n: 1152),
    Shape(name: "vlm q/o", m: 816, k: 2048, n: 2048),
    Shape(name: "vlm k/v", m: 816, k: 2048, n: 256),
    Shape(name: "vlm gate/up", m: 816, k: 2048, n: 16384),
    Shape(name: "vlm down", m: 816, k: 16384, n: 2048),
    Shape(name: "expert q", m: 51, k: 1024, n: 2048),
    Shape(name: "expert k/v", m: 51, k: 1024, n: 256),
    Shape(name: "expert o", m: 51, k: 2048, n: 1024),
    Shape(name: "expert gate/up", m: 51, k: 1024, n: 4096),
    Shape(name: "expert down", m: 51, k: 4096, n: 1024),
]

let args = CommandLine.arguments
let quick = args.contains("--quick")
func option(_ name: String) -> String? { args.firstIndex(of: name).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } }
let threadList = (option("--threads") ?? "1,2").split(separator: ",").compactMap { Int($0) }
let only = option("--only")
let minSeconds = quick ? 0.15 : 0.5

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

/// Runs body until minSeconds have passed (at least 3 times, after one warm-up); returns the best wall
/// time, the median wall time and the best CPU time of the calling thread (meaningful for 1 thread: it
/// excludes time other processes took on this shared machine), in seconds.
func time(_ body: () -> Void) -> (Double, Double, Double) {
    body()
    var runs: [Double] = [], cpu: [Double] = []
    let clock = ContinuousClock(), start = clock.now
    while runs.count < 3 || seconds(clock.now - start) < minSeconds {
        let c0 = threadCPUSeconds()
        runs.append(seconds(clock.measure(body)))
        cpu.append(threadCPUSeconds() - c0)
    }
    runs.sort()
    return (runs[0], runs[runs.count / 2], cpu.min()!)
}

/// Fast seeded uniform floats (SystemRandomNumberGenerator costs a syscall per number).
struct Xorshift { var s: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next(_ scale: Float) -> Float {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        return (Float(s >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
}

if args.contains("--peak-only") {
    let n = threadList.max() ?? 1
    let one = FMAPeak.measure(iterations: 20_000_000) ?? .nan, all = FMAPeak.measureWall(threads: n) ?? .nan
    print(String(format: "{\"cpu\": \"%@\", \"one_thread_cpu_gflop_per_s\": %.1f, \"threads\": %d, \"all_threads_wall_gflop_per_s\": %.1f}",
                 CPUFeatures.summary, one, n, all))
    exit(0)
}

print("CPU: \(CPUFeatures.summary); kernel path: \(KernelPath.best) (MR \(KernelPath.best.rowTile), NR \(KernelPath.best.panelWidth)); usable: \(KernelPath.usable)")
let peak = args.contains("--no-peak") ? .nan : FMAPeak.measure() ?? .nan
print(String(format: "measured FMA peak, 1 thread: %.1f GFLOP/s", peak))
print("GFLOP/s(wall) from the best wall time; GFLOP/s(cpu) from the calling thread's CPU time (1 thread only)")
print("shape               M     K      N  weights thr   best ms median ms  GFLOP/s(wall)  GFLOP/s(cpu) %peak(cpu)")

var gen = Xorshift()
for s in shapes where (only == nil && !args.contains("--attention-only") && !args.contains("--packing")) || (only != nil && s.name.contains(only!)) {
    let x = (0..<(s.m * s.k)).map { _ in gen.next(1) }
    let w = (0..<(s.n * s.k)).map { _ in gen.next(0.05) }
    let bias = (0..<s.n).map { _ in gen.next(1) }
    var y = [Float](repeating: 0, count: s.m * s.n)
    let elementFilter = option("--weights") // "f32" or "bf16"
    for element in [WeightElement.float32, .bfloat16]
    where elementFilter == nil || elementFilter == (element == .float32 ? "f32" : "bf16") {
        let packed = element == .float32 ? PackedWeight(float32: w, n: s.n, k: s.k)
            : PackedWeight(bfloat16: w.map { UInt16($0.bitPattern >> 16) }, n: s.n, k: s.k)
        for threads in threadList {
            let (best, median, cpu) = time {
                GEMM.linear(x: x, m: s.m, ldx: s.k, weight: packed, bias: bias, y: &y, ldy: s.n, threads: threads)
            }
            let flop = 2.0 * Double(s.m * s.n * s.k)
            let cpuRate = threads == 1 ? String(format: "%13.1f %9.0f%%", flop / cpu / 1e9, 100 * flop / cpu / 1e9 / peak) : ""
            print(String(format: "%-15@ %5d %5d %6d  %-6@ %3d %9.2f %9.2f %14.1f",
                         s.name as NSString, s.m, s.k, s.n, (element == .float32 ? "f32" : "bf16") as NSString,
                         threads, best * 1e3, median * 1e3, flop / best / 1e9) + cpuRate)
        }
    }
}

// Packing cost (once per weight at load): GB/s of source bytes for the largest π0 weight, on one
// thread (PI0_NUM_THREADS=1 so the calling thread does all of it and its CPU time is meaningful).
// Includes the first-touch page faults of the fresh packed buffer.
if args.contains("--packing") {
    setenv("PI0_NUM_THREADS", "1", 1)
    let n = 16384, k = 2048
    let w = (0..<(n * k)).map { _ in gen.next(0.05) }
    let wb = w.map { UInt16($0.bitPattern >> 16) }
    for element in [WeightElement.float32, .bfloat16] {
        let (best, _, cpu) = time {
            _ = element == .float32 ? PackedWeight(float32: w, n: n, k: k) : PackedWeight(bfloat16: wb, n: n, k: k)
        }
        let bytes = Double(n * k * (element == .float32 ? 4 : 2))
        print(String(format: "pack %@ [%d, %d], 1 thread: wall %.1f ms (%.2f GB/s), cpu %.1f ms (%.2f GB/s)",
                     (element == .float32 ? "f32" : "bf16") as NSString, n, k, best * 1e3, bytes / best / 1e9,
                     cpu * 1e3, bytes / cpu / 1e9))
    }
}

// Attention: MQA as π0 calls it (Gemma: 8 query heads, one K/V head, D 256), and SigLIP's per-head
// attention (16 heads with their own K/V, D 72: one mqa call per head with heads = 1, rows 16·72 floats
// apart as in the model). flop = 4·T·H·S·D.
if args.contains("--attention") || args.contains("--attention-only") {
    struct AttnShape { let name: String; let t, s, heads, headDim, calls: Int }
    let attn = [
        AttnShape(name: "vlm prefix", t: 816, s: 816, heads: 8, headDim: 256, calls: 1),
        AttnShape(name: "expert suffix", t: 51, s: 867, heads: 8, headDim: 256, calls: 1),
        AttnShape(name: "siglip (16 x)", t: 256, s: 256, heads: 1, headDim: 72, calls: 16),
    ]
    print("attention          T     S  H   D calls thr   best ms median ms  GFLOP/s(wall)  GFLOP/s(cpu)")
    for a in attn {
        let q = (0..<(a.t * a.heads * a.headDim)).map { _ in gen.next(1) }
        let k = (0..<(a.s * a.headDim)).map { _ in gen.next(1) }, v = k.map { $0 * 0.5 }
        var mask = [Float](repeating: 0, count: a.t * a.s)
        for i in 0..<a.t { for j in 0..<a.s where j > i + (a.s - a.t) { mask[i * a.s + j] = Attention.maskedValue } }
        var out = [Float](repeating: 0, count: a.t * a.heads * a.headDim)
        let qWide = (0..<(a.t * a.calls * a.headDim)).map { _ in gen.next(1) }, kvWide = qWide.map { $0 * 0.5 }
        var outWide = [Float](repeating: 0, count: a.t * a.calls * a.headDim)
        for threads in threadList {
            let (best, median, cpu) = time {
                if a.calls == 1 {
                    Attention.mqa(q: q, k: k, v: v, mask: mask, out: &out, t: a.t, s: a.s, heads: a.heads,
                                  headDim: a.headDim, scale: 1 / Float(a.headDim).squareRoot(), threads: threads,
                                  path: Attention.preferredPath(headDim: a.headDim))
                    return
                }
                // SigLIP's layout: q, k, v and out are [T, calls·D] (all heads side by side); one call per head.
                for c in 0..<a.calls {
                    let ld = a.calls * a.headDim, o = c * a.headDim
                    qWide.withUnsafeBufferPointer { qp in kvWide.withUnsafeBufferPointer { kp in outWide.withUnsafeMutableBufferPointer { op in
                        Attention.mqa(q: qp.baseAddress! + o, k: kp.baseAddress! + o, v: kp.baseAddress! + o, mask: nil,
                                      out: op.baseAddress! + o, t: a.t, s: a.s, heads: 1, headDim: a.headDim,
                                      scale: 1 / Float(a.headDim).squareRoot(), qStrideT: ld, ldk: ld, ldv: ld, outStrideT: ld,
                                      threads: threads, path: Attention.preferredPath(headDim: a.headDim, masked: false))
                    } } }
                }
            }
            let flop = 4.0 * Double(a.t * a.heads * a.s * a.headDim * a.calls)
            print(String(format: "%-14@ %5d %5d %2d %3d %5d %3d %9.2f %9.2f %14.1f",
                         a.name as NSString, a.t, a.s, a.heads, a.headDim, a.calls, threads, best * 1e3, median * 1e3,
                         flop / best / 1e9) + (threads == 1 ? String(format: " %13.1f", flop / cpu / 1e9) : ""))
        }
    }
}
