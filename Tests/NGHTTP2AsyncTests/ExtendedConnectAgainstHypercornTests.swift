import Testing
import Foundation
import NIOCore
import HTTPTypes
@testable import NGHTTP2Async

/// Extended CONNECT (RFC 8441) against a real peer: hypercorn (PyPI, in the virtualenv `scripts/bootstrap` makes
/// at `.build/venv`) serving a small ASGI app with a WebSocket echo route over cleartext HTTP/2 (prior knowledge) on
/// 127.0.0.1. Our client opens `:protocol websocket` (RFC 8441 §5) and exchanges hand-encoded WebSocket frames.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ExtendedConnectAgainstHypercornTests {
    @Test func ourClientOpensAWebSocketOverHTTP2OnHypercornAndExchangesATextFrame() async throws {
        let (hypercorn, port, directory) = try await Self.startHypercorn()
        defer {
            hypercorn.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)")
        let tunnel = try await client.openTunnel(
            protocol: "websocket",
            path: "/chat",
            headers: [HTTPField.Name("sec-websocket-version")!: "13"]
        )
        #expect(tunnel.response.status == .ok)  // RFC 8441 §5: 200, not 101

        try await tunnel.outbound.write(WebSocketFrame.text("hello").encoded(mask: [0x37, 0xfa, 0x21, 0x3d]))
        var received = WebSocketReader(tunnel.inbound)
        let echo = try await received.next()
        #expect(echo == .text("echo hello over HTTP/2"))

        // The closing handshake (RFC 6455 §5.5.1): hypercorn answers Close with Close, then ends the stream.
        try await tunnel.outbound.write(WebSocketFrame.close(code: 1000).encoded(mask: [1, 2, 3, 4]))
        let close = try await received.next()
        #expect(close?.opcode == 0x8)
        try await tunnel.outbound.finish()
        await client.close()
    }

    @Test func hypercornAdvertisesEnableConnectProtocolInItsSettings() async throws {
        let (hypercorn, port, directory) = try await Self.startHypercorn()
        defer {
            hypercorn.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)")
        _ = try await client.ping()  // the server's SETTINGS come before its PING ACK
        #expect(try await client.connection.allowsExtendedConnect() == true)
        #expect(try await client.get("/").text() == "hello HTTP/2")
        await client.close()
    }

    /// The ASGI app: a WebSocket route that echoes text frames, and a plain HTTP route.
    static let app = """
        async def app(scope, receive, send):
            if scope["type"] == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.accept"})
                while True:
                    message = await receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    text = "echo " + str(message.get("text")) + " over HTTP/" + scope["http_version"]
                    await send({"type": "websocket.send", "text": text})
            elif scope["type"] == "http":
                await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": ("hello HTTP/" + scope["http_version"]).encode()})

        """

    /// hypercorn from `.build/venv`, serving ``app`` on a free port of 127.0.0.1, in its own process (`--workers 0`:
    /// with worker processes, killing hypercorn would leave them running).
    static func startHypercorn() async throws -> (Peers.Running, Int, String) {
        let hypercorn = try Peers.venv("hypercorn")
        let directory = try Peers.temporaryDirectory()
        try app.write(toFile: directory + "/wsapp.py", atomically: true, encoding: .utf8)
        let port = try await Peers.freePort()
        let running = try await Peers.start(
            hypercorn,
            ["--bind", "127.0.0.1:\(port)", "--workers", "0", directory + "/wsapp.py:app"],
            waitForPort: port
        )
        return (running, port, directory)
    }
}
