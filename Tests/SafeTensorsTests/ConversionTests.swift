// ConversionTests.swift — the bit-level F16/BF16 conversions against independent references: Swift's
// own Float16 (hardware / compiler-rt conversions, where the platform has it) for half precision, and the
// definition of round-to-nearest-even for bfloat16 (ml_dtypes agreement is in GoldenFileTests).

import XCTest
@testable import SafeTensors

final class ConversionTests: XCTestCase {
    #if !(os(macOS) && arch(x86_64))
    func testHalfToFloatMatchesSwiftFloat16ForAllBitPatterns() {
        for bits in 0...UInt16.max {
            let want = Float(Float16(bitPattern: bits))
            let got = Float16Conversion.toFloat(bits)
            if want.isNaN {
                XCTAssertTrue(got.isNaN, "0x\(String(bits, radix: 16))")
            } else {
                XCTAssertEqual(got.bitPattern, want.bitPattern, "0x\(String(bits, radix: 16))")
            }
        }
    }

    func testFloatToHalfMatchesSwiftFloat16() {
        var checked = 0
        var pattern: UInt32 = 0
        // Every 997th Float bit pattern (~4.3M values, both signs, all exponents) plus the exact halfway points.
        while true {
            let x = Float(bitPattern: pattern)
            let want = Float16(x).bitPattern
            let got = Float16Conversion.fromFloat(x)
            if x.isNaN {
                XCTAssertTrue(Float16(bitPattern: got).isNaN)
            } else if got != want {
                XCTFail("fromFloat(\(x) = 0x\(String(pattern, radix: 16))): got 0x\(String(got, radix: 16)), want 0x\(String(want, radix: 16))")
                return
            }
            checked += 1
            let (next, overflow) = pattern.addingReportingOverflow(997)
            if overflow { break }
            pattern = next
        }
        for h in UInt16(0)..<0x7C00 {  // midpoints between consecutive finite halves (ties) and just around them
            let lo = Float(Float16(bitPattern: h)), hi = Float(Float16(bitPattern: h + 1))
            let mid = (lo + hi) / 2  // exact in Float
            for x in [mid, mid.nextDown, mid.nextUp, -mid] where x.isFinite {
                XCTAssertEqual(Float16Conversion.fromFloat(x), Float16(x).bitPattern, "\(x)")
            }
        }
        XCTAssertGreaterThan(checked, 4_000_000)
    }
    #endif

    func testHalfSpecialValues() {
        XCTAssertEqual(Float16Conversion.toFloat(0x3C00), 1)
        XCTAssertEqual(Float16Conversion.toFloat(0x7BFF), 65504)
        XCTAssertEqual(Float16Conversion.toFloat(0x0001), 0x1p-24)
        XCTAssertEqual(Float16Conversion.toFloat(0x8000).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(Float16Conversion.toFloat(0xFC00), -.infinity)
        XCTAssertTrue(Float16Conversion.toFloat(0x7E00).isNaN)
        XCTAssertEqual(Float16Conversion.fromFloat(65519.99), 0x7BFF)
        XCTAssertEqual(Float16Conversion.fromFloat(65520), 0x7C00)   // tie rounds to even = infinity
        XCTAssertEqual(Float16Conversion.fromFloat(0x1p-25), 0)       // tie between 0 and the smallest subnormal
        XCTAssertEqual(Float16Conversion.fromFloat(0x1.8p-25), 1)
        XCTAssertEqual(Float16Conversion.fromFloat(-0.0), 0x8000)
        XCTAssertEqual(Float16Conversion.fromFloat(.nan) & 0x7E00, 0x7E00)
    }

    func testBFloat16RoundTripsAndRoundsToNearestEven() {
        for bits in 0...UInt16.max {
            let x = BFloat16Conversion.toFloat(bits)
            XCTAssertEqual(x.bitPattern, UInt32(bits) << 16)
            if x.isNaN {
                XCTAssertTrue(BFloat16Conversion.toFloat(BFloat16Conversion.fromFloat(x)).isNaN)
                continue
            }
            XCTAssertEqual(BFloat16Conversion.fromFloat(x), bits)
            // Halfway to the next pattern: ties go to the even one; a hair above goes up, below goes down.
            let base = UInt32(bits) << 16
            if bits & 0x7FFF == 0x7F80 { continue }  // infinity: any low bits would make a NaN
            let even: UInt16 = bits & 1 == 0 ? bits : bits &+ 1
            XCTAssertEqual(BFloat16Conversion.fromFloat(Float(bitPattern: base | 0x8000)), even)
            XCTAssertEqual(BFloat16Conversion.fromFloat(Float(bitPattern: base | 0x8001)), bits &+ 1)
            XCTAssertEqual(BFloat16Conversion.fromFloat(Float(bitPattern: base | 0x7FFF)), bits)
        }
    }

    func testBFloat16NaNNeverBecomesInfinity() {
        // A NaN whose payload is only in the low 16 bits truncates to the infinity pattern; it must stay NaN.
        let sneaky = Float(bitPattern: 0x7F80_0001)
        XCTAssertTrue(sneaky.isNaN)
        XCTAssertTrue(BFloat16Conversion.toFloat(BFloat16Conversion.fromFloat(sneaky)).isNaN)
        XCTAssertTrue(BFloat16Conversion.toFloat(BFloat16Conversion.fromFloat(-sneaky)).isNaN)
        XCTAssertEqual(BFloat16Conversion.fromFloat(.greatestFiniteMagnitude), 0x7F80)  // rounds up to +inf
        XCTAssertEqual(BFloat16Conversion.fromFloat(-.infinity), 0xFF80)
    }
}
