// The fixture models (tiny_1cam float32, tiny_3cam_bf16) end to end on a CUDA backend in the three
// ways a runtime drives it: eager, the whole sample captured as one graph, and only the denoise loop
// captured (docs/CUDA.md, "Graph capture"), driving `SamplingPlan` as PI0Runtime's SamplingEngine does
// (this test target does not depend on PI0Runtime). Shared by the emulation tests and the GPU tests.
import Foundation
import PI0
import PI0CUDA
import PI0Tensor
import SafeTensors

enum GraphMode: String, CaseIterable { case none, full, loop }

struct FixtureRun {
    let name: String
    let actions: [Float]
    let expected: [Float]
    /// PI0Tests/FixtureParityTests' tolerances: float32 rel-L2 ≤ 2e-5, bf16 ≤ 1e-2.
    let tolerance: Double

    static let names = ["tiny_1cam", "tiny_3cam_bf16"]

    /// Loads fixture `name`, samples `replays` times in `mode` (the plan captured once), returns the last.
    /// `phase` is called after each step of a graph mode: "load", "upload", "prefix" (loop mode),
    /// "capture", "replay", "finish".
    static func run(_ name: String, backend: CUDABackend, mode: GraphMode, replays: Int = 1,
                    phase: ((String) -> Void)? = nil) throws -> FixtureRun {
        let dir = Bundle.module.resourcePath! + "/Fixtures/" + name
        let ckpt = try Checkpoint(directory: dir)
        let model = try PI0Model(checkpoint: ckpt, precision: nil, backend: backend)
        let inputs = try PI0Inputs.load(from: try SafeTensorsFile(path: dir + "/inputs.safetensors"), dims: ckpt.dims, config: ckpt.config)
        let outputs = try SafeTensorsFile(path: dir + "/outputs.safetensors")
        let steps = outputs.contains("timesteps") ? try outputs.info("timesteps").shape[0] : nil
        let tolerance = ckpt.config.precision == .bfloat16 ? 1e-2 : 2e-5
        var actions: [Float] = []
        if mode == .none {
            for _ in 0..<replays { actions = try model.sampleActions(inputs, steps: steps).array }
        } else {
            // As PI0Runtime's SamplingEngine: a loop plan keeps every prompt position (one graph, any prompt).
            let (shape, guide) = try model.prepare(inputs, steps: steps, dropPadding: mode == .full)
            let plan = model.takePlan(shape)
            let noise = inputs.noise ?? GaussianNoise.sample(count: inputs.batch * ckpt.config.chunkSize * ckpt.config.maxActionDim, seed: 0)
            var work: CapturedWork?
            phase?("load")
            for _ in 0..<replays {
                try plan.upload(inputs, noise: noise, guide: guide)
                phase?("upload")
                if mode == .loop { plan.enqueuePrefix(observer: nil, lap: nil); phase?("prefix") }
                if work == nil {
                    work = try backend.capture {
                        if mode == .full { plan.enqueuePrefix(observer: nil, lap: nil) }
                        plan.enqueueLoop(observer: nil, lap: nil)
                    }
                    phase?("capture")
                }
                try backend.replay(work!)
                phase?("replay")
                actions = try plan.finish().array
                phase?("finish")
            }
            model.returnPlan(plan)
        }
        return FixtureRun(name: name, actions: actions, expected: try outputs.floats("actions"), tolerance: tolerance)
    }

    var relL2: Double { CUDASelfTest.relL2(actions, expected) }
}
