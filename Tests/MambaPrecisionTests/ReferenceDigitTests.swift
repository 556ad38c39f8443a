import Testing
import MambaPrecision

// How the references below were produced (Python 3, mpmath 1.x):
//
//     from mpmath import mp, mpf, workprec, workdps, nstr, log1p, expm1, exp, log
//     def inp(s):                       # the 128-bit input, as BigFloat("…", precision: 128) reads it
//         with workprec(128): return mpf(s)
//     def r128(v):                      # v correctly rounded (nearest-even) to 128 bits, 60 digits
//         with workprec(128): w = +v
//         with workdps(100): return nstr(w, 60, min_fixed=1, max_fixed=0)
//     mp.prec = 4000                    # evaluate far beyond 128 bits, then round once
//     sp  = lambda x: log1p(exp(x)) if x <= 0 else x + log1p(exp(-x))
//     sg  = lambda x: 1 / (1 + exp(-x))
//     r128(log1p(inp('1e-30'))), r128(sp(mpf(-1000))), r128(sg(mpf(-1000))), ...
//
// A 128-bit number needs ≈ 39 significant digits to be identified; the
// 60-digit strings are the exact 128-bit results to 60 digits, so reading
// them back at 128 bits (error ≤ 10⁻⁶⁰ relative ≪ ½ ulp = 2⁻¹²⁸) gives those
// results exactly, and `==` below checks the last bit.

/// The reference value: a 60-digit decimal read at 128 bits.
func ref128(_ digits: String) -> BigFloat {
    guard let x = BigFloat(digits, precision: 128) else { fatalError("bad reference \(digits)") }
    return x
}
func in128(_ digits: String) -> BigFloat { ref128(digits) }

@Suite("Digits of constants and functions against mpmath")
struct ReferenceDigitTests {
    // e and π to 70 significant digits (checked with mpmath at 80 digits).
    static let e70 = "2.718281828459045235360287471352662497757247093699959574966967627724077"
    static let pi70 = "3.141592653589793238462643383279502884197169399375105820974944592307816"

    @Test func eAndPiAt256Bits() {
        let e = BigFloat.exp(BigFloat(1, precision: 256))
        let pi = BigFloat.pi(precision: 256)
        #expect(e.precision == 256 && pi.precision == 256)
        // 256 bits ≈ 77 digits; rounding either to 70 digits gives the references.
        #expect(e.decimalString(significantDigits: 70) == Self.e70 + "e+00")
        #expect(pi.decimalString(significantDigits: 70) == Self.pi70 + "e+00")
        // and the references, read at 256 bits, are within 10⁻⁶⁹ relative.
        for (x, text) in [(e, Self.e70), (pi, Self.pi70)] {
            let r = BigFloat(text, precision: 256)!
            let relative = BigFloat.abs(r - x) / x
            #expect(relative < BigFloat("1e-69", precision: 256)!)
        }
    }

    @Test func log1pAndExpm1OfTinyArgument() {
        let x = in128("1e-30")
        #expect(BigFloat.log1p(x) == ref128("9.99999999999999999999999999999499999998013011549888921965798e-31"))
        #expect(BigFloat.expm1(x) == ref128("1.00000000000000000000000000000050000000108606511443030989016e-30"))
        // the naive forms lose everything: 1 + 1e-30 is 1 at 53 bits
        #expect(BigFloat.log(BigFloat(1, precision: 53) + BigFloat(1e-30, precision: 53)).isZero)
    }

    @Test func softplusAndSigmoidAtPlusMinusThousand() {
        let plus = BigFloat(1000, precision: 128), minus = BigFloat(-1000, precision: 128)
        #expect(BigFloat.softplus(plus) == BigFloat(1000, precision: 128))     // 1000 + 5e−435 rounds to 1000
        #expect(BigFloat.softplus(minus) == ref128("5.07595889754945676529180947957433691929787435464520074179355e-435"))
        #expect(BigFloat.sigmoid(minus) == ref128("5.07595889754945676529180947957433691929787435464520074179355e-435"))
        #expect(BigFloat.sigmoid(plus) == BigFloat(1, precision: 128))
        #expect(BigFloat.silu(minus) == ref128("-5.07595889754945676529180947957433691930560217087527480926469e-432"))
        #expect(BigFloat.silu(plus) == BigFloat(1000, precision: 128))
    }

    /// Arguments that go through the Ziv loop (not the shortcuts), with
    /// references from the script above.
    @Test(arguments: [
        // x, softplus, sigmoid, silu, inverseSoftplus ("" where x ≤ 0)
        ("1", "1.31326168751822283404899549496785564191436194504129627295323",
              "7.31058578630004879251159241821836274365218396841674278369505e-1",
              "7.31058578630004879251159241821836274365218396841674278369505e-1",
              "5.41324854612918108978356354932670298122636823859775996415682e-1"),
        ("-1", "3.13261687518222834048995494967855641915831312979824132338187e-1",
               "2.68941421369995120748840758178163725634781603158325721630495e-1",
               "-2.68941421369995120748840758178163725634781603158325721630495e-1", ""),
        ("0.5", "9.74076984180106680872997355081170749756050347259304604362246e-1",
                "6.22459331201854564638900565745508478754587140649868619339815e-1",
                "3.11229665600927282319450282872754239377293570324934309669908e-1",
                "-4.32752129567188571894641000148500451631944155461000748561603e-1"),
        ("50", "5.00000000000000000000001928749847963918055662314052224607191e+1",
               "9.99999999999999999999807125015203608220882391488279008210219e-1",
               "4.99999999999999999999903562507601804110382421026598389729711e+1",
               "4.99999999999999999999998071250152036081944337685947775392809e+1"),
        ("-50", "1.92874984796391778301715681272821153295673861018506071362926e-22",
                "1.92874984796391778301697080892941049115696112821886269525619e-22",
                "-9.64374923981958891508485404464705245579600706859446353135381e-21", ""),
        ("3.25", "3.2880413716877831285612085616106803582838956054274949827823",
                 "9.62673112655870539802285833961501854738642565223767310402191e-1",
                 "3.12868761613157925435742896037488102791013922857767484480937",
                 "3.21045405782050105820741477312658953789143640245783962903635"),
        ("1e-20", "6.93147180559945309422232121458176568076762071846236573901051e-1",
                  "5.0000000000000000000250000000000000000100376485714271131565e-1",
                  "5.00000000000000000002500000000000000000276051637046923480184e-21",
                  "-4.60517018598809136803548290936872841520881988859046470879174e+1"),
    ])
    func gateFunctionsAt128Bits(x: String, softplus: String, sigmoid: String, silu: String, inverse: String) {
        let v = in128(x)
        #expect(BigFloat.softplus(v) == ref128(softplus), "softplus(\(x))")
        #expect(BigFloat.sigmoid(v) == ref128(sigmoid), "sigmoid(\(x))")
        #expect(BigFloat.silu(v) == ref128(silu), "silu(\(x))")
        if !inverse.isEmpty {
            #expect(BigFloat.inverseSoftplus(v) == ref128(inverse), "inverseSoftplus(\(x))")
        }
    }
}
