import NIOHTTP1
import NGHTTP2

/// A client's offer to continue a cleartext HTTP/1.1 connection as HTTP/2 (h2c, RFC 7540 §3.2): the headers one
/// request carries, and the HTTP/2 handler that takes the connection over when the server answers
/// `101 Switching Protocols`.
///
/// The anchor is NIO's `NIOHTTPClientUpgradeHandler`: the switch waits for the end of the 101, the HTTP/1.1 encoder
/// goes first and the decoder last (it hands on what the server sent after the 101, its SETTINGS). Unlike it, the
/// offer rides on a request of the pool's choosing (the first one without a body), and that request's response
/// continues on stream 1 into the same waiting call.
struct H2CUpgradeOffer: Sendable {
    /// The client's SETTINGS payload, sent base64url-encoded as `HTTP2-Settings` (RFC 7540 §3.2.1). libnghttp2 sends
    /// the same values as the client's first SETTINGS frame once upgraded.
    let settingsPayload: [UInt8]
    /// Makes the handler that speaks HTTP/2 on the connection, answering the upgraded request on stream 1.
    let makeHTTP2Handler: @Sendable (H2CUpgradedRequest) throws -> ConnectionHandler
    /// `HTTP2-Settings`: the payload in base64url without padding ("token68", RFC 7540 §3.2.1).
    let headerValue: String

    init(settings: [Setting], makeHTTP2Handler: @escaping @Sendable (H2CUpgradedRequest) throws -> ConnectionHandler) throws {
        self.settingsPayload = try Session.settingsPayload(settings)
        self.makeHTTP2Handler = makeHTTP2Handler
        self.headerValue = Self.base64URL(settingsPayload)
    }

    /// Adds `Upgrade: h2c`, `HTTP2-Settings` and `Connection: Upgrade, HTTP2-Settings` to `head`; `false` (and
    /// `head` unchanged) when the request cannot carry the offer: it says `Connection` itself (e.g. `close`), or
    /// `Upgrade` to something else.
    func add(to head: inout HTTPRequestHead) -> Bool {
        guard !head.headers.contains(name: "connection"), !head.headers.contains(name: "upgrade") else { return false }
        head.headers.add(name: "connection", value: "Upgrade, HTTP2-Settings")
        head.headers.add(name: "upgrade", value: "h2c")
        head.headers.add(name: "http2-settings", value: headerValue)
        return true
    }

    /// Whether `head` accepts the offer: `101 Switching Protocols` to `h2c` (RFC 7540 §3.2).
    static func isAccepted(by head: HTTPResponseHead) -> Bool {
        head.status == .switchingProtocols
            && head.headers["upgrade"].contains { $0.split(separator: ",").contains { $0.trimmingSpaces.lowercased() == "h2c" } }
    }

    /// base64url (RFC 4648 §5) without padding.
    static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var group = UInt32(bytes[index]) << 16
            if count > 1 { group |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { group |= UInt32(bytes[index + 2]) }
            for position in 0...count { output.append(alphabet[Int(group >> UInt32(18 - 6 * position)) & 0x3F]) }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// The request whose h2c offer the server accepted: what the HTTP/2 handler needs to open stream 1 for it
/// (half-closed on this side: it had no body) and deliver its response.
struct H2CUpgradedRequest: Sendable {
    /// What `HTTP2-Settings` said.
    let settingsPayload: [UInt8]
    /// Whether the request was HEAD (its response has no body, whatever `content-length` says).
    let isHeadRequest: Bool
    /// Who waits for the response head.
    let continuation: FastContinuation<ReceivedResponse, any Error>
    /// The request's deadline and read timeout, if it has either.
    let timeouts: StreamTimeouts?
}
