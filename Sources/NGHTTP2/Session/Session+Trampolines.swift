internal import CNGHTTP2

/// The C callbacks libnghttp2 calls, each turning its arguments into Swift values and calling the session's
/// typed ``Session/Callbacks``. Swift errors never cross back into C: they are stored on the session and
/// rethrown when `mem_recv` / `mem_send` return.
enum Trampolines {
    static let callbackFailure = Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    static let temporalFailure = Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)

    static func install(on callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSent)
        nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks, onFrameNotSent)
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, onInvalidFrame)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks, onBeginFrame)
        nghttp2_session_callbacks_set_before_frame_send_callback(callbacks, beforeFrameSend)
        nghttp2_session_callbacks_set_error_callback2(callbacks, onError)
        nghttp2_session_callbacks_set_send_data_callback(callbacks, sendData)
        nghttp2_session_callbacks_set_unpack_extension_callback(callbacks, unpackExtension)
        nghttp2_session_callbacks_set_on_extension_chunk_recv_callback(callbacks, onExtensionChunk)
    }

    /// Runs a callback body; a thrown ``Session/StreamReset`` resets `streamID`, any other error fails the session.
    @inline(__always)
    static func run(_ session: Session, streamID: Int32, afterReset: Int32 = 0, _ body: () throws -> Void) -> Int32 {
        do {
            try body()
            return 0
        } catch let reset as Session.StreamReset {
            nghttp2_submit_rst_stream(session.handle, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, reset.errorCode.rawValue)
            return afterReset
        } catch {
            if session.callbackError == nil { session.callbackError = error }
            return callbackFailure
        }
    }

    static func fieldStreamID(_ frame: nghttp2_frame) -> Int32 {
        frame.hd.type == UInt8(NGHTTP2_PUSH_PROMISE.rawValue) ? frame.push_promise.promised_stream_id : frame.hd.stream_id
    }

    static func category(_ frame: nghttp2_frame) -> HeadersCategory {
        frame.hd.type == UInt8(NGHTTP2_PUSH_PROMISE.rawValue) ? .request : HeadersCategory(frame.headers.cat.rawValue)
    }

    static let onBeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let frame = frame?.pointee else { return 0 }
            session.fieldBlock.begin()
            guard let callback = session.callbacks.onBeginHeaders else { return 0 }
            let streamID = fieldStreamID(frame)
            // After a reset, TEMPORAL_CALLBACK_FAILURE makes libnghttp2 skip the rest of the field block.
            return run(session, streamID: streamID, afterReset: temporalFailure) { try callback(streamID, category(frame)) }
        }
    }

    static let onHeader: nghttp2_on_header_callback = { _, frame, name, nameLength, value, valueLength, flags, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let frame = frame?.pointee else { return 0 }
            let streamID = fieldStreamID(frame)
            guard
                session.fieldBlock.add(
                    streamID: streamID,
                    name: name,
                    nameLength: nameLength,
                    value: value,
                    valueLength: valueLength,
                    flags: HeaderField.Flags(rawValue: flags & 0x1)
                )
            else { return 0 }  // over the advertised limit: answered when the block ends (onFrameReceived)
            guard let callback = session.callbacks.onHeader, let field = session.fieldBlock.fields.last else { return 0 }
            // After a reset, TEMPORAL_CALLBACK_FAILURE makes libnghttp2 skip the rest of the field block.
            return run(session, streamID: streamID, afterReset: temporalFailure) { try callback(streamID, category(frame), field) }
        }
    }

    static let onDataChunk: nghttp2_on_data_chunk_recv_callback = { _, _, streamID, data, length, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let callback = session.callbacks.onDataChunk else { return 0 }
            return run(session, streamID: streamID) {
                try callback(streamID, UnsafeRawBufferPointer(start: data, count: length))
            }
        }
    }

    static let onFrameReceived: nghttp2_on_frame_recv_callback = { _, frame, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let frame else { return 0 }
            let hd = frame.pointee.hd
            let isFieldBlock = hd.type == UInt8(NGHTTP2_HEADERS.rawValue) || hd.type == UInt8(NGHTTP2_PUSH_PROMISE.rawValue)
            if isFieldBlock, session.fieldBlock.takeOversized(fieldStreamID(frame.pointee)) {
                session.rejectOversizedFieldBlock(streamID: fieldStreamID(frame.pointee), category: category(frame.pointee))
                return 0
            }
            guard let callback = session.callbacks.onFrameReceived else { return 0 }
            let decoded: Frame
            if isFieldBlock {
                decoded = Frame(frame, fields: session.fieldBlock.fields)
            } else if !session.extensionPayload.isEmpty {
                decoded = Frame(frame, extensionPayload: session.extensionPayload)
                session.extensionPayload.removeAll(keepingCapacity: true)
            } else {
                decoded = Frame(frame)
            }
            return run(session, streamID: hd.stream_id) { try callback(decoded) }
        }
    }

    static let onFrameSent: nghttp2_on_frame_send_callback = { _, frame, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let frame else { return 0 }
            let hd = frame.pointee.hd
            if let callback = session.callbacks.onEndStreamSent, hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
                hd.type == UInt8(NGHTTP2_DATA.rawValue) || hd.type == UInt8(NGHTTP2_HEADERS.rawValue)
            {
                let rv = run(session, streamID: hd.stream_id) { try callback(hd.stream_id) }
                if rv != 0 { return rv }
            }
            if let callback = session.callbacks.onRSTStreamSent, hd.type == UInt8(NGHTTP2_RST_STREAM.rawValue) {
                let errorCode = ErrorCode(rawValue: frame.pointee.rst_stream.error_code)
                let rv = run(session, streamID: hd.stream_id) { try callback(hd.stream_id, errorCode) }
                if rv != 0 { return rv }
            }
            if let callback = session.callbacks.onGoAwaySent, hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
                let goaway = frame.pointee.goaway
                let debugData = goaway.opaque_data.map { Array(UnsafeBufferPointer(start: $0, count: goaway.opaque_data_len)) } ?? []
                let rv = run(session, streamID: 0) {
                    try callback(goaway.last_stream_id, ErrorCode(rawValue: goaway.error_code), debugData)
                }
                if rv != 0 { return rv }
            }
            guard let callback = session.callbacks.onFrameSent else { return 0 }
            return run(session, streamID: hd.stream_id) { try callback(Frame(frame)) }
        }
    }

    static let onFrameNotSent: nghttp2_on_frame_not_send_callback = { _, frame, errorCode, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let frame else { return 0 }
            let streamID = frame.pointee.hd.stream_id
            // A request whose HEADERS never left never opens its stream, so no close callback will clean up.
            if frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), nghttp2_session_find_stream(session.handle, streamID) == nil {
                session.providers.removeValue(forKey: streamID)
                session.streamUserData.removeValue(forKey: streamID)
            }
            guard let callback = session.callbacks.onFrameNotSent else { return 0 }
            return run(session, streamID: streamID) { try callback(Frame(frame), NGHTTP2Error(code: errorCode)) }
        }
    }

    static let onInvalidFrame: nghttp2_on_invalid_frame_recv_callback = { _, frame, errorCode, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let frame, let callback = session.callbacks.onInvalidFrameReceived else { return 0 }
            let fields = session.fieldBlock.fields
            let isFieldBlock = frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue)
            return run(session, streamID: frame.pointee.hd.stream_id) {
                try callback(Frame(frame, fields: isFieldBlock ? fields : nil), NGHTTP2Error(code: errorCode))
            }
        }
    }

    static let onStreamClose: nghttp2_on_stream_close_callback = { _, streamID, errorCode, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            session.providers.removeValue(forKey: streamID)
            if let callback = session.callbacks.onStreamClosed {
                do {
                    try callback(streamID, ErrorCode(rawValue: errorCode))
                } catch {
                    // Returning a failure here leaks memory in libnghttp2 < 1.55.1 (CVE-2023-35945): report it
                    // from receive/send instead, and let the close complete.
                    if session.callbackError == nil { session.callbackError = error }
                }
            }
            session.streamUserData.removeValue(forKey: streamID)
            return 0
        }
    }

    static let onBeginFrame: nghttp2_on_begin_frame_callback = { _, hd, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let hd, let callback = session.callbacks.onBeginFrame else { return 0 }
            return run(session, streamID: hd.pointee.stream_id) { try callback(FrameHeader(hd.pointee)) }
        }
    }

    static let beforeFrameSend: nghttp2_before_frame_send_callback = { _, frame, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let frame, let callback = session.callbacks.beforeFrameSend else { return 0 }
            var proceed = true
            let rv = run(session, streamID: frame.pointee.hd.stream_id) { proceed = try callback(Frame(frame)) }
            if rv == 0, !proceed { return Int32(NGHTTP2_ERR_CANCEL.rawValue) }
            return rv
        }
    }

    static let onError: nghttp2_error_callback2 = { _, errorCode, message, length, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let callback = session.callbacks.onErrorMessage else { return 0 }
            let text = message.map { $0.withMemoryRebound(to: UInt8.self, capacity: length) { String(bytes: $0, count: length) } } ?? ""
            callback(NGHTTP2Error(code: errorCode), text)
            return 0
        }
    }

    static let sendData: nghttp2_send_data_callback = { _, frame, frameHeader, length, _, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            guard let frame, let frameHeader, let output = session.output else { return callbackFailure }
            let streamID = frame.pointee.hd.stream_id
            guard let write = session.providers[streamID]?.writeZeroCopy else { return callbackFailure }
            let padding = frame.pointee.data.padlen
            var written = 0
            let emit: (UnsafeRawBufferPointer) -> Void = { bytes in
                output(bytes)
                written += bytes.count
            }
            emit(UnsafeRawBufferPointer(start: frameHeader, count: 9))
            if padding > 0 { withUnsafeBytes(of: UInt8(padding - 1)) { emit($0) } }
            let headerBytes = written
            let rv = run(session, streamID: streamID) { try write(length, streamID, emit) }
            guard rv == 0 else { return rv }
            guard written - headerBytes == length else {
                if session.callbackError == nil { session.callbackError = NGHTTP2Error.invalidArgument }
                return callbackFailure
            }
            if padding > 1 { [UInt8](repeating: 0, count: padding - 1).withUnsafeBytes { emit($0) } }
            session.zeroCopyCount += written
            return 0
        }
    }

    static let unpackExtension: nghttp2_unpack_extension_callback = { _, payload, _, _ in
        // The raw bytes were collected by onExtensionChunk; libnghttp2 only needs a non-error answer.
        payload?.pointee = nil
        return 0
    }

    static let onExtensionChunk: nghttp2_on_extension_chunk_recv_callback = { _, _, data, length, userData in
        Session.with(userData) { (session: Session) -> Int32 in
            if let data, length > 0 { session.extensionPayload.append(contentsOf: UnsafeBufferPointer(start: data, count: length)) }
            return 0
        }
    }

    /// The read callback of every ``DataProvider``: finds the stream's provider and lets it fill the buffer.
    static let readData: nghttp2_data_source_read_callback = { _, streamID, buffer, length, dataFlags, _, userData in
        Session.with(userData) { (session: Session) -> Int in
            guard let provider = session.providers[streamID] else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
            do {
                switch try provider.read(session, UnsafeMutableRawBufferPointer(start: buffer, count: length), streamID) {
                case .bytes(let count, let flags):
                    guard count >= 0, count <= length else { throw NGHTTP2Error.invalidArgument }
                    dataFlags?.pointee |= flags.rawValue
                    return count
                case .deferred:
                    return Int(NGHTTP2_ERR_DEFERRED.rawValue)
                }
            } catch let reset as Session.StreamReset {
                nghttp2_submit_rst_stream(session.handle, 0, streamID, reset.errorCode.rawValue)
                return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
            } catch {
                if session.callbackError == nil { session.callbackError = error }
                return Int(callbackFailure)
            }
        }
    }
}

extension Session {
    /// Answers a field block larger than the SETTINGS_MAX_HEADER_LIST_SIZE this session advertised: a server
    /// answers a request with 431 (RFC 6585 §5); otherwise the stream is reset with PROTOCOL_ERROR.
    func rejectOversizedFieldBlock(streamID: Int32, category: HeadersCategory) {
        if role == .server, category == .request {
            HeaderBlock.withNameValues([HeaderField(":status", "431")]) { nva, count in
                _ = nghttp2_submit_response(handle, streamID, nva, count, nil)
            }
        } else {
            nghttp2_submit_rst_stream(handle, 0, streamID, ErrorCode.protocolError.rawValue)
        }
    }
}
