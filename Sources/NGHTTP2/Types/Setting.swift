internal import CNGHTTP2

/// A SETTINGS parameter identifier ([RFC 9113 §6.5.2](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.5.2)).
public enum SettingID: Hashable, Sendable {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1): the HPACK dynamic table size the sender's decoder allows.
    case headerTableSize
    /// SETTINGS_ENABLE_PUSH (0x2): 0 forbids server push.
    case enablePush
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3): how many streams the peer may open towards the sender.
    case maxConcurrentStreams
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4): the initial stream-level receive window.
    case initialWindowSize
    /// SETTINGS_MAX_FRAME_SIZE (0x5): the largest frame payload the sender accepts.
    case maxFrameSize
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6): the largest uncompressed field section the sender accepts.
    case maxHeaderListSize
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8): extended CONNECT
    /// ([RFC 8441 §3](https://www.rfc-editor.org/rfc/rfc8441.html#section-3)).
    case enableConnectProtocol
    /// SETTINGS_NO_RFC7540_PRIORITIES (0x9): 1 says RFC 7540 priorities are not used
    /// ([RFC 9218 §2.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-2.1)).
    case noRFC7540Priorities
    /// An identifier this enum does not know; receivers ignore it.
    case unknown(UInt16)

    /// Creates the identifier for its wire value.
    public init(rawValue: UInt16) {
        switch rawValue {
        case 0x1: self = .headerTableSize
        case 0x2: self = .enablePush
        case 0x3: self = .maxConcurrentStreams
        case 0x4: self = .initialWindowSize
        case 0x5: self = .maxFrameSize
        case 0x6: self = .maxHeaderListSize
        case 0x8: self = .enableConnectProtocol
        case 0x9: self = .noRFC7540Priorities
        default: self = .unknown(rawValue)
        }
    }

    /// The wire value.
    public var rawValue: UInt16 {
        switch self {
        case .headerTableSize: 0x1
        case .enablePush: 0x2
        case .maxConcurrentStreams: 0x3
        case .initialWindowSize: 0x4
        case .maxFrameSize: 0x5
        case .maxHeaderListSize: 0x6
        case .enableConnectProtocol: 0x8
        case .noRFC7540Priorities: 0x9
        case .unknown(let value): value
        }
    }

    var cValue: nghttp2_settings_id { nghttp2_settings_id(UInt32(rawValue)) }
}

/// One SETTINGS parameter and its value ([RFC 9113 §6.5.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.5.1)).
public struct Setting: Hashable, Sendable {
    /// The parameter.
    public var id: SettingID
    /// Its value.
    public var value: UInt32

    /// Creates a setting.
    public init(_ id: SettingID, _ value: UInt32) {
        self.id = id
        self.value = value
    }

    var cValue: nghttp2_settings_entry { nghttp2_settings_entry(settings_id: Int32(id.rawValue), value: value) }

    init(_ entry: nghttp2_settings_entry) {
        self.init(SettingID(rawValue: UInt16(truncatingIfNeeded: entry.settings_id)), entry.value)
    }
}

extension Setting: CustomStringConvertible {
    /// A readable form, for logs and error messages.
    public var description: String { "\(id)=\(value)" }
}

extension SettingID: CustomStringConvertible {
    /// A readable form, for logs and error messages.
    public var description: String {
        switch self {
        case .headerTableSize: "SETTINGS_HEADER_TABLE_SIZE"
        case .enablePush: "SETTINGS_ENABLE_PUSH"
        case .maxConcurrentStreams: "SETTINGS_MAX_CONCURRENT_STREAMS"
        case .initialWindowSize: "SETTINGS_INITIAL_WINDOW_SIZE"
        case .maxFrameSize: "SETTINGS_MAX_FRAME_SIZE"
        case .maxHeaderListSize: "SETTINGS_MAX_HEADER_LIST_SIZE"
        case .enableConnectProtocol: "SETTINGS_ENABLE_CONNECT_PROTOCOL"
        case .noRFC7540Priorities: "SETTINGS_NO_RFC7540_PRIORITIES"
        case .unknown(let value): "SETTINGS_0x\(String(value, radix: 16))"
        }
    }
}
