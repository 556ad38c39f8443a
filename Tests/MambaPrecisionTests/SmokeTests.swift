import Testing
import MambaPrecision
@Test func smoke() { #expect(BigFloat(1.5) + BigFloat(2.0) == BigFloat(3.5)) }
