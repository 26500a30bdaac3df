import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
import Testing
@testable import NGHTTP2Async

/// Peers that go away badly: killed, half-closed, reset mid-body, TLS cut without close_notify, and thousands of
/// requests abandoned at random. Afterwards the server has no connection and no handler left running, and every
/// handler the peer abandoned was cancelled.
@Suite(.timeLimit(.minutes(3)))
struct FaultTests {
    /// Counts the server's handler tasks: started, finished, and finished because they were cancelled.
    final class Ledger: @unchecked Sendable {  // every access holds the lock
        private let lock = NSLock()
        private var counts = (started: 0, finished: 0, cancelled: 0)
        func handlerStarted() { lock.withLock { counts.started += 1 } }
        func handlerFinished(cancelled: Bool) { lock.withLock { counts.finished += 1; if cancelled { counts.cancelled += 1 } } }
        var started: Int { lock.withLock { counts.started } }
        var running: Int { lock.withLock { counts.started - counts.finished } }
        var cancelled: Int { lock.withLock { counts.cancelled } }
    }

    /// A server whose `/hang` handler waits (up to a minute) and whose `/upload` handler reads the whole body.
    static func server(_ ledger: Ledger, tls: Bool = false) async throws -> (ServerSession, TLSContext?) {
        var configuration = ServerSession.Configuration()
        var clientTLS: TLSContext?
        if tls {
            let certificates = try await TestCertificates.shared()
            configuration.tls = .makeServerConfiguration(certificateChain: .file(certificates.leafCertificate), privateKey: .file(certificates.leafKey))
            var client = NGHTTP2TLSConfiguration.makeClientConfiguration()
            client.trustRoots = .file(certificates.caCertificate)
            clientTLS = try TLSContext(configuration: client)
        }
        let server = try await ServerSession.bind(host: "127.0.0.1", port: 0, configuration: configuration) { request in
            ledger.handlerStarted()
            do {
                switch request.path {
                case "/hang":
                    try await Task.sleep(for: .seconds(60))
                case "/upload":
                    _ = try await request.body.collect(upTo: 1 << 30)
                case let path where path.hasPrefix("/random/"):
                    try await Task.sleep(for: .milliseconds(Int.random(in: 0...20)))
                default:
                    break
                }
            } catch {
                ledger.handlerFinished(cancelled: error is CancellationError || Task.isCancelled)
                throw error
            }
            ledger.handlerFinished(cancelled: Task.isCancelled)
            return ServerSession.Response(status: .ok, body: .text("done"))
        }
        return (server, clientTLS)
    }

    /// Waits (up to 10 s) until `condition` holds.
    static func eventually(_ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        return condition()
    }

    /// A raw HTTP/2 connection that has sent its preface, SETTINGS and one request (`path`, with a body to come
    /// when `open`), and whose handler has started.
    static func rawRequest(to server: ServerSession, tls: TLSContext?, path: String, open: Bool, ledger: Ledger) async throws -> RawConnection {
        let before = ledger.started
        let connection = try await RawConnection.connect(port: server.port, tls: tls)
        let block = HPACK.block([(":method", open ? "POST" : "GET"), (":scheme", tls == nil ? "http" : "https"), (":path", path), (":authority", "localhost:\(server.port)")])
        var bytes = connectionPreface + RawFrame.settings().bytes + RawFrame.headers(1, block, endStream: !open).bytes
        if open { bytes += RawFrame.data(1, Array(repeating: 0x61, count: 1000)).bytes }
        try await connection.send(bytes)
        #expect(try await eventually { ledger.started > before }, "the handler started")
        return connection
    }

    @Test func aClientKilledMidRequestLeavesNothingRunning() async throws {
        let ledger = Ledger()
        let (server, _) = try await Self.server(ledger)
        let curl = try await Peers.start(
            "curl", ["--http2-prior-knowledge", "-s", "-o", "/dev/null", "http://127.0.0.1:\(server.port)/hang"], waitForPort: server.port)
        #expect(try await Self.eventually { ledger.started == 1 }, "curl's request reached the handler")
        curl.stop()  // SIGKILL: the socket closes without GOAWAY or RST_STREAM
        #expect(try await Self.eventually { ledger.running == 0 }, "the handler was still running")
        #expect(ledger.cancelled == 1, "the abandoned handler was cancelled")
        #expect(try await Self.eventually { server.connectionCount == 0 })
        await server.close()
    }

    @Test func aHalfClosedConnectionEndsItsRequests() async throws {
        let ledger = Ledger()
        let (server, _) = try await Self.server(ledger)
        let connection = try await Self.rawRequest(to: server, tls: nil, path: "/hang", open: false, ledger: ledger)
        try await connection.channel.close(mode: .output).get()  // FIN: the server reads end-of-file
        #expect(try await Self.eventually { ledger.running == 0 }, "the handler was still running")
        #expect(ledger.cancelled == 1)
        #expect(try await Self.eventually { server.connectionCount == 0 })
        await connection.close()
        await server.close()
    }

    @Test func aTCPResetMidBodyCancelsTheHandlerReadingIt() async throws {
        let ledger = Ledger()
        let (server, _) = try await Self.server(ledger)
        let connection = try await Self.rawRequest(to: server, tls: nil, path: "/upload", open: true, ledger: ledger)
        // SO_LINGER 0: close sends RST instead of FIN.
        let provider = try #require(connection.channel as? any SocketOptionProvider)
        try await provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
        await connection.close()
        #expect(try await Self.eventually { ledger.running == 0 }, "the reading handler was still running")
        #expect(ledger.cancelled == 1)
        #expect(try await Self.eventually { server.connectionCount == 0 })
        await server.close()
    }

    @Test func aTLSConnectionCutWithoutCloseNotifyEndsItsRequests() async throws {
        let ledger = Ledger()
        let (server, tls) = try await Self.server(ledger, tls: true)
        let connection = try await Self.rawRequest(to: server, tls: tls, path: "/upload", open: true, ledger: ledger)
        // Close the TCP socket from below the TLS handler: no close_notify alert is sent (truncation).
        let socketEnd = SocketEnd()
        try await connection.channel.pipeline.addHandler(socketEnd, position: .first).get()
        try await connection.channel.eventLoop.submit { socketEnd.context?.close(promise: nil) }.get()
        #expect(try await Self.eventually { ledger.running == 0 }, "the reading handler was still running")
        #expect(ledger.cancelled == 1)
        #expect(try await Self.eventually { server.connectionCount == 0 })
        await server.close()
    }

    /// Sits next to the socket: a close from here passes no handler above it (so TLS sends no close_notify).
    final class SocketEnd: ChannelOutboundHandler, @unchecked Sendable {  // used on the event loop only
        typealias OutboundIn = NIOAny
        var context: ChannelHandlerContext?
        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }
    }

    @Test func tenThousandRequestsWithRandomAbortsLeaveNothingRunning() async throws {
        let ledger = Ledger()
        let (server, _) = try await Self.server(ledger)
        let clients = try await withThrowingTaskGroup(of: ClientSession.self) { group in
            for _ in 0..<4 { group.addTask { try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        var aborted = 0
        var answered = 0
        for round in 0..<100 {
            do {
                var tasks: [Task<Bool, any Error>] = []
                for index in 0..<100 {
                    let client = clients[(round + index) % clients.count]
                    tasks.append(Task { try await client.get("/random/\(round)/\(index)").text() == "done" })
                }
                for task in tasks where Int.random(in: 0..<4) == 0 {
                    try await Task.sleep(for: .microseconds(Int.random(in: 0...500)))
                    task.cancel()
                }
                for task in tasks {
                    switch await task.result {
                    case .success(true): answered += 1
                    case .success(false): Issue.record("a wrong answer")
                    case .failure(let error):
                        if error is CancellationError || (error as? HTTP2Error)?.code == .streamReset { aborted += 1 } else { Issue.record("\(error)") }
                    }
                }
            }
        }
        #expect(answered + aborted == 10_000)
        #expect(aborted > 0, "some requests were aborted")
        #expect(try await Self.eventually { ledger.running == 0 }, "\(ledger.running) handlers still running")
        for client in clients { await client.close() }
        #expect(try await Self.eventually { server.connectionCount == 0 })
        // Every request answered again afterwards.
        let fresh = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        #expect(try await fresh.get("/after").text() == "done")
        await fresh.close()
        await server.close()
    }
}
