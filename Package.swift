// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "swift-nghttp2",
    products: [
        .library(name: "NGHTTP2", targets: ["NGHTTP2"]),
        // libnghttp2's C API, for calling it directly next to NGHTTP2 (see `Session.withUnsafeRawSession`).
        .library(name: "CNGHTTP2", targets: ["CNGHTTP2"]),
        .library(name: "NGHTTP2Async", targets: ["NGHTTP2Async"]),
        .executable(name: "h2", targets: ["H2Command"]),
        // OpenAPI transports (swift-openapi-runtime) over HTTP2Client and ServerSession; its own product, so that
        // NGHTTP2Async alone does not build openapi-runtime.
        .library(name: "NGHTTP2OpenAPI", targets: ["NGHTTP2OpenAPI"]),
    ],
    traits: [
        // Off by default: a package that depends on this one resolves and builds only the libraries' dependencies.
        // This repository's scripts build with `--traits CLI`.
        .trait(name: "CLI", description: "Builds the h2 command-line tool (adds swift-argument-parser)."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        // Observability (metrics and tracing), both off unless a factory / tracer is configured.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // `swift package generate-documentation` (scripts/test checks that the DocC catalogs build without warnings).
        // No target uses it, so packages that depend on this one do not resolve it.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"]), .brew(["libnghttp2"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        .target(name: "NGHTTP2", dependencies: ["CNGHTTP2"]),
        .target(
            name: "NGHTTP2Async",
            dependencies: [
                "NGHTTP2",
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // HTTP/1.1 on the server (cleartext, ALPN http/1.1, the h2c Upgrade): llhttp's parser and the encoder.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "NGHTTP2OpenAPI",
            dependencies: [
                "NGHTTP2Async",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "H2Command",
            dependencies: [
                "NGHTTP2Async",
                .product(name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["CLI"])),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        .executableTarget(name: "NGHTTP2Demo", dependencies: ["NGHTTP2"]),
        .executableTarget(
            name: "ClientExample",
            dependencies: [
                "NGHTTP2Async",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "ServerExample",
            dependencies: ["NGHTTP2Async", .product(name: "HTTPTypes", package: "swift-http-types")]
        ),
        // A ServerSession in a ServiceGroup that shuts down gracefully on SIGTERM (ServiceLifecycleTests runs it).
        .executableTarget(
            name: "LifecycleExample",
            dependencies: [
                "NGHTTP2Async",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "NGHTTP2Tests", dependencies: ["NGHTTP2", "CNGHTTP2"]),
        .testTarget(
            name: "H2CommandTests",
            dependencies: [
                "H2Command",
                "NGHTTP2Async",
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .testTarget(
            name: "NGHTTP2AsyncTests",
            dependencies: [
                "NGHTTP2Async",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}
