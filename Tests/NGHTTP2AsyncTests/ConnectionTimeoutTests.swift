import Testing
import Foundation
import NIOCore
import NIOPosix
import HTTPTypes
import NGHTTP2
@testable import NGHTTP2Async

/// The client connection preface (RFC 9113 §3.4): the magic, then an empty SETTINGS.
let clientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 0x4, 0, 0, 0, 0, 0]

/// A GET of `/` on `streamID` as one HEADERS frame (HPACK static-table entries only), ending the stream;
/// `endHeaders: false` leaves the header block open (a CONTINUATION would have to follow).
func rawGet(streamID: UInt8, endHeaders: Bool = true) -> [UInt8] {
    // :method GET, :scheme http, :path /, :authority "a" (literal without indexing, name index 1).
    let block: [UInt8] = [0x82, 0x86, 0x84, 0x01, 0x01, UInt8(ascii: "a")]
    return [0, 0, UInt8(block.count), 0x1, endHeaders ? 0x5 : 0x1, 0, 0, 0, streamID] + block
}

/// The server's timeouts and limits over real sockets, each with short configured values, while a well-behaved
/// client on the same server is served.
@Suite struct ServerTimeoutTests {
    @Test func connectionsThatNeverSendThePrefaceAreClosedWhileAWellBehavedClientIsServed() async throws {
        var configuration = ServerSession.Configuration()
        configuration.prefaceTimeout = .seconds(1)
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { _ in ServerSession.Response(body: .text("ok")) }
        var silent: [RawConnection] = []
        for _ in 0..<5 { silent.append(try await RawConnection.connect(port: server.port)) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        #expect(try await client.get("/").text() == "ok")
        for connection in silent {
            #expect(await connection.waitForClose(timeout: .seconds(10)), "a silent connection was kept open")
            let goaway = RawFrame.parse(connection.received).first { $0.type == 0x7 }
            #expect(goaway?.goawayErrorCode == 0 && goaway?.goawayLastStreamID == 0, "\(RawFrame.parse(connection.received))")
        }
        #expect(try await client.get("/").text() == "ok", "the well-behaved client keeps its connection")
        await client.close()
        await server.close()
    }

    @Test func aConnectionWithoutStreamsGetsGoAwayNoErrorAfterTheIdleTimeoutAndIsClosed() async throws {
        var configuration = ServerSession.Configuration()
        configuration.idleTimeout = .seconds(3)  // room for the client's request on a busy machine
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { _ in ServerSession.Response(body: .text("ok")) }
        let idle = try await RawConnection.connect(port: server.port)
        try await idle.send(clientPreface)
        // A client of ours that made a request and then stays quiet is closed the same way.
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        #expect(try await client.get("/").text() == "ok")
        #expect(await idle.waitForClose(timeout: .seconds(10)), "an idle connection was kept open")
        let goaway = RawFrame.parse(idle.received).first { $0.type == 0x7 }
        #expect(goaway?.goawayErrorCode == 0, "\(RawFrame.parse(idle.received))")
        await client.waitUntilClosed()
        #expect(!(await client.isRequestAllowed))
        await server.close()
    }

    @Test func aHeaderBlockLeftOpenClosesTheConnectionNamingTheLastCompleteRequest() async throws {
        var configuration = ServerSession.Configuration()
        configuration.headerTimeout = .seconds(1)
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { _ in ServerSession.Response(body: .text("ok")) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let stalled = try await RawConnection.connect(port: server.port)
        try await stalled.send(clientPreface + rawGet(streamID: 1) + rawGet(streamID: 3, endHeaders: false))
        #expect(await stalled.waitForClose(timeout: .seconds(10)), "a half-sent header block kept its connection open")
        let frames = RawFrame.parse(stalled.received)
        #expect(frames.contains { $0.type == 0x1 && $0.streamID == 1 }, "stream 1 was answered: \(frames)")
        let goaway = frames.first { $0.type == 0x7 }
        #expect(goaway?.goawayLastStreamID == 1 && goaway?.goawayErrorCode == 0, "stream 3 was not processed: \(frames)")
        #expect(try await client.get("/").text() == "ok", "another connection is unharmed")
        await client.close()
        await server.close()
    }

    @Test func aServerAtItsConnectionLimitRefusesOneMoreCleanlyAndKeepsServingTheOthers() async throws {
        var configuration = ServerSession.Configuration()
        configuration.maxConnections = 2
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { _ in ServerSession.Response(body: .text("ok")) }
        let a = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let b = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        #expect(try await a.get("/").text() == "ok")
        #expect(try await b.get("/").text() == "ok")
        let refused = try await RawConnection.connect(port: server.port)
        try? await refused.send(clientPreface + rawGet(streamID: 1))  // the refusal may come (and close) first
        #expect(await refused.waitForClose(timeout: .seconds(10)))
        let frames = RawFrame.parse(refused.received)
        #expect(frames.first { $0.type == 0x7 }?.goawayLastStreamID == 0, "refused with GOAWAY naming no stream: \(frames)")
        #expect(!frames.contains { $0.type == 0x1 }, "the refused connection's request was not answered")
        // Our client sees the same refusal as a retry-safe error.
        let c = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        do {
            _ = try await c.get("/")
            Issue.record("a third connection was served")
        } catch let error as HTTP2Error {
            #expect(error.isRetrySafe, "\(error)")
        }
        #expect(try await a.get("/").text() == "ok")
        await a.close()
        while server.connectionCount > 1 { try await Task.sleep(for: .milliseconds(5)) }
        let d = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        #expect(try await d.get("/").text() == "ok", "a connection is admitted again below the limit")
        await b.close()
        await d.close()
        await server.close()
    }

    @Test func aConnectionEndsGracefullyAfterItsMaximumRequestsAndNoRequestIsLost() async throws {
        var configuration = ServerSession.Configuration()
        configuration.maxRequestsPerConnection = 5
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { request in
            try await Task.sleep(for: .milliseconds(20))
            return ServerSession.Response(body: .text(request.path))
        }
        // The test's client loop: batches of 4 concurrent requests; a request the server did not process goes to a new
        // connection.
        var client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        var connections = 1
        var answered: [String] = []
        var pending = (0..<23).map { "/\($0)" }
        while !pending.isEmpty {
            if !(await client.isRequestAllowed) {
                client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
                connections += 1
            }
            let batch = Array(pending.prefix(4))
            let session = client
            let results = await withTaskGroup(of: (String, String?).self) { group in
                for path in batch {
                    group.addTask {
                        do { return (path, try await session.get(path).text()) } catch let error as HTTP2Error where error.isRetrySafe {
                            return (path, nil)
                        } catch {
                            return (path, "failed: \(error)")
                        }
                    }
                }
                return await group.reduce(into: [(String, String?)]()) { $0.append($1) }
            }
            for (path, body) in results {
                if let body {
                    answered.append(body)
                    pending.removeAll { $0 == path }
                }
            }
        }
        #expect(answered.sorted() == (0..<23).map { "/\($0)" }.sorted(), "every request was answered once, none failed")
        #expect(connections >= 5, "23 requests at 5 per connection took \(connections) connections")
        await client.close()
        await server.close()
    }

    @Test func aConnectionPastItsMaximumAgeFinishesTheRequestInFlightAndCloses() async throws {
        // The request must be in flight before the age is reached. On a loaded machine it can go out only after the
        // GOAWAY notice; it is then refused, retry-safe, which is right but not what this test is for: the scenario
        // is tried again with a new server, up to three times.
        for _ in 1...3 {
            var configuration = ServerSession.Configuration()
            configuration.maxConnectionAge = .seconds(2)
            let started = ManagedCounter()
            let server = try await ServerSession.bind(port: 0, configuration: configuration) { request in
                if request.path == "/slow" {
                    started.add(1)
                    try await Task.sleep(for: .seconds(4))
                }
                return ServerSession.Response(body: .text(request.path))
            }
            let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
            let ended = ManagedCounter()
            let slow = Task {
                defer { ended.add(1) }
                return try await client.get("/slow").text()
            }
            let deadline = ContinuousClock.now + .seconds(10)
            while started.value == 0, ended.value == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            guard started.value > 0 else {
                // The age came first: the request was refused as not processed.
                let refused = await #expect(throws: HTTP2Error.self) { try await slow.value }
                #expect(refused?.code == .notProcessed, "\(String(describing: refused))")
                await client.close()
                await server.close()
                continue
            }
            while await client.isRequestAllowed, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(!(await client.isRequestAllowed), "the GOAWAY notice came at the maximum age")
            #expect(try await slow.value == "/slow", "the request in flight finished")
            await client.waitUntilClosed()
            let next = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
            #expect(try await next.get("/next").text() == "/next")
            await next.close()
            await server.close()
            return
        }
        Issue.record("in three attempts the request never reached the handler before the connection's maximum age")
    }
}

/// The client's keep-alive and idle timeout, against nghttpd and against a server that stops answering.
@Suite struct ClientTimeoutTests {
    @Test func aServerThatStopsAnsweringPingsIsDetectedAndUnsentRequestsAreSafeToRetry() async throws {
        // The scenario needs the first request sent before the unanswered PING ends the connection. On a loaded
        // machine (the parallel suite on 2 cores) the test's task may not run for seconds: a request that reached the
        // event loop only after that was, rightly, never sent; the scenario is then tried again, up to three times.
        for attempt in 1...3 {
            if try await pingTimeoutScenario(lastAttempt: attempt == 3) { return }
        }
    }

    /// Returns `false` when the first request was not sent before the connection ended (nothing was checked).
    private func pingTimeoutScenario(lastAttempt: Bool) async throws -> Bool {
        let server = try await SilentHTTP2Server.start(maxConcurrentStreams: 1)
        defer { server.stop() }
        var configuration = ClientSession.Configuration()
        configuration.keepAlive = .init(interval: .seconds(3), timeout: .milliseconds(300))
        let headersSent = ManagedCounter()
        let settingsReceived = ManagedCounter()
        configuration.frameObserver = { direction, frame in
            if direction == .sent, frame.type == .headers { headersSent.add(1) }
            if direction == .received, frame.type == .settings, !frame.flags.contains(.ack) { settingsReceived.add(1) }
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        let started = ContinuousClock.now
        // The server's MAX_CONCURRENT_STREAMS = 1 must be known before the requests go (on a slow machine, under
        // ThreadSanitizer, both were otherwise sent under the default of 100, and the second was in flight too).
        while settingsReceived.value == 0, ContinuousClock.now - started < .seconds(10) { try await Task.sleep(for: .milliseconds(5)) }
        // The first request is sent and never answered; the second waits for a free stream and is never sent.
        async let first = Result(catching: { try await client.get("/first") })
        while headersSent.value == 0, await client.isRequestAllowed, ContinuousClock.now - started < .seconds(10) {
            try await Task.sleep(for: .milliseconds(5))
        }
        async let second = Result(catching: { try await client.get("/second") })
        let (sent, queued) = await (first, second)
        if headersSent.value == 0, !lastAttempt {
            await client.waitUntilClosed()
            return false
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        guard case .failure(let sentError as HTTP2Error) = sent, case .failure(let queuedError as HTTP2Error) = queued else {
            Issue.record("both requests should fail with HTTP2Error: \(sent), \(queued)")
            return true
        }
        #expect(!sentError.isRetrySafe, "the sent request may have been processed: \(sentError)")
        #expect(sentError.code == .keepAliveTimeout, "\(sentError)")
        #expect(queuedError.isRetrySafe, "the queued request was never sent: \(queuedError)")
        await client.waitUntilClosed()
        return true
    }

    @Test func keepAlivePingsAnsweredByNghttpdKeepTheConnectionOpen() async throws {
        let directory = try Peers.temporaryDirectory()
        try Data("hi".utf8).write(to: URL(fileURLWithPath: directory + "/a"))
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory)
        defer { nghttpd.stop() }
        let acks = ManagedCounter()
        var configuration = ClientSession.Configuration()
        configuration.keepAlive = .init(interval: .milliseconds(100), timeout: .seconds(2))
        configuration.frameObserver = { direction, frame in
            if direction == .received, frame.type == .ping, frame.flags.contains(.ack) { acks.add(1) }
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)", configuration: configuration)
        #expect(try await client.get("/a").text() == "hi")
        while acks.value < 3 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await client.get("/a").text() == "hi", "the connection survived its keep-alive PINGs")
        await client.close()
    }

    @Test func anIdleClientConnectionClosesItselfAfterItsIdleTimeout() async throws {
        let directory = try Peers.temporaryDirectory()
        try Data("hi".utf8).write(to: URL(fileURLWithPath: directory + "/a"))
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory)
        defer { nghttpd.stop() }
        var configuration = ClientSession.Configuration()
        configuration.idleTimeout = .seconds(1)
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)", configuration: configuration)
        #expect(try await client.get("/a").text() == "hi")
        await client.waitUntilClosed()  // (that idle counts from the last stream's end: ConnectionHandlerTests, on virtual time)
        do {
            _ = try await client.get("/a")
            Issue.record("a request on a connection closed for idleness succeeded")
        } catch {}
    }
}

/// An HTTP/2 "server" that sends its SETTINGS (with `maxConcurrentStreams`) and its ACK, then never answers anything:
/// not requests, not PINGs. It reads and drops what it gets.
final class SilentHTTP2Server: Sendable {
    final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let settings: [UInt8]

        init(settings: [UInt8]) { self.settings = settings }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: settings)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    }

    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) { self.channel = channel }

    static func start(maxConcurrentStreams: UInt32) async throws -> SilentHTTP2Server {
        let value = withUnsafeBytes(of: maxConcurrentStreams.bigEndian) { Array($0) }
        let settings: [UInt8] = [0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x3] + value + [0, 0, 0, 0x4, 0x1, 0, 0, 0, 0]
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Handler(settings: settings)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return SilentHTTP2Server(channel: channel)
    }

    func stop() { channel.close(promise: nil) }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
