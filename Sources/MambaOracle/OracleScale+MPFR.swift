import CMPFR
import MambaPrecision
import MambaVariants

extension OracleScale {
    /// `r ← s` rounded once in direction `mode` to `r`'s precision: exact when
    /// the kernel received a binary number (r has ≥ 53 bits), otherwise the
    /// real scale (`1/√n` via `mpfr_rec_sqrt`, a decimal via `mpfr_strtofr`),
    /// both correctly rounded by MPFR. With `MPFR_RNDD`/`MPFR_RNDU` the two
    /// calls give an enclosure of the exact scale (Proofs/T7, step 1).
    func set(_ r: UnsafeMutablePointer<__mpfr_struct>, _ mode: mpfr_rnd_t) {
        if let x = receivedBinary {
            precondition(mc_get_prec(r) >= 53, "a binary64 scale needs >= 53 bits")
            mc_set_d(r, x, MPFR_RNDN)
            return
        }
        switch value {
        case .inverseSquareRoot(let n):
            mc_set_si(r, n, MPFR_RNDN)  // exact: r has ≥ 64 bits at every oracle precision
            precondition(mc_get_prec(r) >= 64)
            mc_rec_sqrt(r, r, mode)
        case .decimal(let text):
            _ = text.withCString { mc_strtofr(r, $0, nil, 10, mode) }
        case .binary64(let x):
            mc_set_d(r, x, MPFR_RNDN)
        }
    }
}
