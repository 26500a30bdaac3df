internal import CNGHTTP2

// MARK: - Flow control

extension Session {
    /// Credits `count` bytes of DATA received on `streamID` to both the stream's and the connection's receive
    /// windows, so the peer may send that much more (needs ``Options/noAutoWindowUpdate``).
    ///
    /// Call it when the application has taken the bytes; libnghttp2 sends WINDOW_UPDATE once enough is credited.
    public func consume(streamID: Int32, count: Int) throws {
        try NGHTTP2Error.check(nghttp2_session_consume(handle, streamID, count))
    }

    /// Credits `count` received bytes to the connection window only (e.g. bytes of a stream that is gone).
    public func consumeConnection(count: Int) throws {
        try NGHTTP2Error.check(nghttp2_session_consume_connection(handle, count))
    }

    /// Sets this side's receive window of `streamID` (0: the connection) to `size` bytes, sending the
    /// WINDOW_UPDATE that grows it. Use it to open the connection window beyond 65,535 bytes, which SETTINGS cannot.
    public func setLocalWindowSize(streamID: Int32 = 0, _ size: Int32) throws {
        try NGHTTP2Error.check(nghttp2_session_set_local_window_size(handle, 0, streamID, size))
    }

    /// The connection's receive window: how much the peer may still send.
    public var localWindowSize: Int {
        Int(nghttp2_session_get_local_window_size(handle))
    }
    /// The connection's send window: how much this side may still send.
    public var remoteWindowSize: Int {
        Int(nghttp2_session_get_remote_window_size(handle))
    }
    /// The connection's receive window size as this side set it (initial size plus updates sent).
    public var effectiveLocalWindowSize: Int {
        Int(nghttp2_session_get_effective_local_window_size(handle))
    }
    /// Received connection bytes not yet credited back with WINDOW_UPDATE.
    public var effectiveReceivedDataLength: Int {
        Int(nghttp2_session_get_effective_recv_data_length(handle))
    }

    /// The stream's receive window, or `nil` if the stream does not exist.
    public func localWindowSize(streamID: Int32) -> Int? {
        nonNegative(nghttp2_session_get_stream_local_window_size(handle, streamID))
    }
    /// The stream's send window, or `nil` if the stream does not exist.
    public func remoteWindowSize(streamID: Int32) -> Int? {
        nonNegative(nghttp2_session_get_stream_remote_window_size(handle, streamID))
    }
    /// The stream's receive window size as this side set it, or `nil` if the stream does not exist.
    public func effectiveLocalWindowSize(streamID: Int32) -> Int? {
        nonNegative(nghttp2_session_get_stream_effective_local_window_size(handle, streamID))
    }
    /// Received stream bytes not yet credited back, or `nil` if the stream does not exist.
    public func effectiveReceivedDataLength(streamID: Int32) -> Int? {
        nonNegative(nghttp2_session_get_stream_effective_recv_data_length(handle, streamID))
    }

    private func nonNegative(_ value: Int32) -> Int? { value < 0 ? nil : Int(value) }
}

// MARK: - Settings

extension Session {
    /// The value of a setting this side advertised, as acknowledged by the peer (before the ACK: the default).
    public func localSetting(_ id: SettingID) -> UInt32 {
        nghttp2_session_get_local_settings(handle, id.cValue)
    }

    /// The value of a setting the peer advertised (before its SETTINGS arrive: the protocol default).
    public func remoteSetting(_ id: SettingID) -> UInt32 {
        nghttp2_session_get_remote_settings(handle, id.cValue)
    }
}

// MARK: - Streams

extension Session {
    /// The state of `streamID`, or `nil` when libnghttp2 keeps no such stream (never opened, or closed and gone).
    public func streamState(_ streamID: Int32) -> StreamState? {
        guard let stream = nghttp2_session_find_stream(handle, streamID) else { return nil }
        return StreamState(nghttp2_stream_get_state(stream).rawValue)
    }

    /// Whether libnghttp2 keeps `streamID`.
    public func streamExists(_ streamID: Int32) -> Bool {
        nghttp2_session_find_stream(handle, streamID) != nil
    }

    /// Whether this side has sent END_STREAM (or reset) on `streamID`; `nil` if the stream does not exist.
    public func isLocallyClosed(streamID: Int32) -> Bool? {
        let rv = nghttp2_session_get_stream_local_close(handle, streamID)
        return rv < 0 ? nil : rv == 1
    }

    /// Whether the peer has sent END_STREAM (or reset) on `streamID`; `nil` if the stream does not exist.
    public func isRemotelyClosed(streamID: Int32) -> Bool? {
        let rv = nghttp2_session_get_stream_remote_close(handle, streamID)
        return rv < 0 ? nil : rv == 1
    }

    /// The object attached to `streamID`, if any. It is dropped when the stream closes.
    public func userData(streamID: Int32) -> Any? { streamUserData[streamID] }

    /// Attaches an object to `streamID` (or removes it, with `nil`) until the stream closes.
    public func setUserData(_ value: Any?, streamID: Int32) {
        streamUserData[streamID] = value
    }

    /// How many streams have user data attached (a leak check: it drops to zero when every stream closed).
    public var userDataCount: Int { streamUserData.count }

    /// How many streams have a body still sending.
    public var activeDataProviderCount: Int { providers.count }

    /// Whether a new request may be submitted now (client only): false after GOAWAY either way, or when stream
    /// IDs are exhausted.
    public var isRequestAllowed: Bool {
        nghttp2_session_check_request_allowed(handle) != 0
    }

    /// The highest peer-initiated stream ID this session has processed (what GOAWAY reports).
    public var lastProcessedStreamID: Int32 {
        nghttp2_session_get_last_proc_stream_id(handle)
    }

    /// The ID the next locally-initiated stream will get.
    public var nextStreamID: UInt32 {
        nghttp2_session_get_next_stream_id(handle)
    }

    /// Sets the ID of the next locally-initiated stream (only upward; odd for a client, even for a server).
    public func setNextStreamID(_ streamID: Int32) throws {
        try NGHTTP2Error.check(nghttp2_session_set_next_stream_id(handle, streamID))
    }
}

// MARK: - h2c upgrade

extension Session {
    /// Encodes `settings` as the SETTINGS payload of an `HTTP2-Settings` header
    /// ([RFC 7540 §3.2.1](https://www.rfc-editor.org/rfc/rfc7540.html#section-3.2.1)); base64url it for the header.
    public static func settingsPayload(_ settings: [Setting]) throws -> [UInt8] {
        let entries = settings.map(\.cValue)
        var buffer = [UInt8](repeating: 0, count: max(settings.count * 6, 1))
        let count = try NGHTTP2Error.check(nghttp2_pack_settings_payload(&buffer, buffer.count, entries, entries.count))
        return Array(buffer.prefix(count))
    }

    /// Completes an HTTP/1.1 → h2c upgrade: applies the client's `HTTP2-Settings` payload and opens stream 1
    /// (half-closed local on a client, half-closed remote on a server, which then answers it with
    /// ``submitResponse(streamID:_:body:)``).
    ///
    /// - Parameters:
    ///   - settingsPayload: the decoded `HTTP2-Settings` bytes (a client passes what it sent).
    ///   - isHeadRequest: whether the upgraded request was HEAD (its response has no body).
    ///   - userData: an object to attach to stream 1 (client).
    public func upgrade(settingsPayload: [UInt8], isHeadRequest: Bool = false, userData: Any? = nil) throws {
        try NGHTTP2Error.check(
            nghttp2_session_upgrade2(handle, settingsPayload, settingsPayload.count, isHeadRequest ? 1 : 0, nil)
        )
        if let userData { streamUserData[1] = userData }
    }
}
