import Foundation

extension Peers {
    /// A program of the virtualenv `scripts/bootstrap` makes at `.build/venv` (PyPI packages for the tests: hypercorn,
    /// and the h2 library it brings). Throws, naming scripts/bootstrap, when it is not there: such a test fails, it
    /// is never skipped.
    static func venv(_ program: String) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent(".build/venv/bin/\(program)").path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw VenvMissing(path: path) }
        return path
    }

    struct VenvMissing: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) is missing: run scripts/bootstrap (it makes the virtualenv .build/venv with hypercorn)" }
    }
}
