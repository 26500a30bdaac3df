import Testing
import Foundation
import Logging
import NIOCore
import NIOPosix
import HTTPTypes
import ServiceLifecycle
@testable import NGHTTP2Async

/// ServerSession and HTTP2Client as services of swift-service-lifecycle: a ServiceGroup's graceful shutdown (SIGTERM)
/// closes them gracefully, and no request the server took is lost.
@Suite struct ServiceLifecycleTests {
    static let quiet = Logger(label: "nghttp2.tests.lifecycle") { _ in SwiftLogNoOpLogHandler() }

    @Test func aGracefulShutdownOfTheGroupLetsASlowRequestFinishAndThenRunReturns() async throws {
        let started = ManagedCounter()
        let server = try await ServerSession.bind(port: 0) { request in
            started.add(1)
            try await Task.sleep(for: .milliseconds(300))
            return ServerSession.Response(status: .ok, body: .text("slow"))
        }
        let group = ServiceGroup(services: [server], gracefulShutdownSignals: [], logger: Self.quiet)
        let running = Task { try await group.run() }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let slow = Task { try await client.get("/slow") }
        while started.value == 0 { try await Task.sleep(for: .milliseconds(5)) }

        await group.triggerGracefulShutdown()

        let response = try await slow.value
        #expect(response.status == .ok)
        #expect(try await response.text() == "slow")
        try await running.value  // the group's run returns once the server's run() has returned
        #expect(server.connectionCount == 0)
        await client.waitUntilClosed()
    }

    @Test func outsideAGroupRunStillWaitsUntilTheServerIsClosed() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response(status: .ok) }
        let running = Task { try await server.run() }
        try await Task.sleep(for: .milliseconds(50))
        let response = try await HTTP2Client().get("http://127.0.0.1:\(server.port)/")
        #expect(response.status == .ok)
        await server.close(gracePeriod: .seconds(1))
        try await running.value
    }

    @Test func aClientRunByAGroupShutsDownWithTheGroupAfterItsRequestsInFlight() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in
            try await Task.sleep(for: .milliseconds(200))
            return ServerSession.Response(status: .ok, body: .text("done"))
        }
        let client = HTTP2Client()
        let group = ServiceGroup(services: [client], gracefulShutdownSignals: [], logger: Self.quiet)
        let running = Task { try await group.run() }
        let inFlight = Task { try await client.get("http://127.0.0.1:\(server.port)/").text() }
        try await Task.sleep(for: .milliseconds(50))

        await group.triggerGracefulShutdown()

        #expect(try await inFlight.value == "done")
        try await running.value
        await #expect(throws: HTTP2Error.clientShutDown) {
            _ = try await client.get("http://127.0.0.1:\(server.port)/")
        }
        await server.close(gracePeriod: .seconds(1))
    }

    @Test func aClientRunOutsideAGroupShutsDownWhenCancelled() async throws {
        let client = HTTP2Client()
        let running = Task { try await client.run() }
        try await Task.sleep(for: .milliseconds(20))
        running.cancel()
        try await running.value
        await #expect(throws: HTTP2Error.clientShutDown) { _ = try await client.get("http://127.0.0.1:1/") }
    }

    /// What became of the requests sent while the server was told to stop.
    struct Outcomes: CustomStringConvertible {
        var ok = 0
        /// Failed with an error that says the server did not take the request (retry-safe).
        var notTaken = 0
        /// Could not connect: the server had stopped listening (the request was never sent).
        var refused = 0
        /// Anything else: a request the server may have taken and did not answer. Must stay empty.
        var lost: [String] = []
        var description: String { "\(ok) answered, \(notTaken) not taken, \(refused) refused to connect, \(lost.count) lost \(lost.prefix(5))" }
    }

    @Test(.timeLimit(.minutes(2)))
    func aChildProcessServingUnderLoadStopsOnSIGTERMWithoutLosingARequest() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Peers.lifecycleExample)
        process.arguments = ["0", "200"]  // any port; each answer after 200 ms
        let out = Pipe()
        let err = Pipe()
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        process.standardOutput = out
        process.standardError = err
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let log = Task { await Peers.readToEnd(err.fileHandleForReading) }
        let firstLine = await Self.readLine(out.fileHandleForReading)
        let port = try #require(firstLine.split(separator: " ").last.flatMap { Int($0) }, "stdout: \(firstLine)")

        // 200 workers, each sending one request after another: about 1000 requests a second, 200 in flight.
        var configuration = HTTP2Client.Configuration()
        configuration.retry = .init(maxAttempts: 1)  // surface what the server did not take, rather than retry it
        let client = HTTP2Client(configuration: configuration)
        let outcomes = LockedOutcomes()
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        while true {
                            do {
                                let response = try await client.get("http://127.0.0.1:\(port)/")
                                let text = try await response.text()
                                outcomes.record { outcome in
                                    if response.status == .ok, text == "ok" { outcome.ok += 1 } else { outcome.lost.append("\(response.status) \(text)") }
                                }
                            } catch let error as HTTP2Error where error.isRetrySafe {
                                outcomes.record { $0.notTaken += 1 }
                                return
                            } catch where Self.isConnectionRefused(error) {
                                outcomes.record { $0.refused += 1 }
                                return
                            } catch {
                                outcomes.record { $0.lost.append("\(error)") }
                                return
                            }
                        }
                    }
                }
            }
        }
        // Under load for a while (each worker has had a few answers), then SIGTERM in mid-run.
        while outcomes.value.ok < 400 { try await Task.sleep(for: .milliseconds(10)) }
        let answeredBefore = outcomes.value.ok
        #expect(kill(process.processIdentifier, SIGTERM) == 0)
        let signalled = ContinuousClock.now

        // Exits 0 within its grace period (10 s).
        while process.isRunning, ContinuousClock.now - signalled < .seconds(10) { try await Task.sleep(for: .milliseconds(10)) }
        let exitedIn = ContinuousClock.now - signalled
        #expect(!process.isRunning, "still running 10 s after SIGTERM")
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        await load.value
        await client.shutdown()
        let stderr = String(decoding: await log.value, as: UTF8.self)
        let final = outcomes.value
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "exit \(process.terminationStatus); stderr:\n\(stderr)")
        #expect(exitedIn < .seconds(10))
        #expect(final.lost.isEmpty, "\(final)")
        #expect(final.ok > answeredBefore, "requests in flight at SIGTERM were answered: \(final)")
        #expect(final.notTaken + final.refused > 0, "the server went away while requests kept coming: \(final)")
    }

    static func isConnectionRefused(_ error: any Error) -> Bool {
        if let error = error as? IOError { return error.errnoCode == ECONNREFUSED }
        if let error = error as? NIOConnectionError { return error.connectionErrors.allSatisfy { isConnectionRefused($0.error) } }
        return "\(error)".contains("refused")
    }

    /// Reads up to the first newline (on a dispatch thread: a blocking read must not hold a cooperative thread).
    static func readLine(_ handle: FileHandle) async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var bytes = Data()
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    bytes.append(chunk)
                    if chunk.contains(UInt8(ascii: "\n")) { break }
                }
                let text = String(decoding: bytes, as: UTF8.self)
                continuation.resume(returning: String(text.prefix { $0 != "\n" }))
            }
        }
    }
}

final class LockedOutcomes: @unchecked Sendable {  // every access holds the lock
    private let lock = NSLock()
    private var outcomes = ServiceLifecycleTests.Outcomes()
    var value: ServiceLifecycleTests.Outcomes { lock.withLock { outcomes } }
    func record(_ change: (inout ServiceLifecycleTests.Outcomes) -> Void) { lock.withLock { change(&outcomes) } }
}
