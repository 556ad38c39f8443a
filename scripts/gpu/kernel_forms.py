"""The form of each real kernel the GPU scripts dump (shared by dump_real_kernels.py and
Benchmarks/scripts/subtle_bugs.py)."""


def kernel_form(name):
    """The form a dumped kernel computes in (`compare --arith ...+form=`): FLA's fused_recurrent kernels are
    recurrent, its chunk kernels and the Mamba-2 SSD chunked, parallel_simple_gla quadratic, the paper's
    Triton 2Mamba tiled."""
    if "fused_recurrent" in name:
        return "recurrent"
    if "chunk_" in name or "ssd" in name:
        return "chunked"
    if "parallel" in name:
        return "quadratic"
    if "twomamba" in name:
        return "tiled"
    return None
