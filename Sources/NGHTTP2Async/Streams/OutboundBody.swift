import NIOCore
import HTTPTypes
import NGHTTP2

/// A body on its way out: chunks queued by a writer (or given whole), drained by libnghttp2's DATA reads as
/// flow control allows. Lives on the connection's event loop.
final class OutboundBody: DataSource {
    private var chunks = ChunkQueue()
    private(set) var queuedBytes = 0
    private var isFinished = false
    private var trailers: HTTPFields?
    private var failure: (any Error)?
    private var waiter: CheckedContinuation<Void, any Error>?
    /// A writer waits while more than this is queued.
    let highWatermark: Int
    var streamID: Int32 = 0

    init(highWatermark: Int) {
        self.highWatermark = highWatermark
    }

    /// A body that is complete from the start.
    convenience init(bytes: ByteBuffer, trailers: HTTPFields?) {
        self.init(highWatermark: .max)
        if bytes.readableBytes > 0 {
            chunks.append(bytes)
            queuedBytes = bytes.readableBytes
        }
        self.trailers = trailers
        isFinished = true
    }

    // MARK: libnghttp2 side (inside Session.send)

    /// Whether the whole body, with its end, was handed to libnghttp2.
    private(set) var isComplete = false

    /// Fills a DATA frame's payload.
    func read(into buffer: UnsafeMutableRawBufferPointer, streamID: Int32, session: Session) throws -> DataProvider.Result {
        if failure != nil { throw Session.StreamReset(.internalError) }
        var written = 0
        while written < buffer.count, var first = chunks.first {
            let count = min(first.readableBytes, buffer.count - written)
            first.withUnsafeReadableBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: buffer[written..<(written + count)]).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: source[..<count])
                )
            }
            first.moveReaderIndex(forwardBy: count)
            written += count
            if first.readableBytes == 0 {
                chunks.removeFirst()
            } else {
                chunks.replaceFirst(with: first)
            }
        }
        queuedBytes -= written
        if let waiter, queuedBytes <= highWatermark / 2 {
            self.waiter = nil
            waiter.resume()
        }
        guard chunks.isEmpty, isFinished else { return written == 0 ? .deferred : .bytes(written) }
        isComplete = true
        if let trailers {
            var fields: [HeaderField] = []
            trailers.appendHTTP2Fields(to: &fields)
            try session.submitTrailer(streamID: streamID, fields: fields)
            return .bytes(written, flags: [.endOfData, .noEndStream])
        }
        return .bytes(written, flags: .endOfData)
    }

    // MARK: Writer side (on the event loop)

    /// Queues a chunk; `continuation` resumes once the queue is below the high watermark.
    func write(_ chunk: ByteBuffer, continuation: CheckedContinuation<Void, any Error>) {
        if let failure { return continuation.resume(throwing: failure) }
        guard !isFinished else { return continuation.resume(throwing: HTTP2Error.sessionClosed) }
        if chunk.readableBytes > 0 {
            chunks.append(chunk)
            queuedBytes += chunk.readableBytes
        }
        if queuedBytes > highWatermark {
            waiter = continuation
        } else {
            continuation.resume()
        }
    }

    /// Ends the body. Returns false if it had ended already.
    @discardableResult
    func finish(trailers: HTTPFields?) -> Bool {
        guard !isFinished, failure == nil else { return false }
        isFinished = true
        self.trailers = trailers
        return true
    }

    /// The stream is gone: the writer learns why.
    func fail(_ error: any Error) {
        guard failure == nil else { return }
        failure = error
        chunks.removeAll()
        queuedBytes = 0
        if let waiter {
            self.waiter = nil
            waiter.resume(throwing: error)
        }
    }
}

extension OutboundBody {
    /// A sendable handle on an outbound body, for the task that writes it.
    struct Reference: Sendable {
        let body: NIOLoopBound<OutboundBody>
        let connection: ConnectionReference

        func write(_ chunk: ByteBuffer) async throws {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                connection.execute { handler in
                    let body = self.body.value
                    body.write(chunk, continuation: continuation)
                    handler.bodyHasData(body)
                }
            }
        }

        func finish(trailers: HTTPFields?) async throws {
            connection.execute { handler in
                let body = self.body.value
                if body.finish(trailers: trailers) { handler.bodyHasData(body) }
            }
        }

        /// Ends the body without trailers if the writer did not.
        func finishIfNeeded() {
            connection.execute { handler in
                let body = self.body.value
                if body.finish(trailers: nil) { handler.bodyHasData(body) }
            }
        }

        /// The producer failed: reset the stream, once what it wrote before (and the response head) went out.
        /// Always a hop: a producer may fail while its handler still runs inside the read burst that delivered the
        /// request, and an RST_STREAM submitted together with the head would keep the head from being sent at all.
        func abort(_ error: any Error) {
            let body = self.body
            connection.eventLoop.execute { [handler = connection.handler] in
                handler.value.abortBody(streamID: body.value.streamID, error: error)
            }
        }
    }
}
