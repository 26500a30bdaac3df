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
        case .rstStream:
            streams[frame.streamID]?.resetByPeer = true
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
        switch stream.inbound.receive(bytes) {
        case .buffered:
            break
        case .wakeReader:
            readersToWake.append(stream.inbound)
            scheduleFlush()  // a no-op inside a read burst: its end wakes the readers
        case .discard:
            try? session.consume(streamID: streamID, count: bytes.count)
        }
    }

    private func streamClosed(_ streamID: Int32, _ errorCode: ErrorCode) {
        headerBlockAbandoned(streamID: streamID)
        guard let stream = streamRemoved(streamID) else { return }
        // Made only where something waits (the common clean end has nothing left waiting).
        var error: HTTP2Error {
            switch errorCode {
            case .refusedStream: .notProcessed(streamID: streamID)
            default: .streamReset(streamID: streamID, errorCode: errorCode, byPeer: stream.resetByPeer)
            }
        }
        guard errorCode == .noError else {
            logger.debug("stream \(streamID) closed: \(error)")
            return fail(stream, error)
        }
        // A clean end: only what is still waiting learns that the stream is over (the common case: nothing).
        if let response = stream.response {
            stream.response = nil
            response.resume(throwing: HTTP2Error.malformedMessage("stream \(streamID) ended without a response"))
        }
        if !stream.inbound.hasEnded {
            let discarded = stream.inbound.fail(error)
            if discarded > 0 { try? session.consumeConnection(count: discarded) }
        }
        if let outbound = stream.outbound, !outbound.isComplete { outbound.fail(error) }
        stream.outbound = nil
    }

    /// The response ended while the request body is still coming: ask the client to stop (RFC 9113 §8.1).
    private func endStreamSent(_ streamID: Int32) {
        guard session.isRemotelyClosed(streamID: streamID) == false else { return }
        try? session.submitRSTStream(streamID: streamID, errorCode: .noError)
    }

    private func frameNotSent(_ frame: Frame, _ error: NGHTTP2Error) {
        logger.debug("frame not sent (\(error)): \(frame.type) on stream \(frame.streamID)")
        guard frame.type == .headers, let stream = streamRemoved(frame.streamID) else { return }
        switch error {
        case .startStreamNotAllowed, .streamClosing, .sessionClosing:
            fail(stream, HTTP2Error.notProcessed(streamID: frame.streamID))
        default:
            fail(stream, HTTP2Error.protocolViolation(error))
        }
    }
}
