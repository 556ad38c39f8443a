// swift-tools-version: 6.1
// MambaCheck: numerical verification of the linear-attention family.
//
// Layers (each depends only on those above it; the oracle and the kernels
// cannot see each other, scripts/check-dependencies enforces it):
//   CMPFR, COpenBLAS, CHalf,     system libraries and small C helpers
//   CBLASCore
//   MambaPrecision               arbitrary precision (MPFR), exact rationals (GMP), number formats
//   MambaTensors                 dense tensors, .npy/.npz/safetensors I/O
//   MambaVariants                the variant catalogue (docs/MATH.md §1–2 as data), score traits, precision
//                                modes and their formats, problems, input generators, the exact scale
//   MambaOracle                  the arbitrary-precision oracle (MPFR/GMP only; cannot see the fast kernels)
//   MambaKernels                 Float32/Float16 forms, forward and backward
//   MambaBenchmarks              in-process timing of the kernels (`mambacheck bench`)
//   MambaVerification            metrics, tolerances, verdicts, properties, reports
//   mambacheck                   the command-line tool (thin)
//
// Every target's dependencies are exactly the package modules its sources
// import (scripts/check-dependencies checks this in CI).
import PackageDescription

let package = Package(
    name: "MambaCheck",
    products: [
        .library(name: "MambaPrecision", targets: ["MambaPrecision"]),
        .library(name: "MambaTensors", targets: ["MambaTensors"]),
        .library(name: "MambaVariants", targets: ["MambaVariants"]),
        .library(name: "MambaOracle", targets: ["MambaOracle"]),
        .library(name: "MambaKernels", targets: ["MambaKernels"]),
        .library(name: "MambaBenchmarks", targets: ["MambaBenchmarks"]),
        .library(name: "MambaVerification", targets: ["MambaVerification"]),
        .executable(name: "mambacheck", targets: ["mambacheck"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CMPFR",
            providers: [.apt(["libmpfr-dev", "libgmp-dev"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "CHalf"),
        // OpenBLAS kernel family from CPUID (a load-time constructor; see its header).
        .target(name: "CBLASCore", dependencies: ["COpenBLAS"]),
        .target(name: "MambaPrecision", dependencies: ["CMPFR"]),
        .target(
            name: "MambaTensors",
            dependencies: [
                "MambaPrecision", "CHalf",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        .target(name: "MambaVariants", dependencies: ["MambaPrecision"]),
        // The oracle: MPFR/GMP and the catalogue only, so it cannot call the code it judges.
        .target(name: "MambaOracle", dependencies: ["CMPFR", "MambaPrecision", "MambaVariants"]),
        .target(
            name: "MambaKernels",
            dependencies: ["MambaPrecision", "MambaVariants", "COpenBLAS", "CBLASCore", "CHalf"]
        ),
        // Timing, outside the kernel library.
        .target(name: "MambaBenchmarks", dependencies: ["MambaKernels", "MambaVariants", "COpenBLAS"]),
        .target(
            name: "MambaVerification",
            dependencies: ["MambaPrecision", "MambaTensors", "MambaVariants", "MambaOracle", "MambaKernels"]
        ),
        .executableTarget(
            name: "mambacheck",
            dependencies: [
                "MambaVerification", "MambaOracle", "MambaKernels", "MambaBenchmarks", "MambaVariants", "MambaTensors", "MambaPrecision", "COpenBLAS", "CBLASCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "_MambaTestSupport",
            dependencies: ["MambaPrecision", "MambaVariants"],
            path: "Tests/_MambaTestSupport"
        ),
        .testTarget(
            name: "MambaPrecisionTests",
            dependencies: ["MambaPrecision"]
        ),
        .testTarget(
            name: "MambaVariantsTests",
            dependencies: ["MambaVariants"]
        ),
        .testTarget(
            name: "MambaOracleTests",
            dependencies: ["CMPFR", "MambaOracle", "MambaVariants", "MambaPrecision", "_MambaTestSupport"]
        ),
        .testTarget(
            name: "MambaKernelsTests",
            dependencies: ["MambaKernels", "MambaOracle", "MambaBenchmarks", "CHalf", "CBLASCore", "MambaVariants", "MambaPrecision", "MambaVerification", "_MambaTestSupport"]
        ),
        .testTarget(
            name: "MambaVerificationTests",
            dependencies: ["MambaVerification", "MambaOracle", "MambaKernels", "MambaVariants", "MambaPrecision", "MambaTensors", "_MambaTestSupport"]
        ),
        .testTarget(
            name: "MambaPropertyTests",
            dependencies: [
                "MambaVerification", "MambaOracle", "MambaKernels", "MambaVariants", "MambaPrecision", "_MambaTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "MambaCheckCLITests",
            dependencies: ["MambaVariants", "MambaOracle", "MambaKernels", "MambaTensors", "MambaVerification"]
        ),
        .testTarget(
            name: "MambaTensorsTests",
            dependencies: ["MambaTensors", "MambaPrecision"],
            resources: [.copy("Data")]
        ),
    ]
)
