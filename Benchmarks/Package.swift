// swift-tools-version: 6.1
// Benchmarks of the optimized MambaCheck kernels (ordo-one/benchmark), kept
// out of the main package so that it stays light.
//
//   cd Benchmarks && swift package --scratch-path ../.build-bench benchmark
//
// On a CPU that OpenBLAS does not recognise (it falls back to the SSE3
// "Prescott" kernels) MambaKernels' load-time selection (CBLASCore) picks
// the family the CPU's features allow, here as in the CLI; OPENBLAS_CORETYPE
// in the environment still overrides it. The kernels' own timing helper
// (`KernelBenchmark`, in MambaBenchmarks) prints the BLAS core in use.
import PackageDescription

let package = Package(
    name: "MambaCheckBenchmarks",
    dependencies: [
        .package(name: "MambaCheck", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "KernelBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MambaKernels", package: "MambaCheck"),
                .product(name: "MambaVariants", package: "MambaCheck"),
            ],
            path: "Benchmarks/KernelBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
