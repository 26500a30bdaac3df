import Foundation
import NIOCore
import NIOPosix

/// Real HTTP/2 peers from Debian packages (nghttpd, nghttp, h2load, curl), run as child processes on 127.0.0.1.
enum Peers {
    /// A running child process; terminated when stopped or dropped.
    final class Running: @unchecked Sendable {  // Process is thread-safe for terminate/isRunning; set once
        let process: Process
        let output: Pipe

        init(_ process: Process, output: Pipe) {
            self.process = process
            self.output = output
        }

        /// Kills the peer and waits for it. SIGKILL, because children of the test process inherit a signal mask
        /// that blocks SIGTERM (so `Process.terminate()` would wait forever).
        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }

        deinit { stop() }
    }

    struct Result: Sendable {
        var status: Int32
        var stdout: Data
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// Runs a command to completion (with a time limit) and returns its exit status and output.
    static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil, timeout: Duration = .seconds(120)) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path(of: executable))
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle(forReadingAtPath: "/dev/null") : input
        try process.run()
        if let stdin {
            try input.fileHandleForWriting.write(contentsOf: stdin)
            try input.fileHandleForWriting.close()
        }
        // Blocking reads on dispatch threads, not Swift's cooperative pool: a hung child must not starve the
        // pool (2 threads on 2 cores), or no timeout could ever fire.
        let outTask = Task { await readToEnd(out.fileHandleForReading) }
        let errTask = Task { await readToEnd(err.fileHandleForReading) }
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                kill(process.processIdentifier, SIGKILL)  // SIGTERM may be blocked in children of the test process
                break
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: await outTask.value, stderr: String(decoding: await errTask.value, as: UTF8.self))
    }

    static func readToEnd(_ handle: FileHandle) async -> Data {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: handle.readDataToEndOfFile()) }
        }
    }

    /// Starts a long-running peer (a server) and waits until `port` accepts connections. Its standard output goes to
    /// `standardOutput` (discarded by default).
    static func start(
        _ executable: String,
        _ arguments: [String],
        waitForPort port: Int,
        standardOutput: FileHandle = .nullDevice
    ) async throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path(of: executable))
        process.arguments = arguments
        let output = Pipe()
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        process.standardOutput = standardOutput
        process.standardError = output
        try process.run()
        let running = Running(process, output: output)
        for _ in 0..<500 {
            if await isListening(port) { return running }
            try await Task.sleep(for: .milliseconds(10))
        }
        running.stop()
        throw PeerError.didNotStart("\(executable) \(arguments.joined(separator: " "))")
    }

    /// The `h2` command built with the tests (it sits beside the test bundle).
    static var h2: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("h2").path
    }

    /// The `LifecycleExample` server built with the tests (beside the test bundle, like ``h2``).
    static var lifecycleExample: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("LifecycleExample").path
    }

    /// nghttpd serving `directory` over cleartext HTTP/2.
    static func nghttpd(directory: String, extra: [String] = []) async throws -> (Running, Int) {
        let port = try await freePort()
        let running = try await start("nghttpd", ["--no-tls", "-a", "127.0.0.1", "-d", directory] + extra + ["\(port)"], waitForPort: port)
        return (running, port)
    }

    static func isListening(_ port: Int) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }

    /// A port nothing listens on right now.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    static func path(of executable: String) throws -> String {
        if executable.contains("/") { return executable }
        for directory in ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin"] {
            let candidate = "\(directory)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw PeerError.missing(executable)
    }

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "nghttp2-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    enum PeerError: Error, CustomStringConvertible {
        case missing(String)
        case didNotStart(String)
        var description: String {
            switch self {
            case .missing(let name): "\(name) is not installed (run scripts/bootstrap)"
            case .didNotStart(let command): "did not start listening: \(command)"
            }
        }
    }
}

/// Deterministic bytes for payloads that must arrive identical.
func payload(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBufferPointer { buffer in
        var index = 0
        while index < count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var word = state
            for _ in 0..<8 where index < count {
                buffer[index] = UInt8(truncatingIfNeeded: word >> 33)
                word = word &* 31 &+ 7
                index += 1
            }
        }
    }
    return bytes
}
