internal import CNGHTTP2

/// The libnghttp2 this process runs with (`nghttp2_version`).
public struct LibraryVersion: Sendable, Hashable, CustomStringConvertible {
    /// The version string, e.g. `"1.52.0"`.
    public let string: String
    /// The version as a number, `0xMMmmpp` (e.g. `0x013400` for 1.52.0).
    public let number: Int
    /// The ALPN protocol identifier of the HTTP/2 version implemented: `"h2"`.
    public let alpnProtocolID: String

    /// The version of the loaded library.
    public static let current: LibraryVersion = {
        let info = nghttp2_version(0)!.pointee
        return LibraryVersion(
            string: String(cString: info.version_str),
            number: Int(info.version_num),
            alpnProtocolID: String(cString: info.proto_str)
        )
    }()

    /// Whether the loaded library is at least `major.minor.patch`.
    public static func isAtLeast(major: Int, minor: Int, patch: Int = 0) -> Bool {
        nghttp2_version(Int32(major << 16 | minor << 8 | patch)) != nil
    }

    /// A readable form, for logs and error messages.
    public var description: String { "nghttp2/\(string)" }
}

/// Protocol constants that libnghttp2 defines as macros Swift cannot import.
public enum HTTP2Constants {
    /// The initial stream and connection window size, 65,535 bytes
    /// ([RFC 9113 §6.9.2](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.9.2)).
    public static let initialWindowSize: Int32 = 65_535
    /// The largest window size, 2^31 - 1 ([RFC 9113 §6.9.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.9.1)).
    public static let maxWindowSize: Int32 = .max
    /// The default HPACK dynamic table size, 4,096 bytes
    /// ([RFC 9113 §6.5.2](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.5.2)).
    public static let defaultHeaderTableSize = 4_096
    /// The default largest frame payload, 16,384 bytes
    /// ([RFC 9113 §6.5.2](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.5.2)).
    public static let defaultMaxFrameSize = 16_384
    /// The client connection preface ([RFC 9113 §3.4](https://www.rfc-editor.org/rfc/rfc9113.html#section-3.4)).
    public static let clientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
}
