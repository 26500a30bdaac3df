// swift-tools-version:6.2
// libFuzzer targets for swift-nghttp2, kept in their own package so that library users never build them. Build and
// run them with `scripts/fuzz` from the repository root (it also builds an instrumented libnghttp2); by hand:
//
//     swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xlinker -L<dir with an instrumented libnghttp2.a>
//     .build/debug/FuzzServerSession Corpus/FuzzServerSession
import Foundation
import PackageDescription

// The library is the package one level up. SwiftPM names a path dependency after its directory, so its identity
// is that directory's name (`main`, `swift-nghttp2`, ... whatever the clone is called), not the manifest's name.
let library = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent.lowercased()

// Each fuzz target defines `LLVMFuzzerTestOneInput` and no `main` (libFuzzer's runtime has it).
let fuzzTarget: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "swift-nghttp2-fuzz",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "NGHTTP2", package: library)], path: "Sources/FuzzSupport"),
        // A server `Session` fed what a client sends (after the connection preface the harness prepends).
        .executableTarget(
            name: "FuzzServerSession",
            dependencies: ["FuzzSupport", .product(name: "NGHTTP2", package: library)],
            path: "Sources/FuzzServerSession",
            swiftSettings: fuzzTarget
        ),
        // A client `Session` with requests in flight, fed what a server sends.
        .executableTarget(
            name: "FuzzClientSession",
            dependencies: ["FuzzSupport", .product(name: "NGHTTP2", package: library)],
            path: "Sources/FuzzClientSession",
            swiftSettings: fuzzTarget
        ),
        // `HPACK.Decoder`: header blocks, with a dynamic table size change.
        .executableTarget(
            name: "FuzzHPACKDecoder",
            dependencies: ["FuzzSupport", .product(name: "NGHTTP2", package: library)],
            path: "Sources/FuzzHPACKDecoder",
            swiftSettings: fuzzTarget
        ),
        // The server's `ConnectionHandler` (internal: `@testable import`, debug builds only) on an `EmbeddedChannel`.
        .executableTarget(
            name: "FuzzServerConnection",
            dependencies: [
                "FuzzSupport",
                .product(name: "NGHTTP2", package: library),
                .product(name: "NGHTTP2Async", package: library),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Sources/FuzzServerConnection",
            swiftSettings: fuzzTarget
        ),
    ]
)
