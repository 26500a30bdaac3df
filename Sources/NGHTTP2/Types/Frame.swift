internal import CNGHTTP2

/// The nine-byte header every frame starts with ([RFC 9113 §4.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-4.1)).
public struct FrameHeader: Hashable, Sendable {
    /// The payload length in bytes (for HEADERS and PUSH_PROMISE, of the whole field block with its CONTINUATIONs).
    public var length: Int
    /// The frame type.
    public var type: FrameType
    /// The flags.
    public var flags: FrameFlags
    /// The stream the frame belongs to; 0 for the connection.
    public var streamID: Int32

    /// Creates a frame header.
    public init(length: Int, type: FrameType, flags: FrameFlags, streamID: Int32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.streamID = streamID
    }

    init(_ hd: nghttp2_frame_hd) {
        self.init(length: hd.length, type: FrameType(rawValue: hd.type), flags: FrameFlags(rawValue: hd.flags), streamID: hd.stream_id)
    }
}

/// An RFC 7540 stream dependency and weight ([RFC 9113 §5.3.2](https://www.rfc-editor.org/rfc/rfc9113.html#section-5.3.2)
/// deprecates this scheme; RFC 9218 replaces it with PRIORITY_UPDATE).
public struct PrioritySpec: Hashable, Sendable {
    /// The stream this one depends on; 0 for the root.
    public var dependsOn: Int32
    /// The weight, 1...256 (default 16).
    public var weight: Int32
    /// Whether the dependency is exclusive.
    public var isExclusive: Bool

    /// Creates a priority specification.
    public init(dependsOn: Int32 = 0, weight: Int32 = 16, isExclusive: Bool = false) {
        self.dependsOn = dependsOn
        self.weight = weight
        self.isExclusive = isExclusive
    }

    init(_ spec: nghttp2_priority_spec) {
        self.init(dependsOn: spec.stream_id, weight: spec.weight, isExclusive: spec.exclusive != 0)
    }

    var cValue: nghttp2_priority_spec {
        nghttp2_priority_spec(stream_id: dependsOn, weight: weight, exclusive: isExclusive ? 1 : 0)
    }
}

/// A frame sent or received by a ``Session``, with its fields decoded.
///
/// Frames reach ``Session/Callbacks`` as values; no pointer into libnghttp2's memory escapes.
public struct Frame: Hashable, Sendable {
    /// The frame header.
    public var header: FrameHeader
    /// The decoded payload.
    public var payload: Payload

    /// Creates a frame.
    public init(header: FrameHeader, payload: Payload) {
        self.header = header
        self.payload = payload
    }

    /// The frame type.
    public var type: FrameType { header.type }
    /// The stream the frame belongs to; 0 for the connection.
    public var streamID: Int32 { header.streamID }
    /// The flags.
    public var flags: FrameFlags { header.flags }

    /// A frame's decoded payload, one case per frame type.
    public enum Payload: Hashable, Sendable {
        /// DATA ([RFC 9113 §6.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.1)). The bytes themselves
        /// arrive through ``Session/Callbacks/onDataChunk``.
        case data(padding: Int)
        /// HEADERS ([RFC 9113 §6.2](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.2)) with its whole field block.
        case headers(category: HeadersCategory, fields: [HeaderField], priority: PrioritySpec?, padding: Int)
        /// PRIORITY ([RFC 9113 §6.3](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.3)).
        case priority(PrioritySpec)
        /// RST_STREAM ([RFC 9113 §6.4](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.4)).
        case rstStream(ErrorCode)
        /// SETTINGS ([RFC 9113 §6.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.5)); empty when it is an ACK.
        case settings([Setting])
        /// PUSH_PROMISE ([RFC 9113 §6.6](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.6)): the promised stream
        /// and the request's field block.
        case pushPromise(promisedStreamID: Int32, fields: [HeaderField])
        /// PING ([RFC 9113 §6.7](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.7)) with its 8 opaque bytes
        /// (big-endian).
        case ping(opaqueData: UInt64)
        /// GOAWAY ([RFC 9113 §6.8](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.8)).
        case goaway(lastStreamID: Int32, errorCode: ErrorCode, debugData: [UInt8])
        /// WINDOW_UPDATE ([RFC 9113 §6.9](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.9)).
        case windowUpdate(increment: Int32)
        /// ALTSVC ([RFC 7838 §4](https://www.rfc-editor.org/rfc/rfc7838.html#section-4)).
        case altsvc(origin: String, fieldValue: String)
        /// ORIGIN ([RFC 8336 §2](https://www.rfc-editor.org/rfc/rfc8336.html#section-2)).
        case origin([String])
        /// PRIORITY_UPDATE ([RFC 9218 §7.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-7.1)).
        case priorityUpdate(prioritizedStreamID: Int32, fieldValue: String)
        /// An extension frame this library has no model for, with its raw payload when it was received.
        case unknown(payload: [UInt8])
    }
}

extension Frame {
    /// Decodes a libnghttp2 frame. `fields` replaces the (empty, on receive) `nva` of HEADERS and PUSH_PROMISE.
    init(_ pointer: UnsafePointer<nghttp2_frame>, fields: [HeaderField]? = nil, extensionPayload: [UInt8] = []) {
        let frame = pointer.pointee
        let header = FrameHeader(frame.hd)
        let payload: Payload
        switch header.type {
        case .data:
            payload = .data(padding: frame.data.padlen)
        case .headers:
            let headers = frame.headers
            payload = .headers(
                category: HeadersCategory(headers.cat.rawValue),
                fields: fields ?? HeaderBlock.fields(headers.nva, count: headers.nvlen),
                priority: header.flags.contains(.priority) ? PrioritySpec(headers.pri_spec) : nil,
                padding: headers.padlen
            )
        case .priority:
            payload = .priority(PrioritySpec(frame.priority.pri_spec))
        case .rstStream:
            payload = .rstStream(ErrorCode(rawValue: frame.rst_stream.error_code))
        case .settings:
            let settings = frame.settings
            var entries: [Setting] = []
            if let iv = settings.iv {
                entries.reserveCapacity(settings.niv)
                for index in 0..<settings.niv { entries.append(Setting(iv[index])) }
            }
            payload = .settings(entries)
        case .pushPromise:
            let promise = frame.push_promise
            payload = .pushPromise(
                promisedStreamID: promise.promised_stream_id,
                fields: fields ?? HeaderBlock.fields(promise.nva, count: promise.nvlen)
            )
        case .ping:
            let bytes = frame.ping.opaque_data
            let array = [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5, bytes.6, bytes.7]
            payload = .ping(opaqueData: array.reduce(0) { $0 << 8 | UInt64($1) })
        case .goaway:
            let goaway = frame.goaway
            var debugData: [UInt8] = []
            if let data = goaway.opaque_data, goaway.opaque_data_len > 0 {
                debugData = Array(UnsafeBufferPointer(start: data, count: goaway.opaque_data_len))
            }
            payload = .goaway(lastStreamID: goaway.last_stream_id, errorCode: ErrorCode(rawValue: goaway.error_code), debugData: debugData)
        case .windowUpdate:
            payload = .windowUpdate(increment: frame.window_update.window_size_increment)
        case .altsvc:
            if let raw = frame.ext.payload {
                let altsvc = raw.assumingMemoryBound(to: nghttp2_ext_altsvc.self).pointee
                payload = .altsvc(
                    origin: String(bytes: altsvc.origin, count: altsvc.origin_len),
                    fieldValue: String(bytes: altsvc.field_value, count: altsvc.field_value_len)
                )
            } else {
                payload = .unknown(payload: extensionPayload)
            }
        case .origin:
            if let raw = frame.ext.payload {
                let origin = raw.assumingMemoryBound(to: nghttp2_ext_origin.self).pointee
                var origins: [String] = []
                if let entries = origin.ov {
                    for index in 0..<origin.nov {
                        origins.append(String(bytes: entries[index].origin, count: entries[index].origin_len))
                    }
                }
                payload = .origin(origins)
            } else {
                payload = .unknown(payload: extensionPayload)
            }
        case .priorityUpdate:
            if let raw = frame.ext.payload {
                let update = raw.assumingMemoryBound(to: nghttp2_ext_priority_update.self).pointee
                payload = .priorityUpdate(
                    prioritizedStreamID: update.stream_id,
                    fieldValue: String(bytes: update.field_value, count: update.field_value_len)
                )
            } else {
                payload = .unknown(payload: extensionPayload)
            }
        case .continuation, .unknown:
            payload = .unknown(payload: extensionPayload)
        }
        self.init(header: header, payload: payload)
    }
}
