import CompressNIO
import Foundation
import HTTPTypes
import NGHTTP2
import NIOCore
import NIOPosix
import Testing
@testable import NGHTTP2Async

/// ``HTTP2Client`` against real servers on 127.0.0.1: our `ServerSession`, nghttpd, and raw-frame servers that refuse
/// or stall.
@Suite(.timeLimit(.minutes(3)))
struct HTTP2ClientTests {
    /// Runs `count` GETs of `url(n)` on `client`, at most `concurrency` at a time; returns the failures.
    func run(_ count: Int, concurrency: Int, on client: HTTP2Client, url: @escaping @Sendable (Int) -> String) async -> [String] {
        await withTaskGroup(of: String?.self) { group in
            var failures: [String] = []
            var next = 0
            func add() {
                let n = next
                next += 1
                group.addTask {
                    do {
                        let response = try await client.get(url(n))
                        let text = try await response.text()
                        return response.status == .ok && text == "/\(n)" ? nil : "\(n): \(response.status) \(text)"
                    } catch {
                        return "\(n): \(error)"
                    }
                }
            }
            for _ in 0..<min(concurrency, count) { add() }
            while let result = await group.next() {
                if let result { failures.append(result) }
                if next < count { add() }
            }
            return failures
        }
    }

    // MARK: Pooling and retries

    @Test func tenThousandRequestsThroughServersThatEndEveryConnectionAfterAFewRequestsAllSucceed() async throws {
        var configuration = ServerSession.Configuration()
        configuration.maxRequestsPerConnection = 25
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { request in
            ServerSession.Response(body: .text(request.path))
        }
        let client = HTTP2Client()
        let port = server.port
        let failures = await run(10_000, concurrency: 64, on: client) { "http://127.0.0.1:\(port)/\($0)" }
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(5))")
        // Requests that raced a GOAWAY were sent again; how many depends on timing, but 400 connections ended.
        print("HTTP2Client: 10,000 requests, \(client.retryCount) retries")
        await client.shutdown()
        await server.close()
    }

    @Test func whenTheServerAllowsTenStreamsAThousandConcurrentRequestsUseSeveralConnectionsAndAllSucceed() async throws {
        let directory = try Peers.temporaryDirectory()
        for n in 0..<1_000 { try Data("/\(n)".utf8).write(to: URL(fileURLWithPath: "\(directory)/\(n)")) }
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory, extra: ["-m", "10"])
        defer { nghttpd.stop() }
        var configuration = HTTP2Client.Configuration()
        configuration.maxConnectionsPerOrigin = 4
        let client = HTTP2Client(configuration: configuration)
        let failures = await run(1_000, concurrency: 1_000, on: client) { "http://127.0.0.1:\(port)/\($0)" }
        #expect(failures.isEmpty, "\(failures.count) failed: \(failures.prefix(5))")
        #expect(client.connectionsOpened(to: "http://127.0.0.1:\(port)") == 4, "10 streams each: the pool opened all it may")
        await client.shutdown()
    }

    @Test func aRequestRefusedWithRefusedStreamIsSentAgainAndTheLastErrorCountsTheAttempts() async throws {
        // Refuses the first request on every connection, answers the others.
        let server = try await RefusingServer.start(refusing: 1)
        let client = HTTP2Client()
        let response = try await client.get("http://127.0.0.1:\(server.port)/refused-once")
        #expect(response.status == .ok)
        #expect(try await response.text() == "/refused-once")
        #expect(client.retryCount == 1)
        await client.shutdown()
        await server.close()

        let always = try await RefusingServer.start(refusing: .max)
        var configuration = HTTP2Client.Configuration()
        configuration.retry = .init(maxAttempts: 3)
        let strict = HTTP2Client(configuration: configuration)
        do {
            _ = try await strict.post("http://127.0.0.1:\(always.port)/never", body: .text("not idempotent, still safe"))
            Issue.record("a request refused every time succeeded")
        } catch let error as HTTP2Error {
            #expect(error.code == .notProcessed)
            #expect(error.attempts == 3)
            #expect("\(error)".contains("after 3 attempts"))
        }
        await strict.shutdown()
        await always.close()
    }

    @Test func onlyWhenAskedAreIdempotentRequestsWithReplayableBodiesRetriedAfterTheConnectionWasLost() async throws {
        for (method, retries, succeeds) in [(HTTPRequest.Method.get, false, false), (.get, true, true), (.post, true, false), (.put, true, true)] {
            let server = try await RefusingServer.start(refusing: 0, droppingFirstConnection: true)
            var configuration = HTTP2Client.Configuration()
            configuration.retry.retriesIdempotentRequestsAfterConnectionLoss = retries
            let client = HTTP2Client(configuration: configuration)
            do {
                let response = try await client.request(method, "http://127.0.0.1:\(server.port)/lost", body: .text("replayable"))
                #expect(succeeds, "\(method) succeeded")
                #expect(try await response.text() == "/lost")
            } catch let error as HTTP2Error {
                #expect(!succeeds, "\(method), retries \(retries): \(error)")
                #expect(error.code == .connectionClosed)
            }
            await client.shutdown()
            await server.close()
        }
    }

    @Test func anIdleConnectionClosesAndTheNextRequestOpensANewOne() async throws {
        let server = try await ServerSession.bind(port: 0) { request in ServerSession.Response(body: .text(request.path)) }
        var configuration = HTTP2Client.Configuration()
        configuration.connection.idleTimeout = .milliseconds(200)
        let client = HTTP2Client(configuration: configuration)
        let url = "http://127.0.0.1:\(server.port)"
        #expect(try await client.get("\(url)/1").text() == "/1")
        for _ in 0..<2_000 where server.connectionCount > 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(server.connectionCount == 0, "closed after 200 ms without a stream")
        let origin = OriginPool.Origin(scheme: "http", host: "127.0.0.1", port: server.port)
        for _ in 0..<2_000 where client.pool(ifExists: origin)?.hasConnections == true { try await Task.sleep(for: .milliseconds(5)) }
        let opened = client.connectionsOpened(to: url)
        #expect(try await client.get("\(url)/2").text() == "/2")
        // At least one: under a loaded machine the new connection may itself idle out before the request's stream
        // opens (a retry-safe failure, retried on yet another connection).
        #expect(client.connectionsOpened(to: url) >= opened + 1, "the pool noticed the close and opened a new one")
        await client.shutdown()
        await server.close()
    }

    @Test func aConnectFailureFailsTheRequestWithTheSocketsErrorAndTheNextConnectBacksOff() async throws {
        let port = try await Peers.freePort()
        let client = HTTP2Client()
        let started = ContinuousClock.now
        await #expect(throws: (any Error).self) { _ = try await client.get("http://127.0.0.1:\(port)/") }
        await #expect(throws: (any Error).self) { _ = try await client.get("http://127.0.0.1:\(port)/") }
        #expect(ContinuousClock.now - started >= .milliseconds(100), "the second connect waited for the backoff")
        await client.shutdown()
    }

    @Test func shutdownWaitsForEveryRequestInFlightAndThenRefusesNewOnes() async throws {
        // Handlers wait at a gate, so that the state below holds still until the test opens it.
        let arrived = LockedState(0)
        let gate = RequestGate()
        let server = try await ServerSession.bind(port: 0) { request in
            arrived.withLock { $0 += 1 }
            await gate.wait()
            return ServerSession.Response(body: .text(request.path))
        }
        var configuration = HTTP2Client.Configuration()
        configuration.maxConnectionsPerOrigin = 2
        let client = HTTP2Client(configuration: configuration)
        let port = server.port
        async let failures = run(300, concurrency: 300, on: client) { "http://127.0.0.1:\(port)/\($0)" }
        // Both connections full (100 streams each, ServerSession's default) and the other 100 waiting in the pool.
        let origin = OriginPool.Origin(scheme: "http", host: "127.0.0.1", port: port)
        while arrived.withLock({ $0 }) < 200 || client.pool(ifExists: origin)?.waitingCount != 100 {
            try await Task.sleep(for: .milliseconds(5))
        }
        let shutdown = Task { await client.shutdown() }
        while client.pool(ifExists: origin)?.isShuttingDown != true { try await Task.sleep(for: .milliseconds(5)) }
        await #expect(throws: HTTP2Error.clientShutDown) { _ = try await client.get("http://127.0.0.1:\(port)/late") }
        gate.open()
        await shutdown.value
        let failed = await failures
        #expect(failed.isEmpty, "\(failed.count) failed: \(failed.prefix(5))")
        await server.close()
    }

    // MARK: Timeouts

    @Test func aRequestThatOutlivesItsTimeoutFailsWithRequestTimeout() async throws {
        let server = try await ServerSession.bind(port: 0) { request in
            if request.path == "/slow-head" { try await Task.sleep(for: .seconds(10)) }
            return ServerSession.Response(body: .writer { writer in
                try await writer.write(ByteBuffer(string: "first"))
                try await Task.sleep(for: .seconds(10))
            })
        }
        let client = HTTP2Client()
        let started = ContinuousClock.now
        await #expect(throws: HTTP2Error.requestTimeout(.milliseconds(300))) {
            _ = try await client.get("http://127.0.0.1:\(server.port)/slow-head", timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        // The head comes at once, the body never ends: the deadline (long enough for the head on a busy machine) ends
        // the body's read.
        let response = try await client.get("http://127.0.0.1:\(server.port)/slow-body", timeout: .seconds(2))
        await #expect(throws: HTTP2Error.requestTimeout(.seconds(2))) { _ = try await response.text() }
        await client.shutdown()
        await server.close()
    }

    @Test func aResponseThatStallsLongerThanTheReadTimeoutFailsWithReadTimeout() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in
            ServerSession.Response(body: .writer { writer in
                for _ in 0..<5 {
                    try await writer.write(ByteBuffer(string: "tick"))
                    try await Task.sleep(for: .milliseconds(50))
                }
                try await Task.sleep(for: .seconds(10))
            })
        }
        var configuration = HTTP2Client.Configuration()
        configuration.readTimeout = .milliseconds(1_500)
        let client = HTTP2Client(configuration: configuration)
        let response = try await client.get("http://127.0.0.1:\(server.port)/ticks")
        var received = 0
        do {
            for try await chunk in response.body { received += chunk.readableBytes }
            Issue.record("the stalled body ended")
        } catch let error as HTTP2Error {
            #expect(error == .readTimeout(.milliseconds(1_500)))
        }
        #expect(received == 20, "ticks 50 ms apart are not a stall (of 1.5 s)")
        await client.shutdown()
        await server.close()
    }

    @Test func aServerThatAcceptsButNeverSendsItsSettingsFailsTheConnectWithConnectTimeout() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        var configuration = HTTP2Client.Configuration()
        configuration.connection.connectTimeout = .milliseconds(300)
        let client = HTTP2Client(configuration: configuration)
        await #expect(throws: HTTP2Error.connectTimeout) { _ = try await client.get("http://127.0.0.1:\(silent.localAddress!.port!)/") }
        await client.shutdown()
        try await silent.close()
    }

    // MARK: Redirects

    @Test func redirectsAreFollowedWhenAskedWithTheMethodAndBodyRFC9110Says() async throws {
        let server = try await ServerSession.bind(port: 0) { request in
            let body = try await request.body.collect(upTo: 1 << 20)
            switch request.path {
            case "/303": return ServerSession.Response(status: .seeOther, headers: [.location: "/echo"])
            case "/307": return ServerSession.Response(status: .temporaryRedirect, headers: [.location: "/echo"])
            case "/chain/3": return ServerSession.Response(status: .found, headers: [.location: "/chain/2"])
            case "/chain/2": return ServerSession.Response(status: .movedPermanently, headers: [.location: "1"])  // relative: /chain/1
            case "/chain/1": return ServerSession.Response(status: .permanentRedirect, headers: [.location: "/echo"])
            case "/loop/a": return ServerSession.Response(status: .found, headers: [.location: "/loop/b"])
            case "/loop/b": return ServerSession.Response(status: .found, headers: [.location: "/loop/a"])
            default:
                let auth = request.headers[.authorization] ?? "-"
                return ServerSession.Response(body: .text("\(request.method) \(body.readableBytes) \(auth)"))
            }
        }
        let base = "http://127.0.0.1:\(server.port)"
        let plain = HTTP2Client()
        #expect(try await plain.get("\(base)/303").status == .seeOther, "not followed unless asked")
        var configuration = HTTP2Client.Configuration()
        configuration.redirects = .follow(maxRedirects: 5)
        let client = HTTP2Client(configuration: configuration)
        let auth: HTTPFields = [.authorization: "Bearer t"]
        #expect(try await client.post("\(base)/303", headers: auth, body: .text("12345")).text() == "GET 0 Bearer t")
        #expect(try await client.post("\(base)/307", headers: auth, body: .text("12345")).text() == "POST 5 Bearer t")
        #expect(try await client.get("\(base)/chain/3").text() == "GET 0 -")
        await #expect(throws: HTTP2Error.redirectLoop("\(base)/loop/a")) { _ = try await client.get("\(base)/loop/a") }
        var short = HTTP2Client.Configuration()
        short.redirects = .follow(maxRedirects: 2)
        let shortClient = HTTP2Client(configuration: short)
        await #expect(throws: HTTP2Error.tooManyRedirects(limit: 2)) { _ = try await shortClient.get("\(base)/chain/3") }
        // Streaming bodies cannot be replayed: the 307 comes back.
        let streamed = try await client.post("\(base)/307", body: .writer { try await $0.write(ByteBuffer(string: "once")) })
        #expect(streamed.status == .temporaryRedirect)
        for client in [plain, client, shortClient] { await client.shutdown() }
        await server.close()
    }

    @Test func credentialsAreDroppedWhenARedirectLeavesTheOrigin() async throws {
        let target = try await ServerSession.bind(port: 0) { request in
            ServerSession.Response(body: .text("\(request.headers[.authorization] ?? "-") \(request.headers[.cookie] ?? "-") \(request.headers[.userAgent] ?? "-")"))
        }
        let origin = try await ServerSession.bind(port: 0) { _ in
            ServerSession.Response(status: .found, headers: [.location: "http://localhost:\(target.port)/landed"])
        }
        var configuration = HTTP2Client.Configuration()
        configuration.redirects = .follow()
        let client = HTTP2Client(configuration: configuration)
        let headers: HTTPFields = [.authorization: "Bearer secret", .cookie: "a=b", .userAgent: "tests"]
        let response = try await client.get("http://127.0.0.1:\(origin.port)/go", headers: headers)
        #expect(try await response.text() == "- - tests")
        await client.shutdown()
        await origin.close()
        await target.close()
    }

    // MARK: Against `h2 serve`: redirects and decompression

    @Test func againstH2ServeRedirectChainsAreFollowedAndGzipAndDeflateComeBackDecoded() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try await Peers.freePort()
        let serve = try await Peers.start(Peers.h2, ["serve", "--port", "\(port)", "--dir", directory, "--quiet"], waitForPort: port)
        defer { serve.stop() }
        let base = "http://127.0.0.1:\(port)"
        var configuration = HTTP2Client.Configuration()
        configuration.redirects = .follow(maxRedirects: 5)
        let client = HTTP2Client(configuration: configuration)

        struct Echo: Decodable { let url: String? }
        let chain = try await client.get("\(base)/redirect/5")
        #expect(chain.status == .ok)
        #expect(try await chain.json(as: Echo.self).url?.hasSuffix("/get") == true)
        let absolute = try await client.get("\(base)/absolute-redirect/3")
        #expect(absolute.status == .ok)
        await #expect(throws: HTTP2Error.tooManyRedirects(limit: 5)) { _ = try await client.get("\(base)/redirect/6") }
        let to = try await client.get("\(base)/redirect-to?url=/get&status_code=307")
        #expect(to.status == .ok)
        struct Method: Decodable { let method: String? }
        let seeOther = try await client.post("\(base)/redirect-to?url=/anything&status_code=303", body: .text("gone after 303"))
        #expect(try await seeOther.json(as: Method.self).method == "GET")

        struct Coded: Decodable { let gzipped: Bool?; let deflated: Bool? }
        let gzip = try await client.get("\(base)/gzip")
        #expect(gzip.decodedContentEncoding == "gzip")
        #expect(gzip.headers[.contentEncoding] == nil, "the headers describe the decoded body")
        #expect(try await gzip.json(as: Coded.self).gzipped == true)
        let deflate = try await client.get("\(base)/deflate")
        #expect(deflate.decodedContentEncoding == "deflate")
        #expect(try await deflate.json(as: Coded.self).deflated == true)

        var raw = HTTP2Client.Configuration()
        raw.decompression = .disabled
        let plain = HTTP2Client(configuration: raw)
        let encoded = try await plain.get("\(base)/gzip", headers: [.acceptEncoding: "gzip"])
        #expect(encoded.headers[.contentEncoding] == "gzip")
        #expect(try await encoded.bytes().prefix(2) == [0x1f, 0x8b], "as received: gzip's magic")
        await client.shutdown()
        await plain.shutdown()
    }

    @Test func aGzipBombIsRefusedWithDecompressionLimitAndTheConnectionGoesOn() async throws {
        // 64 MiB of zeros, gzipped to about 64 KiB.
        var zeros = ByteBuffer(repeating: 0, count: 64 << 20)
        let bomb = try zeros.compress(with: .gzip())
        let server = try await ServerSession.bind(port: 0) { request in
            if request.path == "/bomb" { return ServerSession.Response(headers: [.contentEncoding: "gzip"], body: .bytes(bomb)) }
            return ServerSession.Response(body: .text("still here"))
        }
        let client = HTTP2Client()
        let response = try await client.get("http://127.0.0.1:\(server.port)/bomb")
        await #expect(throws: HTTP2Error.decompressionLimit(ratio: 100)) { _ = try await response.bytes() }
        #expect(try await client.get("http://127.0.0.1:\(server.port)/after").text() == "still here")
        #expect(client.connectionsOpened(to: "http://127.0.0.1:\(server.port)") == 1)
        await client.shutdown()
        await server.close()
    }

    // MARK: One-shot calls

    @Test func oneShotCallsReuseTheSharedClientsConnection() async throws {
        let server = try await ServerSession.bind(port: 0) { request in ServerSession.Response(body: .text(request.path)) }
        let url = "http://127.0.0.1:\(server.port)"
        for n in 0..<5 { #expect(try await HTTP2.get("\(url)/\(n)").text() == "/\(n)") }
        #expect(HTTP2Client.shared.connectionsOpened(to: url) == 1)
        await server.close()
    }
}

extension HTTP2Client {
    /// Connections the pool of `origin` has opened (for tests).
    func connectionsOpened(to origin: String) -> Int {
        guard let target = try? Target(origin) else { return 0 }
        return pool(ifExists: OriginPool.Origin(scheme: target.scheme, host: target.host, port: target.port))?.connectionsOpened ?? 0
    }
}

/// Tasks wait at it until it is opened (then and afterwards they pass at once).
final class RequestGate: Sendable {
    private let state = LockedState((open: false, waiting: [CheckedContinuation<Void, Never>]()))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let passes = state.withLock { state in
                if state.open { return true }
                state.waiting.append(continuation)
                return false
            }
            if passes { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}

/// An h2c server (raw frames) that answers RST_STREAM REFUSED_STREAM to the first `refusing` requests of each
/// connection and `200` with the path as the body to the others; with `droppingFirstConnection`, the first connection
/// is closed (TCP, no GOAWAY) when its first request arrives.
final class RefusingServer: Sendable {
    let server: RawServer
    let acceptor: Task<Void, Never>
    var port: Int { server.port }

    private init(server: RawServer, acceptor: Task<Void, Never>) {
        self.server = server
        self.acceptor = acceptor
    }

    static func start(refusing: Int, droppingFirstConnection: Bool = false) async throws -> RefusingServer {
        let server = try await RawServer.start()
        let acceptor = Task {
            await withTaskGroup(of: Void.self) { group in
                var first = true
                while let connection = try? await server.accept() {
                    let drops = first && droppingFirstConnection
                    first = false
                    group.addTask { await serve(connection, refusing: refusing, drops: drops) }
                }
            }
        }
        return RefusingServer(server: server, acceptor: acceptor)
    }

    private static func serve(_ connection: RawConnection, refusing: Int, drops: Bool) async {
        guard await connection.readPreface(timeout: .seconds(10)) else { return await connection.close() }
        var refused = 0
        var sentSettings = false
        guard let decoder = try? NGHTTP2.HPACK.Decoder() else { return await connection.close() }
        while case .frame(let frame) = await connection.nextFrame(timeout: .seconds(30)) {
            if frame.isSettings {
                try? await connection.send(wire(sentSettings ? [.settingsAck] : [.settings(), .settingsAck]))
                sentSettings = true
            } else if frame.type == FrameType.headers {
                // Every block is decoded (in order: HPACK's table is the connection's), refused or not.
                let fields = (try? decoder.decode(frame.payload)) ?? []
                if drops { break }
                if refused < refusing {
                    refused += 1
                    try? await connection.send(.rstStream(frame.streamID, .refusedStream))
                } else {
                    let path = fields.first { $0.name == ":path" }?.value ?? "?"
                    try? await connection.send(
                        .headers(frame.streamID, HPACK.block([(":status", "200")])),
                        .data(frame.streamID, Array(path.utf8), endStream: true)
                    )
                }
            }
        }
        await connection.close()
    }

    func close() async {
        acceptor.cancel()
        await server.close()
    }
}
