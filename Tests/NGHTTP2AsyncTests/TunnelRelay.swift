import Testing
import NIOCore
import NIOPosix
import HTTPTypes
@testable import NGHTTP2Async

/// A server handler that opens the tunnel a CONNECT asks for (to 127.0.0.1 only) and relays bytes both ways.
enum TunnelRelay {
    static func answer(_ request: ServerSession.Request) async throws -> ServerSession.Response {
        guard request.isConnectTunnel, let authority = request.authority, let colon = authority.lastIndex(of: ":"),
            let port = Int(authority[authority.index(after: colon)...])
        else { return ServerSession.Response(status: .badRequest) }
        guard authority[..<colon] == "127.0.0.1" else { return ServerSession.Response(status: .forbidden) }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
        return ServerSession.Response(status: .ok, body: .writer { writer in
            try await channel.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await chunk in request.body { try await outbound.write(chunk) }
                        outbound.finish()  // the client's END_STREAM becomes a TCP half-close
                    }
                    for try await chunk in inbound { try await writer.write(chunk) }
                    try await group.waitForAll()
                }
            }
        })
    }
}

extension StreamReader {
    /// Reads exactly `count` bytes (failing if the body ends first).
    func readBytes(count: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < count {
            guard var chunk = try await read(upTo: count - bytes.count) else {
                Issue.record("the body ended after \(bytes.count) of \(count) bytes")
                return bytes
            }
            bytes += chunk.readBytes(length: chunk.readableBytes) ?? []
        }
        return bytes
    }

    func readString(count: Int) async throws -> String {
        String(decoding: try await readBytes(count: count), as: UTF8.self)
    }
}
