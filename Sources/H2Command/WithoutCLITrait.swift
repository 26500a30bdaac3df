#if !CLI
import Foundation

/// `h2` built without the package's `CLI` trait (the default, so that the library's users never resolve
/// swift-argument-parser): it says how to build the real tool.
@main
enum H2WithoutCLITrait {
    static func main() {
        FileHandle.standardError.write(Data("h2 was built without the CLI trait: swift build --traits CLI --product h2\n".utf8))
        exit(64)
    }
}
#endif
