// BFloat16 rounding as PyTorch's `.to(torch.bfloat16)` (c10 round_to_nearest_even): ties to even,
// NaN stays NaN (quiet), overflow to ±inf, subnormals rounded like any other value, signs kept.
import PI0TestSupport
import XCTest
@testable import PI0Tensor

final class BFloat16Tests: XCTestCase {
    private func bits(_ u: UInt32) -> UInt16 { BFloat16.bits(Float(bitPattern: u)) }

    func testWideningIsExact() {
        XCTAssertEqual(BFloat16.float(0x3F80), 1)
        XCTAssertEqual(BFloat16.float(0xC000), -2)
        XCTAssertEqual(BFloat16.float(0x3F81), 1 + 1.0 / 128)
        XCTAssertEqual(BFloat16.float(0x7F80), .infinity)
        XCTAssertEqual(BFloat16.float(0x0001), Float(bitPattern: 0x0001_0000))
        for b: UInt16 in [0x0000, 0x0001, 0x3F80, 0x7F7F, 0x8000, 0xFF80, 0x1234] {
            XCTAssertEqual(BFloat16.bits(BFloat16.float(b)), b, "bf16 → float → bf16 must be the identity (0x\(String(b, radix: 16)))")
        }
    }

    func testTiesRoundToEven() {
        XCTAssertEqual(bits(0x3F80_8000), 0x3F80)   // halfway between 0x3F80 (even) and 0x3F81: down
        XCTAssertEqual(bits(0x3F81_8000), 0x3F82)   // halfway between 0x3F81 and 0x3F82 (even): up
        XCTAssertEqual(bits(0x3F80_8001), 0x3F81)   // just above halfway: up
        XCTAssertEqual(bits(0x3F80_7FFF), 0x3F80)   // just below halfway: down
        XCTAssertEqual(bits(0xBF81_8000), 0xBF82)   // negative values: the same on the magnitude
        XCTAssertEqual(bits(0x3FFF_8000), 0x4000)   // a tie that carries into the exponent
        XCTAssertEqual(BFloat16.round(45.254833), 45.25)   // √2048, LeRobot's bf16 embedding scale
    }

    func testNaNStaysNaN() {
        // Payload only in the low 16 bits: plain truncation would give 0x7F80 (infinity).
        for u: UInt32 in [0x7FC0_0000, 0x7F80_0001, 0x7FFF_FFFF, 0xFF80_0001, 0xFFC0_0000] {
            let b = bits(u)
            XCTAssertTrue(BFloat16.float(b).isNaN, "0x\(String(u, radix: 16)) → 0x\(String(b, radix: 16)) is not NaN")
            XCTAssertEqual(b & 0x8000, UInt16(u >> 31) << 15, "sign of 0x\(String(u, radix: 16))")
        }
        XCTAssertTrue(BFloat16.round(.nan).isNaN)
    }

    func testOverflowGoesToInfinity() {
        XCTAssertEqual(BFloat16.round(.greatestFiniteMagnitude), .infinity)
        XCTAssertEqual(BFloat16.round(-.greatestFiniteMagnitude), -.infinity)
        XCTAssertEqual(bits(0x7F7F_8000), 0x7F80)   // tie between 0x7F7F (odd) and 0x7F80: to even = inf
        XCTAssertEqual(bits(0x7F7F_7FFF), 0x7F7F)   // below the tie: the largest finite bf16
        XCTAssertEqual(BFloat16.round(Float(bitPattern: 0x7F7F_0000)), Float(bitPattern: 0x7F7F_0000))
        XCTAssertEqual(BFloat16.round(.infinity), .infinity)
        XCTAssertEqual(BFloat16.round(-.infinity), -.infinity)
    }

    func testSubnormalsAndZeros() {
        XCTAssertEqual(bits(0x0000_0001), 0x0000)   // smallest float32 subnormal → +0
        XCTAssertEqual(bits(0x0000_8000), 0x0000)   // tie → even (0)
        XCTAssertEqual(bits(0x0001_8000), 0x0002)   // tie → even (2)
        XCTAssertEqual(bits(0x0001_0000), 0x0001)   // smallest bf16 subnormal is exact
        XCTAssertEqual(bits(0x007F_FFFF), 0x0080)   // largest subnormal rounds up to the smallest normal
        XCTAssertEqual(bits(0x8000_0001), 0x8000)   // → −0, sign kept
        XCTAssertEqual(BFloat16.round(-0.0).sign, .minus)
        XCTAssertEqual(BFloat16.round(0.0).bitPattern, 0)
    }

    /// Against rounding done the long way: the two bf16 neighbours of x compared in Double, ties to the
    /// even one, over random finite values of every magnitude.
    func testAgreesWithNearestNeighbourInDouble() {
        var rng = SplitMix64(seed: 0xBF16)
        for _ in 0..<20_000 {
            let u = UInt32(truncatingIfNeeded: rng.next()) & 0x7F7E_FFFF | (rng.next() % 2 == 0 ? 0 : 0x8000_0000)
            let x = Float(bitPattern: u)
            let lo = UInt16(u >> 16), hi = lo &+ 1
            let dLo = abs(Double(x) - Double(BFloat16.float(lo))), dHi = abs(Double(x) - Double(BFloat16.float(hi)))
            let want = dLo < dHi ? lo : dHi < dLo ? hi : (lo % 2 == 0 ? lo : hi)
            XCTAssertEqual(BFloat16.bits(x), want, "x = \(x) (0x\(String(u, radix: 16)))")
        }
    }

    func testInPlaceRoundingOfABuffer() {
        var v: [Float] = [1.00390625, 3.0e38, .nan, Float(bitPattern: 0x0001_16C2), -2.5]
        v.withUnsafeMutableBufferPointer { BFloat16.round($0.baseAddress!, count: $0.count) }
        XCTAssertEqual(v[0], 1)   // 1 + 2⁻⁸: a tie → even (1)
        XCTAssertTrue(v[1].isFinite)   // below the largest finite bf16 (3.3895e38)
        XCTAssertEqual(v[1].bitPattern & 0xFFFF, 0)
        XCTAssertTrue(v[2].isNaN)
        XCTAssertEqual(v[3], Float(bitPattern: 0x0001_0000))   // ≈1e-40 (0x000116C2) → the smallest bf16 subnormal
        XCTAssertEqual(v[4], -2.5)
    }
}
