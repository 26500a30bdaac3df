import NGHTTP2

/// A `Session` driven like the library's `ConnectionHandler` drives one: the same kinds of callbacks (data credited
/// as it arrives, END_STREAM sent before the request ended answered with RST_STREAM NO_ERROR, invalid frames and
/// error messages observed), responses with every kind of `DataProvider`, and `send` after every `receive`.
public final class SessionHarness {
    public let session: Session
    /// Streams whose provider answered `.deferred`, resumed after the next receive.
    var deferred: Set<Int32> = []
    /// Streams with a provider that may now go on.
    var released: Set<Int32> = []
    public private(set) var requests = 0
    var fieldsInBlock = 0

    public init(role: Session.Role, settings: [Setting], connectionWindow: Int32? = nil) throws {
        var options = Session.Options()
        options.noAutoWindowUpdate = true  // as ConnectionHandler: reading credits the windows
        session = try Session(role: role, options: options)
        installCallbacks()
        try session.submitSettings(settings)
        if let connectionWindow { try session.setLocalWindowSize(connectionWindow) }
    }

    func installCallbacks() {
        let isServer = session.role == .server
        session.callbacks.onBeginHeaders = { [unowned self] streamID, _ in
            invariant(streamID > 0, "field block on stream \(streamID)")
            fieldsInBlock = 0
        }
        session.callbacks.onHeader = { [unowned self] _, _, field in
            fieldsInBlock += 1
            _ = field.name.utf8.count + field.value.utf8.count
        }
        session.callbacks.onFrameReceived = { [unowned self] frame in frameReceived(frame) }
        session.callbacks.onDataChunk = { [unowned self] streamID, bytes in
            // ConnectionHandler credits what nobody reads at once, and what a reader takes later: both consume.
            try? session.consume(streamID: streamID, count: bytes.count)
        }
        session.callbacks.onStreamClosed = { [unowned self] streamID, _ in
            deferred.remove(streamID)
            released.remove(streamID)
        }
        session.callbacks.onFrameNotSent = { _, _ in }
        if isServer {
            session.callbacks.onEndStreamSent = { [unowned self] streamID in
                guard session.isRemotelyClosed(streamID: streamID) == false else { return }
                try? session.submitRSTStream(streamID: streamID, errorCode: .noError)
            }
        }
        session.callbacks.onInvalidFrameReceived = { frame, error in _ = "\(error)\n\(frame)" }
        session.callbacks.onErrorMessage = { error, message in _ = "\(message) (\(error.code))" }
        session.callbacks.onFrameSent = { frame in _ = "\(frame)" }
        session.callbacks.onBeginFrame = { header in _ = header.length }
        session.callbacks.beforeFrameSend = { _ in true }
    }

    func frameReceived(_ frame: Frame) {
        _ = "\(frame)"
        guard session.role == .server, case .headers(let category, let fields, _, _) = frame.payload, category == .request else {
            return
        }
        requests += 1
        respond(streamID: frame.streamID, fields: fields, kind: requests % 6)
    }

    /// Answers a request: the kind picks the body's provider.
    func respond(streamID: Int32, fields: [HeaderField], kind: Int) {
        let body = Array("hello \(fields[name: ":path"] ?? "?")\n".utf8)
        let head: [HeaderField] = [[":status", "200"], ["content-type", "text/plain"], ["server", "fuzz"]]
        switch kind {
        case 0:
            try? session.submitResponse(streamID: streamID, head)
        case 1:
            try? session.submitResponse(streamID: streamID, head, body: .bytes(body))
        case 2:
            // Larger than the default windows: the rest waits for the peer's WINDOW_UPDATE.
            try? session.submitResponse(streamID: streamID, head, body: .bytes([UInt8](repeating: 0x61, count: 70_000)))
        case 3:
            try? session.submitResponse(streamID: streamID, head, body: .zeroCopy(body + [UInt8](repeating: 0x62, count: 20_000)))
        case 4:
            try? session.submitHeaders(streamID: streamID, [[":status", "103"], ["link", "</a>; rel=preload"]])
            try? session.submitResponse(streamID: streamID, head, body: .bytes(body, trailers: [["grpc-status", "0"]]))
        default:
            try? session.submitResponse(streamID: streamID, head, body: deferredBody(body))
        }
    }

    /// A provider that first defers, then (once resumed) sends its bytes and trailers.
    public func deferredBody(_ body: [UInt8]) -> DataProvider {
        var offset = 0
        return DataProvider(read: { [unowned self] buffer, streamID in
            guard released.contains(streamID) else {
                deferred.insert(streamID)
                return .deferred
            }
            let count = min(buffer.count, body.count - offset)
            body.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: count)
            }
            offset += count
            guard offset == body.count else { return .bytes(count) }
            try session.submitTrailer(streamID: streamID, fields: [["x-checksum", "\(body.count)"]])
            return .bytes(count, flags: [.endOfData, .noEndStream])
        })
    }

    /// Feeds one chunk, then sends; returns false once the session is done (a fatal error or nothing more to do).
    public func receive(_ chunk: UnsafeRawBufferPointer) -> Bool {
        do {
            let consumed = try session.receive(chunk)
            invariant(consumed == chunk.count, "receive took \(consumed) of \(chunk.count) bytes (nothing pauses)")
        } catch let error as NGHTTP2Error {
            // A fatal error from receive is a normal outcome for bad input: the connection ends.
            invariant(error.isFatal, "receive threw a non-fatal \(error)")
            try? session.terminate(errorCode: .protocolError)
            flush()
            return false
        } catch {
            fatalError("receive threw \(error), but no callback throws")
        }
        flush()
        return session.wantsRead || session.wantsWrite
    }

    /// Sends what is queued, resumes deferred bodies, and sends again.
    public func flush() {
        send()
        guard !deferred.isEmpty else { return }
        let resume = deferred
        deferred.removeAll()
        for streamID in resume {
            released.insert(streamID)
            session.resumeData(streamID: streamID)
        }
        send()
    }

    func send() {
        do {
            var total = 0
            try session.send { total += $0.count }
            _ = session.wantsWrite
        } catch let error as NGHTTP2Error {
            invariant(error.isFatal || error == .callbackFailure, "send threw \(error)")
        } catch {
            fatalError("send threw \(error)")
        }
    }
}
