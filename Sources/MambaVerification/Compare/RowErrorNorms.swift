/// `‖x_r − y_r‖₂` for each row `r` of `width` consecutive elements: the row
/// errors the inference rules (`ChunkLengthInference`, `RecurrentFormInference`)
/// compare between a candidate and MambaCheck's own kernels.
func rowErrorNorms(_ x: [Double], _ y: [Double], width: Int) -> [Double] {
    stride(from: 0, to: y.count, by: width).map { s in
        var sum = 0.0
        for e in s..<(s + width) { let d = x[e] - y[e]; sum += d * d }
        return sum.squareRoot()
    }
}
