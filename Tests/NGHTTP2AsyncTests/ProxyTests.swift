import Testing
import Foundation
import NIOCore
import NIOEmbedded
import HTTPTypes
@testable import NGHTTP2Async

/// The client through a forward proxy: an HTTP/1.1 CONNECT tunnel (RFC 9110 §9.3.6) to tinyproxy on 127.0.0.1, then
/// TLS or HTTP/2 with prior knowledge through it.
@Suite(.timeLimit(.minutes(3)))
struct ProxyTests {
    private func tlsConfiguration() async throws -> NGHTTP2TLSConfiguration {
        let certificates = try await TestCertificates.shared()
        var tls = NGHTTP2TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificates.caCertificate)
        return tls
    }

    @Test func a64MiBDownloadFromATLSServerThroughTinyproxyArrivesByteIdentical() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bytes = payload(64 << 20, seed: 41)
        try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/big.bin"))
        let (nghttpd, serverPort) = try await Peers.nghttpdTLS(directory: directory, certificates: certificates)
        defer { nghttpd.stop() }
        let (proxy, proxyPort) = try await Peers.tinyproxy(directory: directory, connectPorts: [serverPort])
        defer { proxy.stop() }

        var configuration = ClientSession.Configuration()
        configuration.proxy = try HTTPProxy(url: "http://127.0.0.1:\(proxyPort)")
        configuration.tls = try await tlsConfiguration()
        let client = try await ClientSession.connect(host: "127.0.0.1", port: serverPort, configuration: configuration)
        #expect(client.scheme == "https")
        #expect(client.authority == "127.0.0.1:\(serverPort)", "the authority is the target's, not the proxy's")
        let response = try await client.get("/big.bin")
        #expect(response.status == .ok)
        var offset = 0
        var identical = true
        for try await chunk in response.body {
            let count = chunk.readableBytes
            // memcmp against the file's bytes (a generic element-wise compare of 64 MiB is slow in debug builds).
            let same = offset + count <= bytes.count && chunk.withUnsafeReadableBytes { received in
                bytes.withUnsafeBytes { expected in
                    count == 0 || memcmp(received.baseAddress!, expected.baseAddress! + offset, count) == 0
                }
            }
            if !same { identical = false }
            offset += count
        }
        #expect(offset == bytes.count)
        #expect(identical, "the bytes differ from the file's")
        let handlers = try await client.channel.eventLoop.submit { [pipeline = client.channel.pipeline] in
            let sync = pipeline.syncOperations
            return (
                (try? sync.handler(type: ProxyTunnelHandler<NegotiatedConnection>.self)) != nil,
                (try? sync.handler(type: TLSHandler.self)) != nil,
                (try? sync.handler(type: ConnectionHandler.self)) != nil
            )
        }.get()
        #expect(!handlers.0, "the tunnel handler removed itself")
        #expect(handlers.1 && handlers.2, "TLS and HTTP/2 run through the tunnel")
        await client.close()
    }

    @Test func anH2CPriorKnowledgeServerAnswersThroughTinyproxy() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await ServerSession.bind(port: 0) { request in
            ServerSession.Response(body: .text("hello \(request.head.path ?? "") via \(request.head.authority ?? "")"))
        }
        let (proxy, proxyPort) = try await Peers.tinyproxy(directory: directory, connectPorts: [server.port])
        defer { proxy.stop() }

        var configuration = ClientSession.Configuration()
        configuration.proxy = HTTPProxy(host: "127.0.0.1", port: proxyPort)
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        #expect(client.scheme == "http")
        async let a = client.get("/a")
        async let b = client.get("/b")
        #expect(try await a.text() == "hello /a via 127.0.0.1:\(server.port)")
        #expect(try await b.text() == "hello /b via 127.0.0.1:\(server.port)")
        await client.close()
        await server.close()
    }

    @Test func anHTTP2ClientPoolsItsConnectionsThroughTheProxyToATLSServer() async throws {
        let certificates = try await TestCertificates.shared()
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bytes = payload(1 << 20, seed: 7)
        try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/one.bin"))
        let (nghttpd, serverPort) = try await Peers.nghttpdTLS(directory: directory, certificates: certificates, extra: ["-m", "10"])
        defer { nghttpd.stop() }
        let (proxy, proxyPort) = try await Peers.tinyproxy(directory: directory, connectPorts: [serverPort])
        defer { proxy.stop() }

        var configuration = HTTP2Client.Configuration()
        configuration.proxy = try HTTPProxy(url: "http://127.0.0.1:\(proxyPort)")
        configuration.connection.tls = try await tlsConfiguration()
        configuration.maxConnectionsPerOrigin = 3
        let client = HTTP2Client(configuration: configuration)
        let url = "https://127.0.0.1:\(serverPort)/one.bin"
        let sizes = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<30 { group.addTask { try await client.get(url).bytes().count } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(sizes == Array(repeating: bytes.count, count: 30))
        #expect(try await client.get(url).bytes() == bytes)
        #expect(client.connectionsOpened(to: "https://127.0.0.1:\(serverPort)") == 3, "30 requests, 10 streams per connection")
        await client.shutdown()
    }

    @Test func basicAuthIsAcceptedWithTheRightCredentialsAndA407FailsTheConnectWithoutThem() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response(body: .text("ok")) }
        let (proxy, proxyPort) = try await Peers.tinyproxy(
            directory: directory, connectPorts: [server.port], basicAuth: (username: "alice", password: "s3cret"))
        defer { proxy.stop() }

        var configuration = ClientSession.Configuration()
        configuration.proxy = try HTTPProxy(url: "http://alice:s3cret@127.0.0.1:\(proxyPort)")
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        #expect(try await client.get("/").text() == "ok")
        await client.close()

        for proxySetting in [
            HTTPProxy(host: "127.0.0.1", port: proxyPort),
            HTTPProxy(host: "127.0.0.1", port: proxyPort, credentials: .init(username: "alice", password: "wrong")),
        ] {
            configuration.proxy = proxySetting
            let error = await #expect(throws: HTTP2Error.self) {
                _ = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
            }
            #expect(error?.code == .proxyConnectFailed)
            // tinyproxy 1.11 answers missing credentials with 407 and wrong ones with 401 Unauthorized.
            let expected = proxySetting.credentials == nil ? "407 Proxy Authentication Required" : "401 Unauthorized"
            #expect(error?.detail == expected)
        }
        await server.close()
    }

    @Test func aPortTheProxyDoesNotAllowFailsWithTheProxysStatusLine() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response(body: .text("ok")) }
        let (proxy, proxyPort) = try await Peers.tinyproxy(directory: directory, connectPorts: [server.port == 443 ? 444 : 443])
        defer { proxy.stop() }
        var configuration = ClientSession.Configuration()
        configuration.proxy = HTTPProxy(host: "127.0.0.1", port: proxyPort)
        let error = await #expect(throws: HTTP2Error.self) {
            _ = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        }
        #expect(error?.code == .proxyConnectFailed)
        #expect(error?.detail?.hasPrefix("403") == true, "\(error?.detail ?? "")")
        await server.close()
    }

    @Test func aProxyThatNeverAnswersFailsWithConnectTimeoutWithinTheConfiguredTimeout() async throws {
        let listener = try await SilentListener.start()
        var configuration = ClientSession.Configuration()
        configuration.proxy = HTTPProxy(host: "127.0.0.1", port: listener.port)
        configuration.connectTimeout = .milliseconds(500)
        let started = ContinuousClock.now
        // The target's port is never connected to: only the (silent) proxy is.
        let error = await #expect(throws: HTTP2Error.self) {
            _ = try await ClientSession.connect(to: "https://127.0.0.1:9", configuration: configuration)
        }
        let elapsed = ContinuousClock.now - started
        #expect(error == .connectTimeout)
        #expect(elapsed >= .milliseconds(450) && elapsed < .seconds(30), "took \(elapsed)")  // an upper bound only against a hang
        await listener.stop()
    }

    @Test func theConnectTimeoutCoversTheTunnelAndTheTLSHandshakeTogether() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let silentServer = try await SilentListener.start()
        let (proxy, proxyPort) = try await Peers.tinyproxy(directory: directory, connectPorts: [silentServer.port])
        defer { proxy.stop() }
        var configuration = ClientSession.Configuration()
        configuration.proxy = HTTPProxy(host: "127.0.0.1", port: proxyPort)
        configuration.tls = try await tlsConfiguration()
        configuration.connectTimeout = .milliseconds(800)
        let started = ContinuousClock.now
        // The tunnel opens; the server behind it never answers the ClientHello.
        let error = await #expect(throws: TLSError.self) {
            _ = try await ClientSession.connect(host: "127.0.0.1", port: silentServer.port, configuration: configuration)
        }
        let elapsed = ContinuousClock.now - started
        #expect(error?.code == .handshakeTimeout)
        // The handshake was given what was left of the 800 ms after the tunnel, not 800 ms of its own.
        #expect(error?.timeout.map { $0 < .milliseconds(800) } == true, "the handshake was given \(error?.timeout ?? .zero)")
        // Wall-clock bounds leave room for a loaded machine (the parallel suite on 2 cores).
        #expect(elapsed >= .milliseconds(700) && elapsed < .seconds(10), "took \(elapsed)")
        await silentServer.stop()
    }

    @Test func aProxyThatRefusesTheTCPConnectionFailsTheConnectWithTheSocketsError() async throws {
        let port = try await Peers.freePort()
        var configuration = ClientSession.Configuration()
        configuration.proxy = HTTPProxy(host: "127.0.0.1", port: port)
        await #expect(throws: (any Error).self) {
            _ = try await ClientSession.connect(to: "http://127.0.0.1:9", configuration: configuration)
        }
    }

    // MARK: - The tunnel handler on its own (EmbeddedChannel)

    @Test func theConnectRequestNamesTheTargetBracketsIPv6AndCarriesTheAuthorization() {
        #expect(ProxyTunnel(host: "example.org", port: 443).requestHead == "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
        let v6 = ProxyTunnel(host: "::1", port: 8443, authorization: HTTPProxy.Credentials(username: "user", password: "pass").authorization)
        #expect(v6.requestHead == "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n")
    }

    @Test func afterA200TheNextStagesGetTheBytesThatFollowedTheHeadAndTheHandlerIsGone() throws {
        let channel = EmbeddedChannel()
        let collected = Collect()
        let promise = channel.eventLoop.makePromise(of: Int.self)
        let tunnel = ProxyTunnel(host: "example.org", port: 443)
        try channel.pipeline.syncOperations.addHandler(
            ProxyTunnelHandler(tunnel: tunnel, deadline: .now() + .seconds(10), promise: promise) { context, _ in
                try context.pipeline.syncOperations.addHandler(collected)
                return 7
            })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let request = try channel.readOutbound(as: ByteBuffer.self)
        #expect(request.map { String(buffer: $0) } == tunnel.requestHead)
        // The head arrives in two pieces, with the first bytes of the tunnel after it.
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 Connection est"))
        #expect(collected.received.isEmpty)
        try channel.writeInbound(ByteBuffer(string: "ablished\r\nVia: test\r\n\r\nafter"))
        #expect(try promise.futureResult.wait() == 7)
        #expect(collected.received == ["after"])
        try channel.writeInbound(ByteBuffer(string: "more"))
        #expect(collected.received == ["after", "more"])
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: ProxyTunnelHandler<Int>.self) }
        _ = try? channel.finish(acceptAlreadyClosed: true)  // also when the handler closed it: the loop is drained, nothing leaks
    }

    @Test func aNon2xxStatusALongHeadOrAnEarlyCloseFailsTheTunnel() throws {
        func run(_ inbound: [String], close: Bool = false) throws -> HTTP2Error? {
            let channel = EmbeddedChannel()
            let promise = channel.eventLoop.makePromise(of: Int.self)
            try channel.pipeline.syncOperations.addHandler(
                ProxyTunnelHandler(tunnel: ProxyTunnel(host: "h", port: 1), deadline: .now() + .seconds(10), promise: promise) { _, _ in 1 })
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            for text in inbound { try? channel.writeInbound(ByteBuffer(string: text)) }
            if close { channel.pipeline.fireChannelInactive() }
            var failure: HTTP2Error?
            do { _ = try promise.futureResult.wait() } catch { failure = error as? HTTP2Error }
            _ = try? channel.finish(acceptAlreadyClosed: true)  // also when the handler closed it: the loop is drained, nothing leaks
            return failure
        }
        #expect(try run(["HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n"])
            == .proxyConnectFailed("407 Proxy Authentication Required"))
        #expect(try run(["HTTP/1.1 502 Bad Gateway\n\n"]) == .proxyConnectFailed("502 Bad Gateway"))
        #expect(try run(["SSH-2.0-OpenSSH\r\n\r\n"])?.code == .proxyConnectFailed)
        #expect(try run(["HTTP/1.1 200 OK\r\n" + String(repeating: "X-Pad: 0123456789abcdef\r\n", count: 1000)])?.code == .proxyConnectFailed)
        #expect(try run(["HTTP/1.1 200 OK\r\n"], close: true)?.code == .proxyConnectFailed)
    }

    @Test func afterThe200TheTLSStageSendsItsClientHelloWithTheTargetAsSNI() async throws {
        let channel = EmbeddedChannel()
        let setup = ChannelSetup(
            tls: try TLSContext(configuration: try await tlsConfiguration()),
            role: .client,
            serverHostname: "target.example",
            handshakeTimeout: .seconds(10),
            proxyTunnel: ProxyTunnel(host: "target.example", port: 443),
            makeHTTP2Handler: { try ConnectionHandler(role: .client, configuration: ClientSession.Configuration().connectionConfiguration, delegate: nil) }
        )
        let negotiation = try setup.configure(channel)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        let request = try channel.readOutbound(as: ByteBuffer.self)
        #expect(request.map { String(buffer: $0) } == "CONNECT target.example:443 HTTP/1.1\r\nHost: target.example:443\r\n\r\n")
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing but CONNECT before the proxy answers")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n"))
        let hello = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(hello.getInteger(at: hello.readerIndex, as: UInt8.self) == 0x16, "a TLS handshake record")
        #expect(Array(hello.readableBytesView).firstRange(of: Array("target.example".utf8)) != nil, "SNI names the target")
        _ = try? channel.finish(acceptAlreadyClosed: true)  // also when the handler closed it: the loop is drained, nothing leaks
        await #expect(throws: (any Error).self) { _ = try await negotiation.get() }
    }

    // MARK: - HTTPProxy

    @Test func aProxyURLGivesHostPortAndBasicCredentialsAndOnlyHTTPIsAccepted() throws {
        let proxy = try HTTPProxy(url: "http://user:pa%3Ass@127.0.0.1:3128")
        #expect(proxy == HTTPProxy(host: "127.0.0.1", port: 3128, credentials: .init(username: "user", password: "pa:ss")))
        #expect(proxy.credentials?.authorization == "Basic " + Data("user:pa:ss".utf8).base64EncodedString())
        #expect(try HTTPProxy(url: "http://proxy.internal") == HTTPProxy(host: "proxy.internal", port: 80))
        #expect(try HTTPProxy(url: "http://[::1]:8080/") == HTTPProxy(host: "::1", port: 8080))
        #expect(HTTPProxy.Credentials(username: "Aladdin", password: "open sesame").authorization == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        for bad in ["https://127.0.0.1:3128", "socks5://127.0.0.1:1080", "127.0.0.1:3128", "http://", ""] {
            #expect(throws: HTTP2Error.self, "\(bad)") { try HTTPProxy(url: bad) }
            #expect((try? HTTPProxy(url: bad)) == nil)
        }
        let error = #expect(throws: HTTP2Error.self) { try HTTPProxy(url: "https://127.0.0.1:3128") }
        #expect(error?.code == .invalidURL)
    }

    @Test func theEnvironmentChoosesTheProxyBySchemeAndIgnoresUppercaseHTTPProxy() {
        let proxy = HTTPProxy(host: "127.0.0.1", port: 3128)
        let other = HTTPProxy(host: "127.0.0.1", port: 8080)
        #expect(HTTPProxy.fromEnvironment(for: "https", host: "example.org", environment: ["https_proxy": "http://127.0.0.1:3128"]) == proxy)
        #expect(HTTPProxy.fromEnvironment(for: "https", host: "example.org", environment: ["HTTPS_PROXY": "http://127.0.0.1:3128"]) == proxy)
        #expect(HTTPProxy.fromEnvironment(
            for: "https", host: "example.org",
            environment: ["https_proxy": "http://127.0.0.1:3128", "HTTPS_PROXY": "http://127.0.0.1:8080"]) == proxy)
        #expect(HTTPProxy.fromEnvironment(for: "http", host: "example.org", environment: ["http_proxy": "127.0.0.1:8080"]) == other)
        #expect(HTTPProxy.fromEnvironment(for: "http", host: "example.org", environment: ["HTTP_PROXY": "http://127.0.0.1:8080"]) == nil,
                "uppercase HTTP_PROXY is ignored (httpoxy)")
        #expect(HTTPProxy.fromEnvironment(for: "http", host: "example.org", environment: ["https_proxy": "http://127.0.0.1:3128"]) == nil)
        #expect(HTTPProxy.fromEnvironment(for: "https", host: "example.org", environment: ["http_proxy": "http://127.0.0.1:3128"]) == nil)
        #expect(HTTPProxy.fromEnvironment(for: "HTTPS", host: "example.org", environment: ["https_proxy": "http://127.0.0.1:3128"]) == proxy)
        #expect(HTTPProxy.fromEnvironment(for: "ftp", host: "example.org", environment: ["https_proxy": "http://127.0.0.1:3128"]) == nil)
        #expect(HTTPProxy.fromEnvironment(for: "https", host: "example.org", environment: ["https_proxy": ""]) == nil)
        #expect(HTTPProxy.fromEnvironment(for: "https", host: "example.org", environment: ["https_proxy": "https://127.0.0.1:3128"]) == nil,
                "an https:// proxy is not supported")
        #expect(HTTPProxy.fromEnvironment(for: "https", host: "example.org", environment: [:]) == nil)
        #expect(HTTPProxy.fromEnvironment(for: "https", host: "example.org", environment: ["https_proxy": "http://u:p@127.0.0.1:3128"])?.credentials
            == .init(username: "u", password: "p"))
    }

    @Test func noProxyMatchesNamesDomainSuffixesExactAddressesPortsAndTheWildcard() {
        func direct(_ noProxy: String, _ host: String, scheme: String = "https", key: String = "no_proxy") -> Bool {
            HTTPProxy.fromEnvironment(for: scheme, host: host, environment: ["https_proxy": "http://127.0.0.1:3128", "http_proxy": "http://127.0.0.1:3128", key: noProxy]) == nil
        }
        #expect(direct("*", "example.org"))
        #expect(direct("example.org", "example.org"))
        #expect(direct("example.org", "api.example.org"))
        #expect(direct(".example.org", "api.example.org"))
        #expect(direct(".example.org", "example.org"))
        #expect(direct("EXAMPLE.org", "Api.Example.ORG"))
        #expect(!direct("example.org", "badexample.org"))
        #expect(!direct("example.org", "example.org.evil"))
        #expect(direct("localhost, .internal ,example.org", "db.internal"))
        #expect(direct("foo,,localhost", "localhost"))
        #expect(direct("127.0.0.1", "127.0.0.1"))
        #expect(!direct("0.0.1", "127.0.0.1"), "an address matches only exactly")
        #expect(!direct("127.0.0.1", "127.0.0.10"))
        #expect(direct("::1", "::1"))
        #expect(direct("[::1]", "[::1]:8443"))
        #expect(direct("example.org:443", "example.org"))
        #expect(direct("example.org:8443", "example.org:8443"))
        #expect(!direct("example.org:8443", "example.org"))
        #expect(!direct("example.org:443", "example.org", scheme: "http"))
        #expect(direct("example.org:80", "example.org", scheme: "http"))
        #expect(direct("example.org", "example.org", key: "NO_PROXY"))
        #expect(!direct("", "example.org"))
        #expect(!direct("other.org", "example.org"))
        // no_proxy wins over NO_PROXY.
        #expect(HTTPProxy.fromEnvironment(
            for: "https", host: "example.org",
            environment: ["https_proxy": "http://127.0.0.1:3128", "no_proxy": "other.org", "NO_PROXY": "example.org"]) != nil)
    }
}

/// Collects the buffers that reach it, as strings.
private final class Collect: ChannelInboundHandler, @unchecked Sendable {  // used on the EmbeddedChannel's one thread
    typealias InboundIn = ByteBuffer
    var received: [String] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.append(String(buffer: unwrapInboundIn(data)))
    }
}
