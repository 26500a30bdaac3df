// swift-tools-version:6.1
// Benchmarks for swift-nghttp2, kept in their own package so that the library's own dependency graph stays
// empty. Run them with `scripts/bench-foundation` from the repository root, or from this directory:
//
//     swift package --disable-sandbox benchmark --target NGHTTP2Benchmarks
import Foundation
import PackageDescription

// The library is the package one level up. SwiftPM names a path dependency after its directory, so its identity
// is that directory's name (`main`, `swift-nghttp2`, ... whatever the clone is called), not the manifest's name.
let library = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "swift-nghttp2-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: ".."),
        // Swift 6.3 on Linux: `MallocInterposer` gives the malloc counters without jemalloc. Naming the traits
        // leaves the package's other default trait (`RuntimeInterposer`, ARC counters) off, which also keeps
        // swift-runtime-interposer out of the graph.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio-http2", exact: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Peers for `scripts/bench-peers`: a swift-nio-http2 hello server and an AsyncHTTPClient load generator.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // The HTTP/1.1 peer for `scripts/bench --only h1`: a Hummingbird 2 hello server.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .executableTarget(
            name: "NGHTTP2Benchmarks",
            dependencies: [
                .product(name: "NGHTTP2", package: library),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Benchmarks/NGHTTP2Benchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        // `NIOHTTP2HelloServer PORT [CERT KEY]`: answers every request with 200 "hello\n" (h2c, or TLS with ALPN h2).
        .executableTarget(
            name: "NIOHTTP2HelloServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/NIOHTTP2HelloServer"
        ),
        // `HummingbirdHelloServer PORT`: answers GET / with 200 "hello\n" over HTTP/1.1 (Hummingbird 2's default server).
        .executableTarget(
            name: "HummingbirdHelloServer",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "Sources/HummingbirdHelloServer"
        ),
        // `AHCLoad -n N -m M [--cacert CA] URL`: AsyncHTTPClient load, h2load-style summary line.
        .executableTarget(
            name: "AHCLoad",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/AHCLoad"
        ),
    ]
)
