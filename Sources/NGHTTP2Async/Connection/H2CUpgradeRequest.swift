import NIOHTTP1
import HTTPTypes

/// An HTTP/1.1 request that asked to continue as HTTP/2 (RFC 7540 §3.2) and was accepted: what the HTTP/2 handler
/// needs to take the connection over and answer the request on stream 1.
struct H2CUpgradeRequest: Sendable {
    /// The client's `HTTP2-Settings`, decoded: its SETTINGS payload (RFC 7540 §3.2.1).
    var settingsPayload: [UInt8]
    /// The request, answered on stream 1 (half-closed for the client: it had no body).
    var request: HTTPRequest

    /// The decoded `HTTP2-Settings` of a request that asks for h2c properly: `Upgrade` lists `h2c`, `Connection`
    /// lists `Upgrade` and `HTTP2-Settings`, and exactly one `HTTP2-Settings` holds base64url whose length is a
    /// multiple of 6 once decoded (RFC 7540 §3.2.1). `nil` otherwise: the request is then answered over HTTP/1.1.
    static func settings(of head: HTTPRequestHead) -> [UInt8]? {
        let upgrades = head.headers["upgrade"].flatMap { $0.lowercased().split(separator: ",").map { $0.trimmingSpaces } }
        let connection = head.connectionTokens
        let settings = head.headers["http2-settings"]
        guard upgrades.contains("h2c"), connection.contains("upgrade"), connection.contains("http2-settings"),
              settings.count == 1, let payload = decodeBase64URL(settings[0].trimmingSpaces), payload.count % 6 == 0
        else { return nil }
        return payload
    }

    /// Decodes base64url (RFC 4648 §5), padding optional; `nil` for anything else.
    static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0") + 52
            case UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "_"): value = 63
            case UInt8(ascii: "="): padding += 1; continue
            default: return nil
            }
            guard padding == 0 else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero padding of the last character (RFC 4648 §3.5); six leftover bits are no byte.
        guard bits < 6, accumulator & ((1 << UInt32(bits)) - 1) == 0, padding <= 2 else { return nil }
        return bytes
    }
}
