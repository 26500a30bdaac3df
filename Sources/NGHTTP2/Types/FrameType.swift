/// An HTTP/2 frame type ([RFC 9113 §6](https://www.rfc-editor.org/rfc/rfc9113.html#section-6)), with the
/// extension frames libnghttp2 understands.
public enum FrameType: Hashable, Sendable {
    /// DATA (0x0, [RFC 9113 §6.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.1)).
    case data
    /// HEADERS (0x1, [RFC 9113 §6.2](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.2)).
    case headers
    /// PRIORITY (0x2, [RFC 9113 §6.3](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.3)); deprecated.
    case priority
    /// RST_STREAM (0x3, [RFC 9113 §6.4](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.4)).
    case rstStream
    /// SETTINGS (0x4, [RFC 9113 §6.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.5)).
    case settings
    /// PUSH_PROMISE (0x5, [RFC 9113 §6.6](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.6)).
    case pushPromise
    /// PING (0x6, [RFC 9113 §6.7](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.7)).
    case ping
    /// GOAWAY (0x7, [RFC 9113 §6.8](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.8)).
    case goaway
    /// WINDOW_UPDATE (0x8, [RFC 9113 §6.9](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.9)).
    case windowUpdate
    /// CONTINUATION (0x9, [RFC 9113 §6.10](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.10)).
    /// libnghttp2 joins these to their HEADERS or PUSH_PROMISE; callbacks never see one.
    case continuation
    /// ALTSVC (0xa, [RFC 7838 §4](https://www.rfc-editor.org/rfc/rfc7838.html#section-4)).
    case altsvc
    /// ORIGIN (0xc, [RFC 8336 §2](https://www.rfc-editor.org/rfc/rfc8336.html#section-2)).
    case origin
    /// PRIORITY_UPDATE (0x10, [RFC 9218 §7.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-7.1)).
    case priorityUpdate
    /// A type this enum does not know.
    case unknown(UInt8)

    /// Creates the frame type for its wire value.
    public init(rawValue: UInt8) {
        switch rawValue {
        case 0x0: self = .data
        case 0x1: self = .headers
        case 0x2: self = .priority
        case 0x3: self = .rstStream
        case 0x4: self = .settings
        case 0x5: self = .pushPromise
        case 0x6: self = .ping
        case 0x7: self = .goaway
        case 0x8: self = .windowUpdate
        case 0x9: self = .continuation
        case 0xa: self = .altsvc
        case 0xc: self = .origin
        case 0x10: self = .priorityUpdate
        default: self = .unknown(rawValue)
        }
    }

    /// The wire value.
    public var rawValue: UInt8 {
        switch self {
        case .data: 0x0
        case .headers: 0x1
        case .priority: 0x2
        case .rstStream: 0x3
        case .settings: 0x4
        case .pushPromise: 0x5
        case .ping: 0x6
        case .goaway: 0x7
        case .windowUpdate: 0x8
        case .continuation: 0x9
        case .altsvc: 0xa
        case .origin: 0xc
        case .priorityUpdate: 0x10
        case .unknown(let value): value
        }
    }
}

extension FrameType: CustomStringConvertible {
    /// A readable form, for logs and error messages.
    public var description: String {
        switch self {
        case .data: "DATA"
        case .headers: "HEADERS"
        case .priority: "PRIORITY"
        case .rstStream: "RST_STREAM"
        case .settings: "SETTINGS"
        case .pushPromise: "PUSH_PROMISE"
        case .ping: "PING"
        case .goaway: "GOAWAY"
        case .windowUpdate: "WINDOW_UPDATE"
        case .continuation: "CONTINUATION"
        case .altsvc: "ALTSVC"
        case .origin: "ORIGIN"
        case .priorityUpdate: "PRIORITY_UPDATE"
        case .unknown(let value): "UNKNOWN(0x\(String(value, radix: 16)))"
        }
    }
}

/// The flags of a frame header ([RFC 9113 §4.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-4.1)).
///
/// ``endStream`` and ``ack`` share the bit 0x1: which one it means depends on the frame type.
public struct FrameFlags: OptionSet, Hashable, Sendable {
    /// The flag bits.
    public let rawValue: UInt8
    /// Creates flags from their bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// END_STREAM (0x1) on DATA and HEADERS.
    public static let endStream = FrameFlags(rawValue: 0x1)
    /// ACK (0x1) on SETTINGS and PING.
    public static let ack = FrameFlags(rawValue: 0x1)
    /// END_HEADERS (0x4) on HEADERS, PUSH_PROMISE and CONTINUATION.
    public static let endHeaders = FrameFlags(rawValue: 0x4)
    /// PADDED (0x8) on DATA, HEADERS and PUSH_PROMISE.
    public static let padded = FrameFlags(rawValue: 0x8)
    /// PRIORITY (0x20) on HEADERS.
    public static let priority = FrameFlags(rawValue: 0x20)
}

/// Which kind of field block a HEADERS frame carries (`nghttp2_headers_category`).
public enum HeadersCategory: Hashable, Sendable {
    /// The first HEADERS of a request (client to server).
    case request
    /// The first HEADERS of a response (server to client).
    case response
    /// The first HEADERS of a pushed response.
    case pushResponse
    /// Any later HEADERS: a final response after 1xx, trailers, or any other field block.
    case headers

    init(_ raw: UInt32) {
        switch raw {
        case 0: self = .request
        case 1: self = .response
        case 2: self = .pushResponse
        default: self = .headers
        }
    }
}

/// The state of a stream ([RFC 9113 §5.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-5.1)).
public enum StreamState: Hashable, Sendable {
    /// idle
    case idle
    /// open
    case open
    /// reserved (local)
    case reservedLocal
    /// reserved (remote)
    case reservedRemote
    /// half-closed (local): this endpoint has sent END_STREAM.
    case halfClosedLocal
    /// half-closed (remote): the peer has sent END_STREAM.
    case halfClosedRemote
    /// closed
    case closed

    init(_ raw: UInt32) {
        switch raw {
        case 1: self = .idle
        case 2: self = .open
        case 3: self = .reservedLocal
        case 4: self = .reservedRemote
        case 5: self = .halfClosedLocal
        case 6: self = .halfClosedRemote
        default: self = .closed
        }
    }
}
