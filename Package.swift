// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "swift-nghttp2",
    products: [
        .library(name: "NGHTTP2", targets: ["NGHTTP2"]),
    ],
    targets: [
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"]), .brew(["libnghttp2"])]
        ),
        .target(name: "NGHTTP2", dependencies: ["CNGHTTP2"]),
        .executableTarget(name: "NGHTTP2Demo", dependencies: ["NGHTTP2"]),
        .testTarget(name: "NGHTTP2Tests", dependencies: ["NGHTTP2"]),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    target.swiftSettings = settings
}
