import Testing
import Foundation
import NIOCore
import HTTPTypes
@testable import NGHTTP2Async

/// ``HTTP2Client`` over HTTP/1.1: against Python's `http.server` (cleartext, and wrapped in `ssl` with ALPN
/// `http/1.1` or none), and against our own server's HTTP/1.1, on 127.0.0.1.
@Suite(.timeLimit(.minutes(3)))
struct HTTP2ClientOverHTTP1Tests {
    /// An HTTP/1.1-only server: `/` answers "METHOD PATH VERSION host=HOST" with the client's port in
    /// `x-peer-port` and the request's `Upgrade` (or "-") in `x-saw-upgrade`; `/chunked` answers in chunks; `/close`
    /// says `Connection: close`, `/late-close` too, with its body 0.3 s after its head; `/slow` waits 3 s; `/delay`
    /// 0.3 s; `/big/N` sends N bytes; POST echoes the body (chunked or not) and says how it was framed.
    static let script = #"""
    import sys, ssl, time, http.server
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *args): pass
        def send(self, status, body, headers=()):
            self.send_response(status)
            for name, value in headers: self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Peer-Port", str(self.client_address[1]))
            self.send_header("X-Saw-Upgrade", self.headers.get("Upgrade", "-"))
            self.end_headers()
            if self.command != "HEAD": self.wfile.write(body)
        def do_GET(self):
            if self.path == "/slow": time.sleep(3)
            if self.path == "/delay": time.sleep(0.3)
            if self.path == "/chunked":
                self.send_response(200); self.send_header("Transfer-Encoding", "chunked"); self.end_headers()
                for i in range(3):
                    part = ("part%d\n" % i).encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n"); return
            if self.path == "/late-close":
                self.send_response(200); self.send_header("Content-Length", "3"); self.send_header("Connection", "close")
                self.end_headers(); self.wfile.flush(); time.sleep(0.3)
                self.wfile.write(b"bye"); self.close_connection = True; return
            if self.path == "/close":
                self.close_connection = True
                return self.send(200, b"bye", [("Connection", "close")])
            if self.path.startswith("/big/"):
                count = int(self.path[5:])
                return self.send(200, (bytes(range(251)) * (count // 251 + 1))[:count])
            self.send(200, ("%s %s %s host=%s" % (self.command, self.path, self.request_version, self.headers.get("Host"))).encode())
        do_HEAD = do_GET
        def do_POST(self):
            chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
            data = b""
            if chunked:
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""): pass
                        break
                    data += self.rfile.read(size); self.rfile.readline()
            else:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send(200, data, [("X-Request-Framing", "chunked" if chunked else "length")])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    if len(sys.argv) > 2:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        if sys.argv[4] == "alpn": context.set_alpn_protocols(["http/1.1"])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
    """#

    /// Starts the script; `tls`: with the test certificates, `alpn` saying whether it selects `http/1.1` by ALPN.
    static func python(tls: (alpn: Bool, certificates: TestCertificates)? = nil) async throws -> (Peers.Running, Int) {
        let directory = try Peers.temporaryDirectory()
        let path = "\(directory)/http1_server.py"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let port = try await Peers.freePort()
        var arguments = [path, "\(port)"]
        if let tls { arguments += [tls.certificates.leafCertificate, tls.certificates.leafKey, tls.alpn ? "alpn" : "none"] }
        return (try await Peers.start("python3", arguments, waitForPort: port), port)
    }

    static func client(_ configure: (inout HTTP2Client.Configuration) -> Void = { _ in }) -> HTTP2Client {
        var configuration = HTTP2Client.Configuration()
        configuration.httpVersion = .http1Only
        configure(&configuration)
        return HTTP2Client(configuration: configuration)
    }

    static func origin(_ port: Int, scheme: String = "http", host: String = "127.0.0.1") -> OriginPool.Origin {
        OriginPool.Origin(scheme: scheme, host: host, port: port)
    }

    @Test func overCleartextHTTP1OnlySendsHTTP1RequestsAndReusesTheConnection() async throws {
        let (python, port) = try await Self.python()
        defer { python.stop() }
        let client = Self.client()
        var ports: Set<String> = []
        for index in 0..<5 {
            let response = try await client.get("http://127.0.0.1:\(port)/item/\(index)?q=1")
            #expect(response.status == .ok)
            #expect(try await response.text() == "GET /item/\(index)?q=1 HTTP/1.1 host=127.0.0.1:\(port)")
            #expect(response.streamID == Int32(index + 1), "the connection's nth request")
            ports.insert(response.headers[HTTPField.Name("x-peer-port")!] ?? "?")
        }
        #expect(ports.count == 1, "keep-alive: one connection carried every request (\(ports))")
        #expect(client.pool(ifExists: Self.origin(port))?.connectionsOpened == 1)
        await client.shutdown()
    }

    @Test func aWholeBodyGoesWithItsLengthAndAStreamingOneInChunks() async throws {
        let (python, port) = try await Self.python()
        defer { python.stop() }
        let client = Self.client()
        let whole = try await client.post("http://127.0.0.1:\(port)/echo", body: .bytes(Array("hello over http/1.1".utf8)))
        #expect(whole.headers[HTTPField.Name("x-request-framing")!] == "length")
        #expect(try await whole.text() == "hello over http/1.1")

        let streamed = try await client.post(
            "http://127.0.0.1:\(port)/echo",
            body: .writer { writer in
                for index in 0..<3 { try await writer.write(ByteBuffer(string: "chunk\(index);")) }
            })
        #expect(streamed.headers[HTTPField.Name("x-request-framing")!] == "chunked")
        #expect(try await streamed.text() == "chunk0;chunk1;chunk2;")
        await client.shutdown()
    }

    @Test func chunkedResponsesHEADAndConnectionCloseAreReadAsHTTP1Defines() async throws {
        let (python, port) = try await Self.python()
        defer { python.stop() }
        let client = Self.client { $0.decompression = .disabled }
        let chunked = try await client.get("http://127.0.0.1:\(port)/chunked")
        #expect(try await chunked.text() == "part0\npart1\npart2\n")
        #expect(chunked.headers[.transferEncoding] == nil, "transfer-encoding concerns the connection only")

        let head = try await client.head("http://127.0.0.1:\(port)/")
        #expect(head.status == .ok)
        #expect(head.contentLength != nil && head.contentLength! > 0, "HEAD keeps the length of the body it does not send")
        #expect(try await head.bytes().isEmpty)

        let closing = try await client.get("http://127.0.0.1:\(port)/close")
        let closingPort = closing.headers[HTTPField.Name("x-peer-port")!]
        #expect(try await closing.text() == "bye")
        let next = try await client.get("http://127.0.0.1:\(port)/")
        #expect(next.status == .ok)
        #expect(next.headers[HTTPField.Name("x-peer-port")!] != closingPort, "after Connection: close the next request needs a new connection")
        _ = try await next.bytes()
        await client.shutdown()
    }

    @Test func aBodyThatArrivesWithTheEndOfAClosingConnectionReachesAReaderAlreadyWaiting() async throws {
        let (python, port) = try await Self.python()
        defer { python.stop() }
        let client = Self.client()
        let response = try await client.get("http://127.0.0.1:\(port)/late-close")
        // The reader waits before the body comes; the body's read ends the exchange, and the connection closes in
        // that read (no read-complete follows): the body and the end must still be handed over.
        #expect(try await response.text() == "bye")
        await client.shutdown()
    }

    @Test func concurrentRequestsOpenSeveralHTTP1ConnectionsUpToTheLimit() async throws {
        let (python, port) = try await Self.python()
        defer { python.stop() }
        let client = Self.client { $0.maxConnectionsPerOrigin = 4 }
        let ports = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    let response = try await client.get("http://127.0.0.1:\(port)/delay")
                    #expect(response.status == .ok)
                    _ = try await response.bytes()
                    return response.headers[HTTPField.Name("x-peer-port")!] ?? "?"
                }
            }
            var ports: Set<String> = []
            for try await port in group { ports.insert(port) }
            return ports
        }
        #expect(ports.count > 1 && ports.count <= 4, "one request per HTTP/1.1 connection at a time, at most 4 connections: \(ports)")
        #expect((client.pool(ifExists: Self.origin(port))?.connectionsOpened ?? 0) <= 4)
        await client.shutdown()
    }

    @Test func theReadTimeoutFiresOverHTTP1AndTheClientGoesOnWithANewConnection() async throws {
        let (python, port) = try await Self.python()
        defer { python.stop() }
        let client = Self.client { $0.readTimeout = .milliseconds(500) }
        await #expect(throws: HTTP2Error.readTimeout(.milliseconds(500))) {
            _ = try await client.get("http://127.0.0.1:\(port)/slow")
        }
        let after = try await client.get("http://127.0.0.1:\(port)/")
        #expect(after.status == .ok)
        _ = try await after.bytes()
        await client.shutdown()
    }

    @Test func aLargeBodyIsByteIdenticalWithTheReaderPacingTheSocket() async throws {
        let (python, port) = try await Self.python()
        defer { python.stop() }
        let client = Self.client { $0.connection.streamWindowSize = 64 << 10 }
        let count = 4 << 20
        let response = try await client.get("http://127.0.0.1:\(port)/big/\(count)")
        let pattern = Data((0..<251).map { UInt8($0) })
        var expected = Data(capacity: count + 251)
        while expected.count < count { expected.append(pattern) }
        var body = Data(capacity: count)
        var received = 0
        var maxBuffered = 0
        for try await chunk in response.body {
            body.append(contentsOf: chunk.readableBytesView)
            received += chunk.readableBytes
            // A slow reader: without the socket held back, the whole body would pile up in the reader.
            try await Task.sleep(for: .milliseconds(1))
            maxBuffered = max(maxBuffered, response.body.bufferedByteCount)
        }
        // The buffer (64 KiB) plus what one read burst brings (NIO's reads of up to the receive allocator's size).
        #expect(maxBuffered <= 3 << 19, "the reader held at most \(maxBuffered) bytes of \(count)")
        #expect(received == count)
        #expect(body == expected.prefix(count), "byte-identical")
        await client.shutdown()
    }

    @Test func overTLSAutomaticSpeaksHTTP1WhenALPNPicksItOrPicksNothing() async throws {
        let certificates = try await TestCertificates.shared()
        for alpn in [true, false] {
            let (python, port) = try await Self.python(tls: (alpn, certificates))
            defer { python.stop() }
            var configuration = HTTP2Client.Configuration()
            configuration.connection.tls = .makeClientConfiguration()
            configuration.connection.tls?.trustRoots = .file(certificates.caCertificate)
            let client = HTTP2Client(configuration: configuration)
            let response = try await client.get("https://localhost:\(port)/tls")
            #expect(try await response.text() == "GET /tls HTTP/1.1 host=localhost:\(port)", "ALPN \(alpn ? "http/1.1" : "none")")
            await client.shutdown()

            configuration.httpVersion = .http2Only
            let strict = HTTP2Client(configuration: configuration)
            do {
                _ = try await strict.get("https://localhost:\(port)/tls")
                Issue.record("an HTTP/2-only client spoke to an HTTP/1.1 server")
            } catch let error as TLSError {
                #expect(error.code == .alpnMismatch, "\(error)")
                #expect(error.offered == ["h2"] && error.negotiated == nil, "\(error)")
            }
            await strict.shutdown()
        }
    }

    @Test func theH2CommandSpeaksHTTP1WithHTTP1Dot1AndSaysSoWhenItIsNeeded() async throws {
        let (python, port) = try await Self.python()
        defer { python.stop() }
        let url = "http://127.0.0.1:\(port)/cli"
        let http1 = try await Peers.run(Peers.h2, ["--http1.1", url], timeout: .seconds(30))
        #expect(http1.status == 0, "\(http1.stderr)")
        #expect(http1.text == "GET /cli HTTP/1.1 host=127.0.0.1:\(port)")
        let priorKnowledge = try await Peers.run(Peers.h2, [url], timeout: .seconds(30))
        #expect(priorKnowledge.status == 1)
        #expect(priorKnowledge.stderr.contains("speaks HTTP/1.1") && priorKnowledge.stderr.contains("--http1.1"), "\(priorKnowledge.stderr)")
    }

    @Test func againstOurServerAStreamedUploadAndDownloadRoundTripOverHTTP1() async throws {
        let server = try await ServerSession.bind(port: 0) { request in
            ServerSession.Response(body: .writer { writer in
                for try await chunk in request.body { try await writer.write(chunk) }
            })
        }
        let client = Self.client()
        let chunks = 64
        let chunk = ByteBuffer(bytes: (0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) })
        let response = try await client.post(
            "http://127.0.0.1:\(server.port)/echo",
            body: .writer { writer in
                for _ in 0..<chunks { try await writer.write(chunk) }
            })
        var body = Data()
        for try await part in response.body { body.append(contentsOf: part.readableBytesView) }
        var expected = Data()
        for _ in 0..<chunks { expected.append(contentsOf: chunk.readableBytesView) }
        #expect(body.count == expected.count)
        #expect(body == expected, "byte-identical")
        #expect(response.streamID == 1)
        await client.shutdown()
        await server.close()
    }
}
