import Testing
import MambaVerification
@Test func verificationModuleLinks() { #expect(Bool(true) == true) }
