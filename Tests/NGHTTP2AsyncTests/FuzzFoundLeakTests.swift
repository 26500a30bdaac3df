import Testing
import NIOCore
import NIOEmbedded
import NGHTTP2
@testable import NGHTTP2Async

/// Found by the FuzzServerConnection fuzz target (LeakSanitizer): a server connection that ends while a response
/// is still waiting to be sent must not outlive its channel. The response's provider (the stream's context) refers
/// back to the connection, which owns the session that keeps the provider: a cycle, unless something breaks it.
@Suite struct FuzzFoundLeakTests {
    /// Feeds `bytes` to a server connection on an embedded channel as one read burst, closes the channel, and returns
    /// a weak reference to the connection's handler once everything else let go of it.
    func serve(_ bytes: [UInt8]) throws -> () -> ConnectionHandler? {
        weak var weakHandler: ConnectionHandler?
        try {
            let handler = try ConnectionHandler(
                role: .server(handler: { _ in ServerSession.Response(body: .text("hello\n")) }),
                configuration: ServerSession.Configuration().connectionConfiguration,
                delegate: nil
            )
            weakHandler = handler
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
            channel.pipeline.fireChannelReadComplete()
            channel.embeddedEventLoop.run()
            while try channel.readOutbound(as: ByteBuffer.self) != nil {}
            _ = try channel.finish(acceptAlreadyClosed: true)
            channel.embeddedEventLoop.run()
        }()
        return { weakHandler }
    }

    @Test func aConnectionErrorRightAfterARequestWasAnsweredDoesNotLeakTheConnection() throws {
        // leak-44a4729b (minimized): a GET answered inside the read, then, in the same read, DATA on an idle stream.
        // libnghttp2 terminates the session with stream 1 still open. Fixed in Session: a session that is over lets
        // go of its providers.
        let settings: [UInt8] = [0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x3, 0, 0, 0, 100]
        let dataOnAnIdleStream: [UInt8] = [0, 0, 1, 0x0, 0, 0x04, 0, 0x01, 0]
        let handler = try serve(clientPreface + settings + rawGet(streamID: 1) + dataOnAnIdleStream)
        #expect(handler() == nil)
    }

    @Test func aConnectionClosedWhileAResponseWaitsForTheWindowDoesNotLeakTheConnection() throws {
        // SETTINGS_INITIAL_WINDOW_SIZE = 0, then a GET: the response body waits for a WINDOW_UPDATE that never comes
        // before the socket closes. libnghttp2 makes no callbacks when a session goes, so stream 1's provider stays
        // in the session, holding the connection. ConnectionHandler.connectionEnded() releases them.
        let noWindow: [UInt8] = [0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x4, 0, 0, 0, 0]
        let handler = try serve(clientPreface + noWindow + rawGet(streamID: 1))
        #expect(handler() == nil)
    }
}
