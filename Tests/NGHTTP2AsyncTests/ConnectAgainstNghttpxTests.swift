import Testing
import Foundation
import NIOCore
import HTTPTypes
@testable import NGHTTP2Async

/// CONNECT over HTTP/2 (RFC 9113 §8.5) with a real peer: nghttpx (nghttp2's proxy) in HTTP/2 proxy mode, on
/// 127.0.0.1. curl 7.88 cannot send CONNECT over HTTP/2 (its `--proxy-http2` came in 8.1), so nghttpx turns curl's
/// HTTP/1.1 CONNECT into an HTTP/2 one for our server, and takes our client's HTTP/2 CONNECT to an HTTP/1.1 proxy.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ConnectAgainstNghttpxTests {
    /// client ─h2 CONNECT─▶ nghttpx ─HTTP/1.1 CONNECT─▶ tinyproxy ─TCP─▶ echo server
    @Test func ourClientsTunnelThroughNghttpxAndAnHTTP1ProxyReachesAnEchoServer() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let echo = try await EchoServer.start()
        let (tinyproxy, proxyPort) = try await Peers.tinyproxy(directory: directory, connectPorts: [echo.port])
        defer { tinyproxy.stop() }
        let (nghttpx, port) = try await Peers.nghttpxProxy(directory: directory, backend: "127.0.0.1,\(proxyPort)")
        defer { nghttpx.stop() }

        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)")
        let tunnel = try await client.openTunnel(to: "127.0.0.1:\(echo.port)")
        #expect(tunnel.response.status == .ok)
        try await tunnel.outbound.write("hello through nghttpx")
        #expect(try await tunnel.inbound.readString(count: 21) == "hello through nghttpx")
        let large = payload(200_000, seed: 3)
        try await tunnel.outbound.write(large)
        #expect(try await tunnel.inbound.readBytes(count: large.count) == large)
        tunnel.cancel()
        await client.close()
        try await echo.close()
    }

    /// curl ─HTTP/1.1 CONNECT─▶ nghttpx ─h2 CONNECT─▶ our server (TunnelRelay) ─TCP─▶ nghttpd, spoken to by curl
    /// through the tunnel.
    @Test func curlThroughNghttpxReachesNghttpdThroughOurServersTunnel() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("through our tunnel\n".utf8).write(to: URL(fileURLWithPath: directory + "/file"))
        let (nghttpd, targetPort) = try await Peers.nghttpd(directory: directory)
        defer { nghttpd.stop() }
        let seen = LockedState<[String]>([])
        let server = try await ServerSession.bind(port: 0) { request in
            seen.withLock { $0.append("\(request.method) \(request.authority ?? "-") \(request.scheme ?? "-") \(request.head.path ?? "-")") }
            return try await TunnelRelay.answer(request)
        }
        let (nghttpx, port) = try await Peers.nghttpxProxy(directory: directory, backend: "127.0.0.1,\(server.port);;proto=h2")
        defer { nghttpx.stop() }

        let result = try await Peers.run("curl", [
            "-sS", "--proxytunnel", "-x", "http://127.0.0.1:\(port)", "--http2-prior-knowledge",
            "http://127.0.0.1:\(targetPort)/file", "-w", "%{http_code} %{http_version}",
        ])
        #expect(result.status == 0, "curl: \(result.stderr)")
        #expect(result.text == "through our tunnel\n200 2")
        #expect(seen.withLock { $0 } == ["CONNECT 127.0.0.1:\(targetPort) - -"])
        await server.close()
    }
}

extension Peers {
    /// nghttpx in HTTP/2 proxy mode (`--http2-proxy`): a forward proxy taking HTTP/1.1 and cleartext HTTP/2 (prior
    /// knowledge) on a free port of 127.0.0.1, forwarding to `backend` (nghttpx's `-b` syntax, e.g.
    /// `127.0.0.1,PORT;;proto=h2`). Its system config is not read.
    static func nghttpxProxy(directory: String, backend: String) async throws -> (Running, Int) {
        let port = try await freePort()
        let config = "\(directory)/nghttpx-\(port).conf"
        FileManager.default.createFile(atPath: config, contents: Data())
        let running = try await start(
            "nghttpx",
            [
                "--conf=\(config)", "--http2-proxy", "--frontend=127.0.0.1,\(port);no-tls", "--backend=\(backend)",
                "--workers=1", "--log-level=WARN", "--accesslog-file=/dev/null", "--errorlog-file=/dev/stderr",
            ],
            waitForPort: port
        )
        return (running, port)
    }
}
