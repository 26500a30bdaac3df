import NIOCore
import HTTPTypes
import Logging
import NGHTTP2

extension ConnectionHandler {
    func installCallbacks() {
        if configuration.timeouts.headerBlock != nil {
            session.callbacks.onBeginHeaders = { [unowned self] streamID, _ in headerBlockStarted(streamID: streamID) }
        }
        session.callbacks.onFrameReceived = { [unowned self] frame in frameReceived(frame) }
        session.callbacks.onDataChunk = { [unowned self] streamID, bytes in dataReceived(streamID: streamID, bytes) }
        session.callbacks.onStreamClosed = { [unowned self] streamID, errorCode in streamClosed(streamID, errorCode) }
        session.callbacks.onFrameNotSent = { [unowned self] frame, error in frameNotSent(frame, error) }
        let countsGlitches = configuration.timeouts.glitches != nil
        if countsGlitches || configuration.metrics != nil {
            session.callbacks.onRSTStreamSent = { [unowned self] _, errorCode in
                configuration.metrics?.rstStream(.sent, errorCode)
                guard countsGlitches else { return }
                // A reset for something the peer did (not the application's CANCEL or INTERNAL_ERROR) is a glitch.
                switch errorCode {
                case .protocolError, .flowControlError, .streamClosed, .frameSizeError, .refusedStream, .compressionError:
                    peerGlitched()
                default:
                    break
                }
            }
        }
        session.callbacks.onGoAwaySent = { [unowned self] _, errorCode, debugData in goAwaySent(errorCode, debugData) }
        if isServer {
            session.callbacks.onEndStreamSent = { [unowned self] streamID in endStreamSent(streamID) }
        }
        session.callbacks.onInvalidFrameReceived = { [unowned self] frame, error in
            headerBlockAbandoned(streamID: frame.streamID)
            if logger.logLevel <= .debug { logger.debug("invalid frame received: \(error)\n\(frame)") }
        }
        if logger.logLevel <= .debug {
            session.callbacks.onErrorMessage = { [unowned self] error, message in
                logger.debug("nghttp2: \(message) (\(error.code))")
            }
        }
        let observer = configuration.frameObserver
        if logger.logLevel <= .trace || observer != nil {
            session.callbacks.onFrameSent = { [unowned self] frame in
                if logger.logLevel <= .trace { logger.trace("send \(frame)") }
                observer?(.sent, frame)
            }
        }
    }

    private func frameReceived(_ frame: Frame) {
        if logger.logLevel <= .trace { logger.trace("recv \(frame)") }
        configuration.frameObserver?(.received, frame)
        peerFrameReceived(frame)
        switch frame.payload {
        case .headers(let category, let fields, _, _):
            fieldBlockReceived(streamID: frame.streamID, category: category, fields: fields, endStream: frame.flags.contains(.endStream))
        case .data:
            if frame.flags.contains(.endStream) { streams[frame.streamID]?.inbound.finish(trailers: nil) }
        case .pushPromise(let promisedStreamID, let fields):
            pushPromiseReceived(associatedStreamID: frame.streamID, promisedStreamID: promisedStreamID, fields: fields)
        case .rstStream(let errorCode):
            // libnghttp2 closes the stream right after this callback.
            peerResetStream = frame.streamID
            configuration.metrics?.rstStream(.received, errorCode)
        default:
            break
        }
    }

    private func fieldBlockReceived(streamID: Int32, category: HeadersCategory, fields: [HeaderField], endStream: Bool) {
        switch role {
        case .client:
            clientFieldBlock(streamID: streamID, fields: fields, endStream: endStream)
        case .server(let handler):
            if category == .request {
                requestReceived(streamID: streamID, fields: fields, endStream: endStream, handler: handler)
            } else if let stream = streams[streamID] {
                stream.inbound.finish(trailers: HTTPFields(http2Fields: fields))
            }
        }
    }

    private func dataReceived(streamID: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[streamID] else {
            // Nobody reads this stream any more: give the bytes back to the connection window at once.
            try? session.consume(streamID: streamID, count: bytes.count)
            return
        }
        if stream.timeouts != nil { responseBytesReceived(stream) }
        switch stream.inbound.receive(bytes) {
        case .buffered:
            break
        case .wakeReader:
            readersToWake.append(stream.inbound)
            scheduleFlush()  // a no-op inside a read burst: its end wakes the readers
        case .discard where stream.isDraining:
            // The response has ended: the rest of the request is dropped, and only the connection's window is given
            // back. Once the stream's window is used up the client cannot send more: it is asked to stop at once.
            try? session.consumeConnection(count: bytes.count)
            if let window = session.effectiveLocalWindowSize(streamID: streamID),
                let received = session.effectiveReceivedDataLength(streamID: streamID), window - received <= 0
            {
                stopDraining(streamID)
            }
        case .discard:
            try? session.consume(streamID: streamID, count: bytes.count)
        }
    }

    private func streamClosed(_ streamID: Int32, _ errorCode: ErrorCode) {
        headerBlockAbandoned(streamID: streamID)
        let stream = streamRemoved(streamID)
        let byPeer = peerResetStream == streamID
        history.streamClosed(
            streamID,
            byPeer ? .resetByPeer : errorCode != .noError || stream?.resetLocally == true ? .resetLocally : .ended
        )
        guard let stream else { return }
        if stream.isDraining { drainEnded(streamID) }
        // Made only where something waits (the common clean end has nothing left waiting).
        var error: HTTP2Error {
            switch errorCode {
            case .refusedStream: .notProcessed(streamID: streamID)
            default: .streamReset(streamID: streamID, errorCode: errorCode, byPeer: byPeer)
            }
        }
        // A server's stream the client reset, even with NO_ERROR, is abandoned: its handler is cancelled.
        guard errorCode == .noError, !(isServer && byPeer) else {
            logger.debug("stream \(streamID) closed: \(error)")
            return fail(stream, error)
        }
        // A clean end: only what is still waiting learns that the stream is over (the common case: nothing).
        if let response = stream.response {
            stream.response = nil
            response.resume(throwing: HTTP2Error.malformedMessage("stream \(streamID) ended without a response"))
        }
        if let pushed = stream.pushedResponse {
            stream.pushedResponse = nil
            pushed.fail(HTTP2Error.malformedMessage("pushed stream \(streamID) ended without a response"))
        }
        if !stream.inbound.hasEnded {
            let discarded = stream.inbound.fail(error)
            if discarded > 0 { try? session.consumeConnection(count: discarded) }
        }
        if let outbound = stream.outbound, !outbound.isComplete { outbound.fail(error) }
        stream.outbound = nil
    }

    /// The response ended while the request is still coming. The server may ask the client to stop with RST_STREAM
    /// NO_ERROR (RFC 9113 §8.1), but not at once: the request's frames already on the wire would then arrive on a
    /// stream this side reset, where they must be ignored (§5.1), and a malformed one would go unanswered (§8.1.1).
    /// So the stream drains first: what comes is read and dropped until the client ends the request, the stream's
    /// window runs out, or ``ConnectionStateMachine/Timeouts/drain`` passes.
    private func endStreamSent(_ streamID: Int32) {
        guard session.isRemotelyClosed(streamID: streamID) == false, let stream = streams[streamID], !stream.isDraining else { return }
        drainStarted(stream)
    }

    private func frameNotSent(_ frame: Frame, _ error: NGHTTP2Error) {
        logger.debug("frame not sent (\(error)): \(frame.type) on stream \(frame.streamID)")
        guard frame.type == .headers, let stream = streamRemoved(frame.streamID) else { return }
        // A client's request whose HEADERS did not go out never left this side, whatever the reason: retry-safe.
        var isRequest: Bool {
            if case .headers(.request, _, _, _) = frame.payload { return true }
            return false
        }
        if (!isServer && isRequest) || error == .startStreamNotAllowed || error == .streamClosing || error == .sessionClosing {
            return fail(stream, HTTP2Error.notProcessed(streamID: frame.streamID, detail: "its HEADERS were not sent: \(error)"))
        }
        fail(stream, HTTP2Error.protocolViolation(error))
    }
}
