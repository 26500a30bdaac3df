import Testing
import Foundation
import NIOCore
import NIOPosix
import HTTPTypes
import NGHTTP2
@testable import NGHTTP2Async

/// CONNECT over HTTP/2 (RFC 9113 §8.5): our client opens a tunnel through our server, whose handler relays it to a TCP
/// echo server on 127.0.0.1.
@Suite(.timeLimit(.minutes(2)))
struct ConnectTests {
    @Test func aTunnelThroughOurServerCarriesBytesBothWaysBeforeEitherSideEnds() async throws {
        let echo = try await EchoServer.start()
        let server = try await ServerSession.bind(port: 0) { request in try await TunnelRelay.answer(request) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")

        let tunnel = try await client.openTunnel(to: "127.0.0.1:\(echo.port)")
        #expect(tunnel.response.status == .ok)
        // Each echo comes back while the request's body is still open: the server answered and relays before it ends.
        try await tunnel.outbound.write("hello")
        #expect(try await tunnel.inbound.readString(count: 5) == "hello")
        let large = payload(300_000)
        try await tunnel.outbound.write(large)
        #expect(try await tunnel.inbound.readBytes(count: large.count) == large)
        // END_STREAM from the client: the relay half-closes the TCP connection, the echo server closes it, and the
        // server ends the tunnel's stream.
        try await tunnel.outbound.finish()
        #expect(try await tunnel.inbound.read() == nil)

        await client.close()
        await server.close()
        try await echo.close()
    }

    @Test func aConnectCarriesOnlyMethodAndAuthorityAndTheHandlerSeesATunnelRequest() async throws {
        let seen = LockedState<String?>(nil)
        let server = try await ServerSession.bind(port: 0) { request in
            seen.withLock {
                $0 = "\(request.method) \(request.isConnectTunnel) \(request.authority ?? "-") \(request.scheme ?? "-") \(request.head.path ?? "-")"
            }
            return ServerSession.Response(status: .ok, body: .stream(request.body))  // an echo, without a far end
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let tunnel = try await client.openTunnel(to: "example.org:443")
        try await tunnel.outbound.write("ping")
        #expect(try await tunnel.inbound.readString(count: 4) == "ping")
        try await tunnel.outbound.finish()
        #expect(try await tunnel.inbound.read() == nil)
        #expect(seen.withLock { $0 } == "CONNECT true example.org:443 - -")

        // The same through execute: a plain CONNECT gets no :scheme from the session.
        let response = try await client.execute(HTTPRequest(method: .connect, scheme: nil, authority: "example.org:80", path: nil))
        #expect(response.status == .ok)
        #expect(seen.withLock { $0 } == "CONNECT true example.org:80 - -")
        await client.close()
        await server.close()
    }

    @Test func aConnectTheServerAnswersWithoutA2xxStatusOpensNoTunnel() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response(status: .forbidden) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        await #expect(throws: HTTP2Error.connectRefused("403")) {
            try await client.openTunnel(to: "127.0.0.1:9")
        }
        for authority in ["127.0.0.1", ":80", "host:http"] {
            let error = await #expect(throws: HTTP2Error.self) { try await client.openTunnel(to: authority) }
            #expect(error?.code == .invalidArgument)
        }
        // The connection goes on.
        #expect(try await client.get("/").status == .forbidden)
        await client.close()
        await server.close()
    }

    @Test func cancellingATunnelResetsItsStreamAndTheHandlerSeesItsBodyFail() async throws {
        let (handlerSaw, saw) = AsyncStream.makeStream(of: String.self)
        let server = try await ServerSession.bind(port: 0) { request in
            ServerSession.Response(status: .ok, body: .writer { writer in
                try await writer.write("ready")
                do {
                    for try await _ in request.body {}
                    saw.yield("end")
                } catch let error as HTTP2Error {
                    saw.yield("\(error.code) \(error.errorCode.map { "\($0)" } ?? "") byPeer=\(error.byPeer)")
                    throw error
                }
            })
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let tunnel = try await client.openTunnel(to: "127.0.0.1:1")
        #expect(try await tunnel.inbound.readString(count: 5) == "ready")
        tunnel.cancel()
        var seen = handlerSaw.makeAsyncIterator()
        #expect(await seen.next() == "streamReset CANCEL byPeer=true")
        // The reset reached the server, so this side had made it: both directions are over.
        await #expect(throws: CancellationError.self) { try await tunnel.outbound.write("late") }
        await #expect(throws: CancellationError.self) { try await tunnel.inbound.read() }
        await client.close()
        await server.close()
    }

    /// RFC 9113 §8.5: "A proxy treats any error in the TCP connection ... as a stream error of type CONNECT_ERROR".
    /// The relay's TCP connection is reset by the far end (SO_LINGER 0): the client sees RST_STREAM CONNECT_ERROR.
    @Test func aRelayWhoseTCPConnectionIsResetResetsTheTunnelWithConnectError() async throws {
        let resetter = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ResetOnRead()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = try await ServerSession.bind(port: 0) { request in try await TunnelRelay.answer(request) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let tunnel = try await client.openTunnel(to: "127.0.0.1:\(resetter.localAddress!.port!)")
        try await tunnel.outbound.write("reset me")
        let error = await #expect(throws: HTTP2Error.self) { while try await tunnel.inbound.read() != nil {} }
        #expect(error?.code == .streamReset && error?.errorCode == .connectError && error?.byPeer == true)
        await client.close()
        await server.close()
        try await resetter.close()
    }
}

/// Resets its TCP connection (RST, through SO_LINGER 0) when the first bytes arrive.
private final class ResetOnRead: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let channel = context.channel
        guard let provider = channel as? any SocketOptionProvider else { return channel.close(promise: nil) }
        provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }
}
