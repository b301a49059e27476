// The dry-run backend (`pi0 inspect`) builds a model's tensors and weights by shape alone: storage of any
// size costs nothing, uploads are checked against it and dropped, and bad weight shapes raise the same
// typed errors, naming the tensor, as a computing backend.
import XCTest
import PI0Tensor

final class DryRunBackendTests: XCTestCase {
    func testTensorsAndWeightsAreShapesOnly() throws {
        let b = DryRunBackend()
        XCTAssertEqual(b.allocate(count: 0).count, 0)
        XCTAssertEqual(b.allocate(count: 1 << 40).count, 1 << 40, "no memory behind a dry-run tensor")
        let t = DeviceTensor(shape: [2, 3], uploading: [1, 2, 3, 4, 5, 6], backend: b)
        XCTAssertEqual(t.capacity, 6)
        b.upload([7, 8], to: t + 4)
        b.synchronize()

        let w = WeightTensor(name: "conv", shape: [5, 3, 2, 2], floats: [Float](repeating: 0, count: 60), dtype: .bfloat16)
        let p = try b.prepareLinear(w, bias: WeightTensor(name: "bias", shape: [5], floats: [Float](repeating: 0, count: 5)),
                                    inputsAreBF16: true)
        XCTAssertEqual([p.outFeatures, p.inFeatures, p.byteCount], [5, 12, 0])
        let e = try b.prepareEmbedding(WeightTensor(name: "embed", shape: [11, 4], floats: [Float](repeating: 0, count: 44)))
        XCTAssertEqual([e.rows, e.width], [11, 4])
    }

    func testBadWeightShapesAreTypedErrorsNamingTheTensor() {
        let b = DryRunBackend()
        let vector = WeightTensor(name: "layer.weight", shape: [4], floats: [0, 0, 0, 0])
        XCTAssertThrowsError(try b.prepareLinear(vector, bias: nil)) { e in
            XCTAssertEqual(e as? BackendError, .unsupportedWeight(name: "layer.weight", reason: "expected a matrix, got shape [4]"))
        }
        let w = WeightTensor(name: "w", shape: [2, 2], floats: [0, 0, 0, 0])
        XCTAssertThrowsError(try b.prepareLinear(w, bias: WeightTensor(name: "b", shape: [3], floats: [0, 0, 0]))) { e in
            XCTAssertEqual(e as? BackendError, .unsupportedWeight(name: "b", reason: "bias has 3 values for 2 outputs"))
        }
        XCTAssertThrowsError(try b.prepareEmbedding(WeightTensor(name: "table", shape: [2, 1, 2], floats: [0, 0, 0, 0]))) { e in
            XCTAssertEqual(e as? BackendError, .unsupportedWeight(name: "table", reason: "expected [rows, width], got shape [2, 1, 2]"))
        }
    }
}
