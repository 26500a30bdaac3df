import NIOCore
@testable import NGHTTP2Async

/// One WebSocket frame (RFC 6455 §5.2), encoded and decoded by hand for the extended CONNECT tests: FIN, an opcode,
/// an optional mask, and the payload. A test helper, not a WebSocket implementation (no fragmentation, no extensions).
struct WebSocketFrame: Equatable {
    var opcode: UInt8
    var payload: [UInt8]

    static func text(_ text: String) -> WebSocketFrame { WebSocketFrame(opcode: 0x1, payload: Array(text.utf8)) }
    /// A Close frame with a status code (RFC 6455 §5.5.1).
    static func close(code: UInt16) -> WebSocketFrame { WebSocketFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xff)]) }

    var text: String { String(decoding: payload, as: UTF8.self) }

    /// The frame with FIN set, masked with `mask` as a client must (RFC 6455 §5.3), or unmasked when `mask` is nil.
    func encoded(mask: [UInt8]?) -> [UInt8] {
        var bytes: [UInt8] = [0x80 | opcode]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        switch payload.count {
        case ..<126:
            bytes.append(maskBit | UInt8(payload.count))
        case ..<65536:
            bytes.append(maskBit | 126)
            bytes += [UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        default:
            bytes.append(maskBit | 127)
            bytes += (0..<8).reversed().map { UInt8(truncatingIfNeeded: UInt64(payload.count) >> (8 * UInt64($0))) }
        }
        guard let mask else { return bytes + payload }
        precondition(mask.count == 4)
        return bytes + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    }

    /// Decodes one frame from the start of `bytes`; returns it and the bytes it took, or nil when more are needed.
    static func decode(_ bytes: [UInt8]) -> (frame: WebSocketFrame, count: Int)? {
        guard bytes.count >= 2 else { return nil }
        let opcode = bytes[0] & 0x0f
        let masked = bytes[1] & 0x80 != 0
        var length = Int(bytes[1] & 0x7f)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
            offset = 10
        }
        let mask = masked ? Array(bytes[offset..<min(offset + 4, bytes.count)]) : []
        if masked { offset += 4 }
        guard bytes.count >= offset + length else { return nil }
        var payload = Array(bytes[offset..<(offset + length)])
        if masked { payload = payload.enumerated().map { $0.element ^ mask[$0.offset % 4] } }
        return (WebSocketFrame(opcode: opcode, payload: payload), offset + length)
    }
}

/// Reads whole WebSocket frames from a tunnel's inbound bytes.
struct WebSocketReader {
    let reader: StreamReader
    var buffered: [UInt8] = []

    init(_ reader: StreamReader) { self.reader = reader }

    /// The next frame, or nil when the stream ended.
    mutating func next() async throws -> WebSocketFrame? {
        while true {
            if let (frame, count) = WebSocketFrame.decode(buffered) {
                buffered.removeFirst(count)
                return frame
            }
            guard var chunk = try await reader.read() else { return nil }
            buffered += chunk.readBytes(length: chunk.readableBytes) ?? []
        }
    }
}
