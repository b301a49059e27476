// Tensor (activation storage) and WeightTensor (checkpoint weights, float32 or bf16).
import PI0TestSupport
import XCTest
@testable import PI0Tensor

final class TensorTests: XCTestCase {
    func testNewTensorIsZeroAlignedAndShaped() {
        let t = Tensor(shape: [3, 5, 7])
        XCTAssertEqual(t.count, 105)
        XCTAssertEqual(t.rank, 3)
        XCTAssertEqual(t.capacity, 105)
        XCTAssertEqual(Int(bitPattern: t.data) % 64, 0, "storage must be 64-byte aligned for the SIMD kernels")
        XCTAssertEqual(t.array, [Float](repeating: 0, count: 105))
    }

    func testEmptyShapeStillOwnsStorage() {
        let t = Tensor(shape: [0, 4])
        XCTAssertEqual(t.count, 0)
        XCTAssertEqual(t.capacity, 1)
        XCTAssertEqual(t.array, [])
    }

    func testValuesAreStoredRowMajorAndRowsPointIntoThem() {
        let values = (0..<12).map { Float($0) * 0.5 }
        let t = Tensor(shape: [3, 4], values: values)
        XCTAssertEqual(t.array, values)
        XCTAssertEqual(t.row(0), t.data)
        XCTAssertEqual(t.row(2), t.data + 8)
        XCTAssertEqual(t.row(1)[3], 3.5)
        t.row(1)[0] = -1
        XCTAssertEqual(t.array[4], -1)
    }

    func testReshapeKeepsStorageAndAllowsSmallerCounts() {
        let t = Tensor(shape: [2, 6], values: (0..<12).map(Float.init))
        let before = t.data
        t.reshape([3, 4])
        XCTAssertEqual(t.shape, [3, 4])
        XCTAssertEqual(t.data, before)
        XCTAssertEqual(t.row(1)[0], 4)
        t.reshape([2, 3])   // smaller: a prefix of the same storage (how buffers sized for the worst case are reused)
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(t.array, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(t.capacity, 12)
    }

    func testCopyIsIndependent() {
        let t = Tensor(shape: [4], values: [1, 2, 3, 4])
        let c = t.copy()
        XCTAssertNotEqual(c.data, t.data)
        c.data[0] = 9
        XCTAssertEqual(t.array, [1, 2, 3, 4])
        XCTAssertEqual(c.array, [9, 2, 3, 4])
        XCTAssertEqual(c.shape, [4])
    }
}

final class WeightTensorTests: XCTestCase {
    func testFloat32WeightKeepsValuesExactly() {
        var rng = SplitMix64(seed: 7)
        let values = rng.floats(30).map { $0 * 1e3 }
        let w = WeightTensor(name: "w", shape: [5, 6], floats: values)
        XCTAssertEqual(w.dtype, .float32)
        XCTAssertEqual(w.count, 30)
        XCTAssertEqual(w.floats(), values)
        XCTAssertEqual(w.float(at: 17), values[17])
        XCTAssertEqual((w.owner as? OwnedBytes)?.byteCount, 120)
    }

    func testBFloat16WeightStoresRoundedBits() {
        var rng = SplitMix64(seed: 8)
        let values = rng.floats(24)
        let w = WeightTensor(name: "w", shape: [4, 6], floats: values, dtype: .bfloat16)
        XCTAssertEqual(w.dtype.byteSize, 2)
        XCTAssertEqual((w.owner as? OwnedBytes)?.byteCount, 48)
        for i in 0..<24 {
            let stored = w.pointer.load(fromByteOffset: 2 * i, as: UInt16.self)
            XCTAssertEqual(stored, BFloat16.bits(values[i]), "element \(i)")
            XCTAssertEqual(w.float(at: i), BFloat16.round(values[i]))
        }
        let widened = w.toFloat32()
        XCTAssertEqual(widened.dtype, .float32)
        XCTAssertEqual(widened.shape, [4, 6])
        XCTAssertEqual(widened.name, "w")
        XCTAssertEqual(widened.floats(), values.map(BFloat16.round))
    }

    func testWeightReadsBorrowedMemory() {
        // A mapped checkpoint tensor: bf16 bits in memory the weight does not own, kept alive by `owner`.
        let owner = OwnedBytes(byteCount: 6)
        let bits: [UInt16] = [0x3F80, 0xC000, 0x7F80]   // 1, −2, +inf
        for (i, b) in bits.enumerated() { owner.pointer.storeBytes(of: b, toByteOffset: 2 * i, as: UInt16.self) }
        let w = WeightTensor(name: "mapped", shape: [3], dtype: .bfloat16, pointer: UnsafeRawPointer(owner.pointer), owner: owner)
        XCTAssertEqual(w.floats(), [1, -2, .infinity])
        XCTAssertTrue(w.toFloat32().owner !== owner, "toFloat32 of a bf16 weight makes an owned float32 copy")
        let f32 = WeightTensor(name: "f", shape: [2], floats: [1, 2])
        XCTAssertTrue(f32.toFloat32().owner === f32.owner, "a float32 weight is returned as is")
    }

    func testLinearShapeFlattensTrailingDimsAndChecksBias() throws {
        let conv = WeightTensor(name: "conv", shape: [4, 3, 2, 2], floats: [Float](repeating: 0, count: 48))
        let bias = WeightTensor(name: "b", shape: [4], floats: [0, 0, 0, 0])
        let (n, k) = try conv.linearShape(bias: bias)
        XCTAssertEqual(n, 4)
        XCTAssertEqual(k, 12)
        let wrongBias = WeightTensor(name: "b3", shape: [3], floats: [0, 0, 0])
        XCTAssertThrowsError(try conv.linearShape(bias: wrongBias)) {
            XCTAssertEqual($0 as? BackendError, .unsupportedWeight(name: "b3", reason: "bias has 3 values for 4 outputs"))
        }
        let vector = WeightTensor(name: "v", shape: [5], floats: [Float](repeating: 0, count: 5))
        XCTAssertThrowsError(try vector.linearShape(bias: nil)) {
            XCTAssertEqual($0 as? BackendError, .unsupportedWeight(name: "v", reason: "expected a matrix, got shape [5]"))
        }
    }
}
