internal import CNGHTTP2

extension Session {
    /// Tuning for a ``Session``: every `nghttp2_option_set_*` that libnghttp2 1.52 (Debian) has.
    ///
    /// A property left `nil` (or `false`) keeps libnghttp2's default, quoted in its documentation. Two defaults
    /// differ from libnghttp2's, for safety: ``noClosedStreams`` is on (closed streams are not kept for the RFC 7540
    /// priority tree, so memory stays flat on long connections) and ``maxContinuations`` is 32 (Debian's backport
    /// counts CONTINUATION frames per read call, so 8 rejects valid header blocks that arrive in small reads).
    public struct Options: Sendable, Hashable {
        /// Do not send WINDOW_UPDATE automatically: the application credits received bytes with
        /// ``Session/consume(streamID:count:)``. This is how receive back-pressure is built. Default `false`.
        public var noAutoWindowUpdate = false
        /// The peer's MAX_CONCURRENT_STREAMS assumed until its first SETTINGS arrive. libnghttp2's default: 100.
        public var peerMaxConcurrentStreams: UInt32?
        /// Server: do not expect the 24-byte client connection preface (for h2c upgrade handled elsewhere).
        public var noRecvClientMagic = false
        /// Turn off the HTTP messaging checks of RFC 9113 §8 (pseudo-headers, content-length…). Keep them on
        /// unless this is a proxy that must pass malformed messages through.
        public var noHTTPMessaging = false
        /// Client: how many pushed streams may be reserved at once. libnghttp2's default: 200.
        public var maxReservedRemoteStreams: UInt32?
        /// Extension frame types (greater than 0x9) the application receives through
        /// ``Session/Callbacks/onFrameReceived`` as ``Frame/Payload/unknown(payload:)``.
        public var userRecvExtensionTypes: [UInt8] = []
        /// Extension frames that libnghttp2 parses itself and delivers: ``FrameType/altsvc``, ``FrameType/origin``,
        /// ``FrameType/priorityUpdate``.
        public var builtinRecvExtensionTypes: [FrameType] = []
        /// Do not answer PING frames automatically.
        public var noAutoPingAck = false
        /// The largest header block this session will send. libnghttp2's default: 64 KiB.
        public var maxSendHeaderBlockLength: Int?
        /// The largest HPACK dynamic table the encoder uses. libnghttp2's default: 4 KiB.
        public var maxDeflateDynamicTableSize: Int?
        /// Do not keep closed streams for the RFC 7540 priority tree. Default here: `true`.
        public var noClosedStreams = true
        /// How many frames that need an ACK (PING, SETTINGS) may wait in the outbound queue before the session is
        /// flooded. libnghttp2's default: 1000.
        public var maxOutboundAck: Int?
        /// The most entries a received SETTINGS frame may carry. libnghttp2's default: 32.
        public var maxSettings: Int?
        /// Server: use RFC 7540 priorities when the client does not send SETTINGS_NO_RFC7540_PRIORITIES.
        public var serverFallbackRFC7540Priorities = false
        /// Do not reject field values with leading or trailing white space (RFC 9113 §8.2.1).
        public var noRFC9113LeadingAndTrailingWhitespaceValidation = false
        /// Server: the token bucket for RST_STREAM frames received (CVE-2023-44487, "rapid reset"). Past it the
        /// server sends GOAWAY. libnghttp2's default: burst 1000, rate 33 per second.
        public var streamResetRateLimit: RateLimit?
        /// The most CONTINUATION frames one header block may have (CVE-2024-28182). Default here: 32.
        public var maxContinuations: Int? = 32

        /// A token bucket: `burst` tokens, refilled at `ratePerSecond`.
        public struct RateLimit: Sendable, Hashable {
            /// The bucket size.
            public var burst: UInt64
            /// Tokens added per second.
            public var ratePerSecond: UInt64

            /// Creates a rate limit.
            public init(burst: UInt64, ratePerSecond: UInt64) {
                self.burst = burst
                self.ratePerSecond = ratePerSecond
            }
        }

        /// Options with the defaults described on each property.
        public init() {}

        /// Builds an `nghttp2_option`, hands it to `body`, and frees it (sessions copy it).
        func withOption<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
            var option: OpaquePointer?
            try NGHTTP2Error.check(nghttp2_option_new(&option))
            guard let option else { throw NGHTTP2Error.noMemory }
            defer { nghttp2_option_del(option) }
            if noAutoWindowUpdate { nghttp2_option_set_no_auto_window_update(option, 1) }
            if let peerMaxConcurrentStreams { nghttp2_option_set_peer_max_concurrent_streams(option, peerMaxConcurrentStreams) }
            if noRecvClientMagic { nghttp2_option_set_no_recv_client_magic(option, 1) }
            if noHTTPMessaging { nghttp2_option_set_no_http_messaging(option, 1) }
            if let maxReservedRemoteStreams { nghttp2_option_set_max_reserved_remote_streams(option, maxReservedRemoteStreams) }
            for type in userRecvExtensionTypes { nghttp2_option_set_user_recv_extension_type(option, type) }
            for type in builtinRecvExtensionTypes { nghttp2_option_set_builtin_recv_extension_type(option, type.rawValue) }
            if noAutoPingAck { nghttp2_option_set_no_auto_ping_ack(option, 1) }
            if let maxSendHeaderBlockLength { nghttp2_option_set_max_send_header_block_length(option, maxSendHeaderBlockLength) }
            if let maxDeflateDynamicTableSize { nghttp2_option_set_max_deflate_dynamic_table_size(option, maxDeflateDynamicTableSize) }
            if noClosedStreams { nghttp2_option_set_no_closed_streams(option, 1) }
            if let maxOutboundAck { nghttp2_option_set_max_outbound_ack(option, maxOutboundAck) }
            if let maxSettings { nghttp2_option_set_max_settings(option, maxSettings) }
            if serverFallbackRFC7540Priorities { nghttp2_option_set_server_fallback_rfc7540_priorities(option, 1) }
            if noRFC9113LeadingAndTrailingWhitespaceValidation {
                nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(option, 1)
            }
            if let streamResetRateLimit {
                nghttp2_option_set_stream_reset_rate_limit(option, streamResetRateLimit.burst, streamResetRateLimit.ratePerSecond)
            }
            if let maxContinuations { nghttp2_option_set_max_continuations(option, maxContinuations) }
            return try body(option)
        }
    }
}
