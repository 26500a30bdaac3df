import Testing
import Foundation
import NIOCore
import HTTPTypes
@testable import NGHTTP2Async

/// Our server's RFC 9218 scheduling seen by a real client: the Python h2 library (from `.build/venv`) opens a 512 KiB
/// response with `priority: u=7`, then one with `u=0`, crediting no window until both heads are in (its connection
/// window stays at 64 KiB), then reads both. It prints the streams in the order they ended.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ServerPriorityAgainstPythonH2Tests {
    @Test func aPythonH2ClientGetsTheUrgentResponseFirstFromOurServer() async throws {
        let python = try Peers.venv("python")
        let server = try await ServerSession.bind(port: 0) { request in
            ServerSession.Response(body: .bytes(ByteBuffer(repeating: 2, count: 512 << 10)))
        }
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.client.write(toFile: directory + "/client.py", atomically: true, encoding: .utf8)
        for (first, second, expected) in [("u=7", "u=0", "ended 3 524288\nended 1 524288\n"), ("u=3", "u=3", "ended 1 524288\nended 3 524288\n")] {
            let result = try await Peers.run(python, [directory + "/client.py", "\(server.port)", first, second])
            #expect(result.status == 0, "python: \(result.stderr)")
            #expect(result.text == expected, "\(first) then \(second)")
        }
        await server.close()
    }

    static let client = """
        import socket, sys
        import h2.config, h2.connection, h2.events

        port, first, second = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        sock = socket.create_connection(("127.0.0.1", port))
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        def request(stream_id, priority):
            conn.send_headers(stream_id, [(":method", "GET"), (":scheme", "http"), (":path", "/large"),
                                          (":authority", "127.0.0.1:%d" % port), ("priority", priority)], end_stream=True)
        request(1, first)
        sock.sendall(conn.data_to_send())
        heads, received, unacked, ended = set(), {1: 0, 3: 0}, [], []
        while len(ended) < 2:
            chunk = sock.recv(65536)
            if not chunk:
                break
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    heads.add(event.stream_id)
                    if event.stream_id == 1:
                        request(3, second)
                elif isinstance(event, h2.events.DataReceived):
                    received[event.stream_id] += len(event.data)
                    unacked.append((event.flow_controlled_length, event.stream_id))
                elif isinstance(event, h2.events.StreamEnded):
                    ended.append(event.stream_id)
                    print("ended", event.stream_id, received[event.stream_id])
            if len(heads) == 2:  # both heads are in: from now on, read (credit) everything
                for length, stream_id in unacked:
                    conn.acknowledge_received_data(length, stream_id)
                unacked = []
            sock.sendall(conn.data_to_send())
        conn.close_connection()
        sock.sendall(conn.data_to_send())
        sock.close()

        """
}
