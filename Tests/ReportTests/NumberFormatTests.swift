// speculative-moe
// SPDX-License-Identifier: Apache-2.0

import Testing

@testable import MoERoutingReport

struct NumberFormatTests {
    @Test func fixedRoundsHalfAwayFromZero() {
        #expect(NumberFormat.fixed(0.1, decimals: 2) == "0.10")
        #expect(NumberFormat.fixed(2.345, decimals: 1) == "2.3")
        #expect(NumberFormat.fixed(2.25, decimals: 1) == "2.3")
        #expect(NumberFormat.fixed(-2.25, decimals: 1) == "-2.3")
        #expect(NumberFormat.fixed(-0.04, decimals: 1) == "0.0")
        #expect(NumberFormat.fixed(12, decimals: 0) == "12")
        #expect(NumberFormat.fixed(1.5, decimals: 3, trimZeros: true) == "1.5")
        #expect(NumberFormat.fixed(.nan, decimals: 2) == "n/a")
        #expect(NumberFormat.fixed(1e20, decimals: 2) == "1e20")
    }

    @Test func coordinatesKeepOneDecimal() {
        #expect(NumberFormat.coordinate(17.549) == "17.5")
        #expect(NumberFormat.coordinate(35.0) == "35")
        #expect(NumberFormat.coordinate(-0.01) == "0")
        #expect(NumberFormat.coordinate(99.96) == "100")
    }

    @Test func valuesKeepFourSignificantDigits() {
        #expect(NumberFormat.value(0) == "0")
        #expect(NumberFormat.value(0.125) == "0.125")
        #expect(NumberFormat.value(0.012346) == "0.01235")
        #expect(NumberFormat.value(1234.4) == "1234")
        #expect(NumberFormat.value(-3.14159) == "-3.142")
        #expect(NumberFormat.value(0.00026789) == "2.679e-4")
        #expect(NumberFormat.value(9.9999e-4) == "1e-3")
        #expect(NumberFormat.value(2_500_000) == "2.5e6")
        #expect(NumberFormat.value(.infinity) == "n/a")
    }

    @Test func cellValuesAreShort() {
        #expect(NumberFormat.cell(0.2534) == "0.25")
        #expect(NumberFormat.cell(0.0002) == "0.00")
        #expect(NumberFormat.cell(-0.001) == "0.00")
        #expect(NumberFormat.cell(12.34) == "12.3")
        #expect(NumberFormat.cell(1234.5) == "1235")
        #expect(NumberFormat.cell(123_456) == "123456")
    }

    @Test func groupsThousands() {
        #expect(NumberFormat.grouped(0) == "0")
        #expect(NumberFormat.grouped(999) == "999")
        #expect(NumberFormat.grouped(1000) == "1,000")
        #expect(NumberFormat.grouped(1_234_567) == "1,234,567")
        #expect(NumberFormat.grouped(-45_000) == "-45,000")
    }
}
