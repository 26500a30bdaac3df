import Testing
import Foundation
import NIOCore
import HTTPTypes
@testable import NGHTTP2Async

/// HTTP/1.1 (RFC 9112) served by a ServerSession through the same handler as HTTP/2: real peers (curl, nghttp,
/// h2load) and raw sockets on 127.0.0.1.
@Suite(.timeLimit(.minutes(3)))
struct HTTP1ServerTests {
    /// The body of `/fixed`, the same over every protocol.
    static let fixed = String(repeating: "swift-nghttp2 ", count: 300)

    static func handler(_ request: ServerSession.Request) async throws -> ServerSession.Response {
        switch request.path {
        case "/fixed":
            return ServerSession.Response(headers: [.contentType: "text/plain"], body: .text(fixed))
        case "/echo":
            // Streams the request body back as it arrives: chunked over HTTP/1.1 (no content-length).
            let body = request.body
            return ServerSession.Response(body: .writer { writer in
                for try await chunk in body { try await writer.write(chunk) }
            })
        case "/count":
            var count = 0
            for try await chunk in request.body { count += chunk.readableBytes }
            return ServerSession.Response(body: .text("\(count)"))
        case "/slow":
            try await Task.sleep(for: .milliseconds(300))
            return ServerSession.Response(body: .text("slow"))
        case "/slower":
            try await Task.sleep(for: .milliseconds(1500))
            return ServerSession.Response(body: .text("slower"))
        default:
            return ServerSession.Response(body: .text("path \(request.path)"))
        }
    }

    static func server(_ configure: (inout ServerSession.Configuration) throws -> Void = { _ in }) async throws -> ServerSession {
        var configuration = ServerSession.Configuration()
        try configure(&configuration)
        return try await ServerSession.bind(port: 0, configuration: configuration, handler: handler)
    }

    static func tlsServer(_ configure: (inout ServerSession.Configuration) -> Void = { _ in }) async throws -> (ServerSession, TestCertificates) {
        let certificates = try await TestCertificates.shared()
        let server = try await server { configuration in
            configuration.tls = .makeServerConfiguration(
                certificateChain: .file(certificates.leafCertificate),
                privateKey: .file(certificates.leafKey)
            )
            configure(&configuration)
        }
        return (server, certificates)
    }

    /// curl's body and `%{http_version}`, with `arguments` before the URL.
    static func curl(_ arguments: [String], _ url: String, stdin: Data? = nil) async throws -> (body: String, version: String, status: Int32) {
        let marker = "\n--http-version:"
        let result = try await Peers.run("curl", ["-s", "-S", "--max-time", "20", "-w", "\(marker)%{http_version}"] + arguments + [url], stdin: stdin)
        let text = result.text
        guard let range = text.range(of: marker, options: .backwards) else { return (text, "", result.status) }
        return (String(text[..<range.lowerBound]), String(text[range.upperBound...]), result.status)
    }

    // MARK: Peers

    @Test func curlOverHTTP1GetsTheSameBodyAsOverHTTP2OnCleartext() async throws {
        let server = try await Self.server()
        let url = "http://127.0.0.1:\(server.port)/fixed"
        let http1 = try await Self.curl(["--http1.1"], url)
        let http2 = try await Self.curl(["--http2-prior-knowledge"], url)
        #expect(http1.version == "1.1" && http2.version == "2", "\(http1.version) \(http2.version)")
        #expect(http1.body == Self.fixed)
        #expect(http1.body == http2.body)
        await server.close()
    }

    @Test func atItsMaximumAgeAnHTTP1ConnectionFinishesItsRequestWithConnectionCloseAndAnIdleOneCloses() async throws {
        let server = try await Self.server { $0.maxConnectionAge = .seconds(1) }
        // Python's http.client: a request in flight at the age (its response has not started), then an idle
        // connection past the age.
        let script = """
            import http.client, sys, time
            port = int(sys.argv[1])
            c = http.client.HTTPConnection("127.0.0.1", port)
            c.request("GET", "/slower")
            r = c.getresponse()
            print(r.status, r.getheader("connection"), r.read().decode())
            c = http.client.HTTPConnection("127.0.0.1", port)
            c.request("GET", "/fixed")
            r = c.getresponse()
            r.read()
            print(r.status, r.getheader("connection"))
            time.sleep(1.5)
            c.sock.settimeout(5)
            print("closed" if c.sock.recv(1) == b"" else "open")
            """
        let result = try await Peers.run("python3", ["-c", script, "\(server.port)"], timeout: .seconds(30))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text.split(separator: "\n") == ["200 close slower", "200 None", "closed"], "\(result.text)")
        await server.close()
    }

    @Test func aRequestHeadOverMaxHeaderListSizeIsAnswered431OverHTTP1AsOverHTTP2() async throws {
        let server = try await Self.server { $0.maxHeaderListSize = 16 << 10 }
        let url = "http://127.0.0.1:\(server.port)/fixed"
        func status(_ version: String, headerBytes: Int) async throws -> String {
            let header = "x-big: " + String(repeating: "a", count: headerBytes)
            let result = try await Peers.run(
                "curl", ["-s", "-o", "/dev/null", "--max-time", "20", "-w", "%{http_code}", version, "-H", header, url])
            return result.text
        }
        #expect(try await status("--http1.1", headerBytes: 24 << 10) == "431", "RFC 6585 §5")
        #expect(try await status("--http2-prior-knowledge", headerBytes: 24 << 10) == "431")
        #expect(try await status("--http1.1", headerBytes: 8 << 10) == "200", "within the limit")
        #expect(try await Self.curl(["--http1.1"], url).body == Self.fixed, "the server goes on")
        await server.close()
    }

    @Test func overHTTP1TheImmediateHandlerAnswersFirstAndTheHandlerGetsTheRest() async throws {
        let server = try await ServerSession.bind(
            port: 0,
            immediateHandler: { request in request.path == "/now" ? ServerSession.Response(body: .text("now")) : nil },
            handler: { request in ServerSession.Response(body: .text("task \(request.path)")) }
        )
        let now = try await Self.curl(["--http1.1"], "http://127.0.0.1:\(server.port)/now")
        let later = try await Self.curl(["--http1.1"], "http://127.0.0.1:\(server.port)/later")
        #expect(now.version == "1.1" && now.body == "now", "\(now)")
        #expect(later.version == "1.1" && later.body == "task /later", "\(later)")
        await server.close()
    }

    @Test func curlOverTLSGetsHTTP1ByALPNWithTheSameBodyAsH2() async throws {
        let (server, certificates) = try await Self.tlsServer()
        let url = "https://localhost:\(server.port)/fixed"
        let http1 = try await Self.curl(["--http1.1", "--cacert", certificates.caCertificate], url)
        let http2 = try await Self.curl(["--http2", "--cacert", certificates.caCertificate], url)
        #expect(http1.status == 0 && http2.status == 0)
        #expect(http1.version == "1.1" && http2.version == "2", "\(http1.version) \(http2.version)")
        #expect(http1.body == Self.fixed)
        #expect(http1.body == http2.body)
        await server.close()
    }

    @Test func anHTTP2OnlyServerRefusesHTTP1OnCleartextAndOverTLS() async throws {
        let cleartext = try await Self.server { $0.protocols = .http2Only }
        let refused = try await Self.curl(["--http1.1"], "http://127.0.0.1:\(cleartext.port)/fixed")
        #expect(refused.status != 0 || !refused.body.contains("swift-nghttp2"), "HTTP/1.1 was answered: \(refused)")
        #expect(try await Self.curl(["--http2-prior-knowledge"], "http://127.0.0.1:\(cleartext.port)/fixed").body == Self.fixed)
        await cleartext.close()

        let (tls, certificates) = try await Self.tlsServer { $0.protocols = .http2Only }
        let url = "https://localhost:\(tls.port)/fixed"
        let overTLS = try await Self.curl(["--http1.1", "--cacert", certificates.caCertificate], url)
        #expect(overTLS.status != 0, "ALPN http/1.1 was accepted")
        #expect(try await Self.curl(["--http2", "--cacert", certificates.caCertificate], url).body == Self.fixed)
        await tls.close()
    }

    @Test func curlWithHTTP2OnAnHTTPURLUpgradesToH2C() async throws {
        let server = try await Self.server()
        let upgraded = try await Self.curl(["--http2"], "http://127.0.0.1:\(server.port)/fixed")
        #expect(upgraded.version == "2", "curl's %{http_version} after the Upgrade")
        #expect(upgraded.body == Self.fixed)
        // The upgraded connection goes on as HTTP/2: a second URL on it.
        let two = try await Peers.run(
            "curl",
            ["-s", "--http2", "-w", " %{http_version} %{num_connects}", "http://127.0.0.1:\(server.port)/a", "http://127.0.0.1:\(server.port)/b"]
        )
        #expect(two.text == "path /a 2 1path /b 2 0", "\(two.text)")
        await server.close()
    }

    @Test func anUpgradeRequestWithABodyIsAnsweredOverHTTP1() async throws {
        let server = try await Self.server()
        let raw = try await RawConnection.connect(port: server.port)
        try await raw.send(Array((
            "POST /count HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                + "HTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\nhello"
        ).utf8))
        let text = await raw.text(until: { $0.hasSuffix("\r\n\r\n5") })
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(text)")
        #expect(text.lowercased().contains("connection: close"), "NIO's decoder stops after an Upgrade request: \(text)")
        #expect(await raw.waitForClose(timeout: .seconds(10)))
        await server.close()
    }

    @Test func nghttpUpgradeGetsTheAnswerOnStream1() async throws {
        let server = try await Self.server()
        let result = try await Peers.run("nghttp", ["-u", "-v", "http://127.0.0.1:\(server.port)/fixed"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text.contains("HTTP Upgrade success"), "\(result.text)")
        #expect(result.text.contains("recv (stream_id=1) :status: 200"), "\(result.text)")
        #expect(result.text.contains(Self.fixed), "the body")
        await server.close()
    }

    @Test func nghttpUpgradeWithAnUploadUpgradesOnOPTIONSThenPostsOverHTTP2() async throws {
        let server = try await Self.server()
        let directory = try Peers.temporaryDirectory()
        let file = "\(directory)/upload"
        try Data(payload(100_000, seed: 5)).write(to: URL(fileURLWithPath: file))
        // nghttp upgrades with a bodiless OPTIONS * when it has a body to send (-d), then sends the POST on HTTP/2.
        let result = try await Peers.run("nghttp", ["-u", "-d", file, "-v", "http://127.0.0.1:\(server.port)/count"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.text.contains("HTTP Upgrade success"), "\(result.text.prefix(2000))")
        #expect(result.text.contains("recv (stream_id=1) :status: 200"), "OPTIONS * answered on stream 1")
        let body = try await Peers.run("nghttp", ["-u", "-d", file, "http://127.0.0.1:\(server.port)/count"])
        #expect(body.status == 0 && body.text == "100000", "the POST's count, over the upgraded connection: \(body.text)")
        try? FileManager.default.removeItem(atPath: directory)
        await server.close()
    }

    @Test func h2loadOverHTTP1SucceedsEveryRequest() async throws {
        let server = try await Self.server()
        let load = try await Peers.run("h2load", ["--h1", "-n", "2000", "-c", "8", "-t", "1", "http://127.0.0.1:\(server.port)/fixed"])
        let requests = load.text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("requests:") }
        let counts = ServerUnderPeersTests.counts(in: requests ?? "")
        #expect(counts["succeeded"] == 2000, "\(requests ?? load.text)")
        #expect(counts["failed"] == 0 && counts["errored"] == 0, "\(requests ?? load.text)")
        await server.close()
    }

    // MARK: Connections

    @Test func severalRequestsShareOneKeepAliveConnectionUntilConnectionClose() async throws {
        let server = try await Self.server()
        let two = try await Peers.run(
            "curl",
            ["-s", "--http1.1", "-w", " %{num_connects}", "http://127.0.0.1:\(server.port)/a", "http://127.0.0.1:\(server.port)/b"]
        )
        #expect(two.text == "path /a 1path /b 0", "the second request reused the connection: \(two.text)")

        let raw = try await RawConnection.connect(port: server.port)
        for path in ["/one", "/two"] {
            let seen = raw.received.count
            try await raw.send(Array("GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
            let text = await raw.text(after: seen, until: { $0.hasSuffix("path \(path)") })
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n") && !text.lowercased().contains("connection: close"), "\(text)")
        }
        #expect(!raw.isClosed)
        let seen = raw.received.count
        try await raw.send(Array("GET /three HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".utf8))
        let last = await raw.text(after: seen, until: { $0.hasSuffix("path /three") })
        #expect(last.lowercased().contains("connection: close"), "\(last)")
        #expect(await raw.waitForClose(timeout: .seconds(10)), "Connection: close was not honoured")
        await server.close()
    }

    /// `maxRequestsPerConnection` over HTTP/1.1: the last allowed request's response says `Connection: close` (RFC
    /// 9112 §9.6) and curl opens a new connection for the next.
    @Test func aConnectionClosesAfterItsMaximumRequestsAndTheClientGoesOnOnANewOne() async throws {
        let server = try await Self.server { $0.maxRequestsPerConnection = 2 }
        let base = "http://127.0.0.1:\(server.port)"
        let three = try await Peers.run("curl", ["-s", "--http1.1", "-w", " %{num_connects}", "\(base)/a", "\(base)/b", "\(base)/c"])
        #expect(three.text == "path /a 1path /b 0path /c 1", "a new connection after two requests: \(three.text)")
        await server.close()
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let server = try await Self.server()
        let raw = try await RawConnection.connect(port: server.port)
        // One write: the first is slow, the others must still come after it.
        try await raw.send(Array((
            "GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n"
                + "POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: a\r\n\r\n"
        ).utf8))
        let text = await raw.text(until: { $0.hasSuffix("path /b") })
        let bodies = text.components(separatedBy: "\r\n\r\n").dropFirst().map { $0.components(separatedBy: "HTTP/1.1 ").first ?? "" }
        #expect(bodies == ["slow", "path /a", "3", "path /b"], "\(text)")
        #expect(!raw.isClosed)
        await raw.close()
        await server.close()
    }

    @Test func headRequestsGetTheHeadWithoutTheBody() async throws {
        let server = try await Self.server()
        let raw = try await RawConnection.connect(port: server.port)
        try await raw.send(Array("HEAD /fixed HTTP/1.1\r\nHost: a\r\n\r\nHEAD /echo HTTP/1.1\r\nHost: a\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        let text = await raw.text(until: { $0.hasSuffix("path /a") })
        let responses = text.components(separatedBy: "HTTP/1.1 200 OK\r\n").dropFirst()
        #expect(responses.count == 3, "\(text)")
        #expect(!text.contains("swift-nghttp2"), "a HEAD response carried a body: \(text)")
        #expect(responses.first?.lowercased().contains("content-length: \(Self.fixed.utf8.count)") == true, "\(text)")
        await raw.close()
        await server.close()
    }

    @Test func chunkedRequestAndResponseBodies() async throws {
        let server = try await Self.server()
        let directory = try Peers.temporaryDirectory()
        let body = payload(300_000, seed: 3)
        let file = "\(directory)/upload"
        try Data(body).write(to: URL(fileURLWithPath: file))
        let result = try await Peers.run(
            "curl",
            ["-s", "--http1.1", "-D", "\(directory)/headers", "-o", "\(directory)/out", "-H", "Transfer-Encoding: chunked",
             "--data-binary", "@\(file)", "http://127.0.0.1:\(server.port)/echo"]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let headers = try String(contentsOfFile: "\(directory)/headers", encoding: .utf8).lowercased()
        #expect(headers.contains("transfer-encoding: chunked"), "\(headers)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/out")) == Data(body), "the echo differs")
        try? FileManager.default.removeItem(atPath: directory)
        await server.close()
    }

    @Test func aBigUploadToAHandlerThatDoesNotReadHoldsBoundedMemory() async throws {
        let gate = AsyncGate()
        let seen = LockedState<StreamReader?>(nil)
        var configuration = ServerSession.Configuration()
        configuration.streamWindowSize = 256 << 10
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { request in
            seen.withLock { $0 = request.body }
            await gate.wait()
            var count = 0
            for try await chunk in request.body { count += chunk.readableBytes }
            return ServerSession.Response(body: .text("\(count)"))
        }
        let total = 64 << 20
        let raw = try await RawConnection.connect(port: server.port)
        try await raw.send(Array("POST /count HTTP/1.1\r\nHost: a\r\nContent-Length: \(total)\r\n\r\n".utf8))
        let sent = LockedState(0)
        let upload = Task {
            let chunk = [UInt8](repeating: 7, count: 64 << 10)
            for _ in 0..<(total / chunk.count) {
                try await raw.send(chunk)
                sent.withLock { $0 += chunk.count }
            }
        }
        // The reader fills up to its limit; then the server stops reading and the upload stalls in TCP.
        var reader: StreamReader?
        for _ in 0..<1_000 {
            reader = seen.withLock { $0 }
            if let reader, reader.bufferedByteCount >= 256 << 10 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(500))
        let buffered = reader?.bufferedByteCount ?? -1
        #expect(buffered >= 256 << 10, "the reader filled up")
        // The limit plus what one socket read (at most 256 KiB) brought in.
        #expect(buffered <= 512 << 10, "the server buffered \(buffered) bytes for a reader that does not read")
        #expect(sent.withLock { $0 } < total, "the whole upload was taken while nobody read it")
        await gate.open()
        try await upload.value
        let text = await raw.text(until: { $0.hasSuffix("\r\n\r\n\(total)") })
        #expect(text.hasSuffix("\r\n\r\n\(total)"), "\(text)")
        await raw.close()
        await server.close()
    }

    @Test func malformedInputGets400AndClosesOnlyThatConnection() async throws {
        let server = try await Self.server()
        let good = try await RawConnection.connect(port: server.port)
        try await good.send(Array("GET /before HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        #expect(await good.text(until: { $0.hasSuffix("path /before") }).hasSuffix("path /before"))

        for bad in [
            "GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",  // no Host (RFC 9112 §3.2)
            "\u{16}\u{03}\u{01} not http at all\r\n\r\n",
        ] {
            let raw = try await RawConnection.connect(port: server.port)
            try await raw.send(Array(bad.utf8))
            #expect(await raw.waitForClose(timeout: .seconds(10)), "the connection was not closed: \(bad.debugDescription)")
            let text = String(decoding: raw.received, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(bad.debugDescription): \(text)")
        }

        let seen = good.received.count
        try await good.send(Array("GET /after HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        #expect(await good.text(after: seen, until: { $0.hasSuffix("path /after") }).hasSuffix("path /after"), "the other connection goes on")
        #expect(try await Self.curl(["--http1.1"], "http://127.0.0.1:\(server.port)/fresh").body == "path /fresh")
        await good.close()
        await server.close()
    }

    @Test func aGracefulCloseFinishesTheRequestInFlightThenClosesItsConnection() async throws {
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let gate = AsyncGate()
        let server = try await ServerSession.bind(port: 0) { request in
            guard request.path == "/slow" else { return try await Self.handler(request) }
            startedContinuation.yield()
            await gate.wait()
            return ServerSession.Response(body: .text("slow"))
        }
        let busy = try await RawConnection.connect(port: server.port)
        let idle = try await RawConnection.connect(port: server.port)
        try await idle.send(Array("GET /a HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        _ = await idle.text(until: { $0.hasSuffix("path /a") })
        try await busy.send(Array("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        for await _ in started { break }  // the slow request is in its handler
        let closing = Task { await server.close() }
        #expect(await idle.waitForClose(timeout: .seconds(10)), "the idle connection was closed at once")
        await gate.open()  // the shutdown has reached the connections: the slow request may answer now
        await closing.value
        #expect(await busy.waitForClose(timeout: .seconds(5)))
        let text = String(decoding: busy.received, as: UTF8.self)  // all of it: the client saw the close
        #expect(text.hasSuffix("\r\n\r\nslow"), "the request in flight was answered: \(text)")
        #expect(text.lowercased().contains("connection: close"), "\(text)")
    }
}

/// Opens once; waiters before and after go on.
private actor AsyncGate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}

extension RawConnection {
    /// What arrived after the first `seen` bytes, as text, once `done` says so (or the connection closed, or 20 s passed).
    func text(after seen: Int = 0, until done: (String) -> Bool) async -> String {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let bytes = received
            let text = String(decoding: bytes.dropFirst(seen), as: UTF8.self)
            if done(text) || isClosed || ContinuousClock.now >= deadline { return text }
            await collector.waitForNews(seen: bytes.count, timeout: deadline - ContinuousClock.now, on: channel.eventLoop)
        }
    }
}
