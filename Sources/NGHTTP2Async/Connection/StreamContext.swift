import NGHTTP2
import HTTPTypes

/// What a connection keeps for one open stream. Lives on the connection's event loop.
final class StreamContext {
    let id: Int32
    /// The received body (a request's on a server, a response's on a client).
    let inbound: StreamReader.Storage
    /// The body this side is sending, if it is still sending.
    var outbound: OutboundBody?
    /// Whether the peer reset the stream (RST_STREAM received).
    var resetByPeer = false
    /// Whether the peer's final field block arrived (the request head on a server, the final response on a client).
    var headReceived = false

    // Client
    /// Resumed exactly once (set to `nil` first); unsafe rather than checked: no allocation per request.
    var response: UnsafeContinuation<ReceivedResponse, any Error>?
    var informational: [HTTPResponse] = []

    // Server
    var handlerTask: Task<Void, Never>?
    var responseSubmitted = false

    init(id: Int32, inbound: StreamReader.Storage) {
        self.id = id
        self.inbound = inbound
    }
}
