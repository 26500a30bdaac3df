import Testing
import Foundation
import NIOCore
import HTTPTypes
@testable import NGHTTP2Async

/// Our server's extended CONNECT (RFC 8441) with a real client: the Python h2 library (which hypercorn brings into
/// `.build/venv`), driving a socket to 127.0.0.1. It waits for our SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, opens
/// `:protocol websocket`, and sends one masked WebSocket text frame that our handler answers.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ServerExtendedConnectAgainstPythonH2Tests {
    @Test func aPythonH2ClientOpensAWebSocketOnOurServerAndTheHandlerEchoesItsFrame() async throws {
        let python = try Peers.venv("python")
        var configuration = ServerSession.Configuration()
        configuration.enableConnectProtocol = true
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { request in
            guard request.extendedConnectProtocol == "websocket", request.headers[HTTPField.Name("sec-websocket-version")!] == "13" else {
                return ServerSession.Response(status: .badRequest)
            }
            let path = request.path
            return ServerSession.Response(status: .ok, body: .writer { writer in
                var frames = WebSocketReader(request.body)
                while let frame = try await frames.next() {
                    try await writer.write(WebSocketFrame.text("\(frame.text) on \(path)").encoded(mask: nil))
                }
            })
        }
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.client.write(toFile: directory + "/client.py", atomically: true, encoding: .utf8)
        let result = try await Peers.run(python, [directory + "/client.py", "\(server.port)"])
        #expect(result.status == 0, "python: \(result.stderr)")
        #expect(result.text == "enable_connect_protocol 1\nstatus 200\nframe 0x81 hello from h2 on /chat\nended\n")
        await server.close()
    }

    /// The client: h2 (sans-I/O) over a blocking socket.
    static let client = """
        import socket, sys
        import h2.config, h2.connection, h2.events

        port = int(sys.argv[1])
        sock = socket.create_connection(("127.0.0.1", port))
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        mask = bytes([0x11, 0x22, 0x33, 0x44])
        payload = b"hello from h2"
        frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        opened = False
        answered = False
        data = b""
        ended = False
        while not ended:
            chunk = sock.recv(65536)
            if not chunk:
                break
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.RemoteSettingsChanged) and not opened:
                    opened = True
                    print("enable_connect_protocol", conn.remote_settings.enable_connect_protocol)
                    conn.send_headers(1, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                          (":path", "/chat"), (":authority", "127.0.0.1:%d" % port),
                                          ("sec-websocket-version", "13")])
                elif isinstance(event, h2.events.ResponseReceived):
                    print("status", dict(event.headers)[":status"])
                    conn.send_data(1, frame)
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    if not answered and len(data) >= 2 and len(data) >= 2 + (data[1] & 0x7f):
                        answered = True
                        print("frame", hex(data[0]), data[2:2 + (data[1] & 0x7f)].decode())
                        conn.end_stream(1)
                elif isinstance(event, h2.events.StreamEnded):
                    print("ended")
                    ended = True
            sock.sendall(conn.data_to_send())
        conn.close_connection()
        sock.sendall(conn.data_to_send())
        sock.close()

        """
}
