internal import CNGHTTP2

/// An HTTP/2 error code, carried by RST_STREAM and GOAWAY frames
/// ([RFC 9113 §7](https://www.rfc-editor.org/rfc/rfc9113.html#section-7)).
///
/// A code this enum does not know (any 32-bit value is legal on the wire) arrives as ``unknown(_:)``.
public enum ErrorCode: Hashable, Sendable {
    /// NO_ERROR (0x0): graceful shutdown, or a stream that ends without an error.
    case noError
    /// PROTOCOL_ERROR (0x1): an unspecific protocol error was detected.
    case protocolError
    /// INTERNAL_ERROR (0x2): the endpoint hit an unexpected internal error.
    case internalError
    /// FLOW_CONTROL_ERROR (0x3): the peer violated the flow-control protocol.
    case flowControlError
    /// SETTINGS_TIMEOUT (0x4): a SETTINGS frame was not acknowledged in time.
    case settingsTimeout
    /// STREAM_CLOSED (0x5): a frame arrived after the stream was half-closed.
    case streamClosed
    /// FRAME_SIZE_ERROR (0x6): a frame had an invalid size.
    case frameSizeError
    /// REFUSED_STREAM (0x7): the stream was refused before any application processing; safe to retry.
    case refusedStream
    /// CANCEL (0x8): the stream is no longer needed.
    case cancel
    /// COMPRESSION_ERROR (0x9): the field-block compression context cannot be maintained.
    case compressionError
    /// CONNECT_ERROR (0xa): the connection of a CONNECT request was reset or abnormally closed.
    case connectError
    /// ENHANCE_YOUR_CALM (0xb): the peer is generating excessive load.
    case enhanceYourCalm
    /// INADEQUATE_SECURITY (0xc): the transport does not meet minimum security requirements.
    case inadequateSecurity
    /// HTTP_1_1_REQUIRED (0xd): the endpoint requires HTTP/1.1 for this request.
    case http11Required
    /// A code not defined by RFC 9113.
    case unknown(UInt32)

    /// Creates the error code for its wire value.
    public init(rawValue: UInt32) {
        switch rawValue {
        case 0x0: self = .noError
        case 0x1: self = .protocolError
        case 0x2: self = .internalError
        case 0x3: self = .flowControlError
        case 0x4: self = .settingsTimeout
        case 0x5: self = .streamClosed
        case 0x6: self = .frameSizeError
        case 0x7: self = .refusedStream
        case 0x8: self = .cancel
        case 0x9: self = .compressionError
        case 0xa: self = .connectError
        case 0xb: self = .enhanceYourCalm
        case 0xc: self = .inadequateSecurity
        case 0xd: self = .http11Required
        default: self = .unknown(rawValue)
        }
    }

    /// The wire value.
    public var rawValue: UInt32 {
        switch self {
        case .noError: 0x0
        case .protocolError: 0x1
        case .internalError: 0x2
        case .flowControlError: 0x3
        case .settingsTimeout: 0x4
        case .streamClosed: 0x5
        case .frameSizeError: 0x6
        case .refusedStream: 0x7
        case .cancel: 0x8
        case .compressionError: 0x9
        case .connectError: 0xa
        case .enhanceYourCalm: 0xb
        case .inadequateSecurity: 0xc
        case .http11Required: 0xd
        case .unknown(let value): value
        }
    }

    /// libnghttp2's name for the code (`nghttp2_http2_strerror`), e.g. `"PROTOCOL_ERROR"`; `"unknown"` for others.
    public var message: String {
        String(cString: nghttp2_http2_strerror(rawValue))
    }
}

extension ErrorCode: CustomStringConvertible {
    /// A readable form, for logs and error messages.
    public var description: String {
        if case .unknown(let value) = self { return "unknown error code 0x\(String(value, radix: 16))" }
        return message
    }
}
