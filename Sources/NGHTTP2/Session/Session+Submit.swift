internal import CNGHTTP2

extension Session {
    /// Queues a request on a new stream (client only). Returns the new stream's ID.
    ///
    /// - Parameters:
    ///   - fields: the request's field block, pseudo-header fields first (`:method`, `:scheme`, `:authority`,
    ///     `:path`; [RFC 9113 §8.3.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.3.1)).
    ///   - body: the request body; `nil` sends END_STREAM on the HEADERS frame.
    ///   - priority: an RFC 7540 priority, if any.
    ///   - userData: an object to attach to the stream (see ``userData(streamID:)``).
    /// - Throws: ``NGHTTP2Error`` (e.g. ``NGHTTP2Error/streamIDNotAvailable``, ``NGHTTP2Error/proto`` on a server).
    @discardableResult
    public func submitRequest(
        _ fields: [HeaderField],
        body: DataProvider? = nil,
        priority: PrioritySpec? = nil,
        userData: Any? = nil
    ) throws -> Int32 {
        let streamID = try withPriority(priority) { spec in
            try HeaderBlock.withNameValues(fields) { nva, count in
                try withDataProvider(body) { provider in
                    try NGHTTP2Error.check(nghttp2_submit_request(handle, spec, nva, count, provider, nil))
                }
            }
        }
        if let body { providers[streamID] = body }
        if let userData { streamUserData[streamID] = userData }
        return streamID
    }

    /// Queues the response on `streamID` (server only).
    ///
    /// - Parameters:
    ///   - streamID: the request's stream.
    ///   - fields: the response's field block, `:status` first.
    ///   - body: the body; `nil` sends END_STREAM on the HEADERS frame.
    /// - Throws: ``NGHTTP2Error`` (e.g. ``NGHTTP2Error/dataExist`` when a response was already submitted).
    public func submitResponse(streamID: Int32, _ fields: [HeaderField], body: DataProvider? = nil) throws {
        _ = try HeaderBlock.withNameValues(fields) { nva, count in
            try withDataProvider(body) { provider in
                try NGHTTP2Error.check(nghttp2_submit_response(handle, streamID, nva, count, provider))
            }
        }
        if let body { providers[streamID] = body }
    }

    /// ``submitResponse(streamID:_:body:)`` for fields the caller laid out itself, e.g. in a temporary
    /// allocation on the stack (no array per response). The fields are copied before this returns.
    package func submitResponse(streamID: Int32, fields: UnsafeBufferPointer<HeaderField>, body: DataProvider? = nil) throws {
        _ = try HeaderBlock.withNameValues(fields) { nva, count in
            try withDataProvider(body) { provider in
                try NGHTTP2Error.check(nghttp2_submit_response(handle, streamID, nva, count, provider))
            }
        }
        if let body { providers[streamID] = body }
    }

    /// Queues a HEADERS frame: a 1xx informational response, trailers, or (with `streamID` -1, client only)
    /// a new stream. Returns the stream ID (the new one when `streamID` is -1).
    ///
    /// - Parameters:
    ///   - streamID: the stream, or -1 to open a new one.
    ///   - fields: the field block.
    ///   - endStream: whether the frame carries END_STREAM.
    ///   - priority: an RFC 7540 priority, if any.
    @discardableResult
    public func submitHeaders(
        streamID: Int32,
        _ fields: [HeaderField],
        endStream: Bool = false,
        priority: PrioritySpec? = nil
    ) throws -> Int32 {
        let flags = endStream ? UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) : UInt8(NGHTTP2_FLAG_NONE.rawValue)
        let rv = try withPriority(priority) { spec in
            try HeaderBlock.withNameValues(fields) { nva, count in
                try NGHTTP2Error.check(nghttp2_submit_headers(handle, flags, streamID, spec, nva, count, nil))
            }
        }
        return streamID == -1 ? rv : streamID
    }

    /// Queues trailers: a HEADERS frame with END_STREAM after the body
    /// ([RFC 9113 §8.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.1)).
    ///
    /// Call it from a ``DataProvider`` that returned ``DataFlags/noEndStream`` with its last bytes, or once a
    /// provider has ended without END_STREAM. Trailers must not contain pseudo-header fields.
    /// - Throws: ``NGHTTP2Error/invalidArgument`` for a pseudo-header field; other ``NGHTTP2Error``s from libnghttp2.
    public func submitTrailer(streamID: Int32, fields: [HeaderField]) throws {
        if fields.contains(where: { $0.name.hasPrefix(":") }) { throw NGHTTP2Error.invalidArgument }
        _ = try HeaderBlock.withNameValues(fields) { nva, count in
            try NGHTTP2Error.check(nghttp2_submit_trailer(handle, streamID, nva, count))
        }
    }

    /// Queues DATA from `body` on `streamID`, after the headers were sent without END_STREAM.
    ///
    /// - Parameters:
    ///   - body: the provider of the bytes.
    ///   - streamID: the stream, open on this side.
    ///   - endStream: whether the last DATA frame carries END_STREAM (otherwise the provider's flags decide only the
    ///     end of this body; more HEADERS or DATA may follow).
    /// - Throws: ``NGHTTP2Error/dataExist`` while an earlier body on the stream is still sending.
    public func submitData(streamID: Int32, endStream: Bool = true, body: DataProvider) throws {
        let flags = endStream ? UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) : UInt8(NGHTTP2_FLAG_NONE.rawValue)
        _ = try withDataProvider(body) { provider in
            try NGHTTP2Error.check(nghttp2_submit_data(handle, flags, streamID, provider))
        }
        providers[streamID] = body
    }

    /// Queues a SETTINGS frame ([RFC 9113 §6.5](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.5)).
    ///
    /// Every session should submit SETTINGS first: libnghttp2 does not. The values take effect locally (see
    /// ``localSetting(_:)``) when the peer acknowledges them. A SETTINGS_MAX_HEADER_LIST_SIZE is enforced by this
    /// session on received field blocks from now on: a larger request is answered with 431, any other larger
    /// field block resets its stream.
    public func submitSettings(_ settings: [Setting]) throws {
        let entries = settings.map(\.cValue)
        try NGHTTP2Error.check(nghttp2_submit_settings(handle, 0, entries, entries.count))
        if let limit = settings.last(where: { $0.id == .maxHeaderListSize }) {
            fieldBlock.limit = Int(limit.value)
        }
    }

    /// Queues a PING with 8 bytes of opaque data ([RFC 9113 §6.7](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.7)).
    /// The peer's ACK arrives as a received ``Frame/Payload/ping(opaqueData:)`` frame with ``FrameFlags/ack``.
    public func submitPing(opaqueData: UInt64 = 0) throws {
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 8) { bytes in
            for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: opaqueData >> (56 - 8 * index)) }
            try NGHTTP2Error.check(nghttp2_submit_ping(handle, 0, bytes.baseAddress))
        }
    }

    /// Queues RST_STREAM for `streamID` ([RFC 9113 §6.4](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.4)).
    public func submitRSTStream(streamID: Int32, errorCode: ErrorCode) throws {
        try NGHTTP2Error.check(nghttp2_submit_rst_stream(handle, 0, streamID, errorCode.rawValue))
    }

    /// Queues GOAWAY ([RFC 9113 §6.8](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.8)).
    ///
    /// - Parameters:
    ///   - lastStreamID: the last peer-initiated stream that was or will be processed; `nil` means the last one
    ///     this session processed (``lastProcessedStreamID``).
    ///   - errorCode: why the connection ends.
    ///   - debugData: opaque diagnostic bytes.
    public func submitGoaway(lastStreamID: Int32? = nil, errorCode: ErrorCode = .noError, debugData: [UInt8] = []) throws {
        let last = lastStreamID ?? lastProcessedStreamID
        try NGHTTP2Error.check(nghttp2_submit_goaway(handle, 0, last, errorCode.rawValue, debugData, debugData.count))
    }

    /// Queues the graceful-shutdown notice: a GOAWAY with the maximum stream ID, so the client stops opening
    /// streams while those in flight finish (server only; follow it with ``submitGoaway(lastStreamID:errorCode:debugData:)``).
    public func submitShutdownNotice() throws {
        try NGHTTP2Error.check(nghttp2_submit_shutdown_notice(handle))
    }

    /// Queues a WINDOW_UPDATE of `increment` bytes for `streamID` (0: the connection).
    ///
    /// With ``Options/noAutoWindowUpdate`` prefer ``consume(streamID:count:)``, which keeps libnghttp2's accounting right.
    public func submitWindowUpdate(streamID: Int32, increment: Int32) throws {
        try NGHTTP2Error.check(nghttp2_submit_window_update(handle, 0, streamID, increment))
    }

    /// Queues a PUSH_PROMISE on `streamID` (server only) promising a response to the request in `fields`.
    /// Returns the promised stream's ID; answer it with ``submitResponse(streamID:_:body:)``.
    /// - Throws: ``NGHTTP2Error/pushDisabled`` when the client sent SETTINGS_ENABLE_PUSH = 0.
    public func submitPushPromise(streamID: Int32, _ fields: [HeaderField]) throws -> Int32 {
        try HeaderBlock.withNameValues(fields) { nva, count in
            try NGHTTP2Error.check(nghttp2_submit_push_promise(handle, 0, streamID, nva, count, nil))
        }
    }

    /// Queues an RFC 7540 PRIORITY frame (deprecated by RFC 9113 §5.3.2).
    public func submitPriority(streamID: Int32, _ priority: PrioritySpec) throws {
        var spec = priority.cValue
        try NGHTTP2Error.check(nghttp2_submit_priority(handle, 0, streamID, &spec))
    }

    /// Queues a PRIORITY_UPDATE ([RFC 9218 §7.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-7.1)) for
    /// `streamID` with a Priority field value such as `"u=1, i"` (client only). libnghttp2 drops it silently once
    /// the server's SETTINGS arrived without SETTINGS_NO_RFC7540_PRIORITIES = 1.
    public func submitPriorityUpdate(streamID: Int32, fieldValue: String) throws {
        var value = Array(fieldValue.utf8)
        try NGHTTP2Error.check(nghttp2_submit_priority_update(handle, 0, streamID, &value, value.count))
    }

    /// Server: changes the priority a stream's response is sent with, in the extensible scheme
    /// ([RFC 9218 §4](https://www.rfc-editor.org/rfc/rfc9218.html#section-4)): `urgency` 0 (most urgent) to 7 (out of
    /// range becomes 7), and whether it is `incremental`. With `ignoringClientSignals`, later `priority` fields and
    /// PRIORITY_UPDATE frames from the client no longer change it (RFC 9218 §8 lets a server override the client).
    ///
    /// Does nothing when this session did not submit SETTINGS_NO_RFC7540_PRIORITIES = 1.
    /// - Throws: ``NGHTTP2Error/invalidState`` on a client (which sends PRIORITY_UPDATE instead),
    ///   ``NGHTTP2Error/invalidArgument`` when the stream does not exist.
    public func changeStreamPriority(streamID: Int32, urgency: Int, incremental: Bool, ignoringClientSignals: Bool = false) throws {
        var priority = nghttp2_extpri(urgency: UInt32(clamping: urgency), inc: incremental ? 1 : 0)
        try NGHTTP2Error.check(nghttp2_session_change_extpri_stream_priority(handle, streamID, &priority, ignoringClientSignals ? 1 : 0))
    }

    /// Queues an ALTSVC frame ([RFC 7838 §4](https://www.rfc-editor.org/rfc/rfc7838.html#section-4)), server only:
    /// on stream 0 with an `origin`, or on a stream with an empty origin.
    public func submitAltsvc(streamID: Int32 = 0, origin: String, fieldValue: String) throws {
        var originBytes = Array(origin.utf8)
        var valueBytes = Array(fieldValue.utf8)
        try NGHTTP2Error.check(
            nghttp2_submit_altsvc(handle, 0, streamID, &originBytes, originBytes.count, &valueBytes, valueBytes.count)
        )
    }

    /// Queues an ORIGIN frame ([RFC 8336 §2](https://www.rfc-editor.org/rfc/rfc8336.html#section-2)), server only.
    public func submitOrigin(_ origins: [String]) throws {
        // The origins' bytes laid out one after another in one allocation, and the entries pointing into it, for the
        // length of the call (libnghttp2 copies them).
        let byteCount = origins.reduce(0) { $0 + $1.utf8.count }
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(byteCount, 1)) { bytes in
            try withUnsafeTemporaryAllocation(of: nghttp2_origin_entry.self, capacity: max(origins.count, 1)) { entries in
                var offset = 0
                for (index, origin) in origins.enumerated() {
                    let start = bytes.baseAddress! + offset
                    let count = origin.copyUTF8(to: start)
                    entries.baseAddress!.advanced(by: index).initialize(to: nghttp2_origin_entry(origin: start, origin_len: count))
                    offset += count
                }
                try NGHTTP2Error.check(nghttp2_submit_origin(handle, 0, entries.baseAddress, origins.count))
            }
        }
    }

    /// Queues GOAWAY with `errorCode` and stops the session: it then sends that GOAWAY and nothing more.
    ///
    /// - Parameters:
    ///   - errorCode: the GOAWAY's code.
    ///   - lastStreamID: the last processed stream to report; `nil` for ``lastProcessedStreamID``.
    public func terminate(errorCode: ErrorCode, lastStreamID: Int32? = nil) throws {
        if let lastStreamID {
            try NGHTTP2Error.check(nghttp2_session_terminate_session2(handle, lastStreamID, errorCode.rawValue))
        } else {
            try NGHTTP2Error.check(nghttp2_session_terminate_session(handle, errorCode.rawValue))
        }
    }

    /// Lets a stream whose provider returned ``DataProvider/Result/deferred`` send again. Safe to call when nothing
    /// is deferred or the stream is gone (it then does nothing).
    public func resumeData(streamID: Int32) {
        _ = nghttp2_session_resume_data(handle, streamID)
    }

    private func withPriority<R>(_ priority: PrioritySpec?, _ body: (UnsafePointer<nghttp2_priority_spec>?) throws -> R) rethrows -> R {
        guard var spec = priority?.cValue else { return try body(nil) }
        return try body(&spec)
    }

    private func withDataProvider<R>(_ body: DataProvider?, _ call: (UnsafePointer<nghttp2_data_provider>?) throws -> R) rethrows -> R {
        guard body != nil else { return try call(nil) }
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: Trampolines.readData)
        return try call(&provider)
    }
}
