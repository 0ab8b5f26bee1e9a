// swift-tools-version:5.5
//
// mqtt5c for Swift: the C API as the module `mqtt5c` (a system library
// found with pkg-config), and a small Swift layer over it, `Mqtt5cSwift`.
// Not built or tested on the project's machines (no Swift toolchain): see
// README.md.
import PackageDescription

let package = Package(
    name: "mqtt5c",
    products: [
        .library(name: "Mqtt5cSwift", targets: ["Mqtt5cSwift"]),
    ],
    targets: [
        .systemLibrary(
            name: "mqtt5c",
            path: "Sources/mqtt5c",
            pkgConfig: "mqtt5c"
        ),
        .target(
            name: "Mqtt5cSwift",
            dependencies: ["mqtt5c"],
            path: "Sources/Mqtt5cSwift"
        ),
    ]
)
