import NIOCore
import HTTPTypes
import NGHTTP2

/// A streaming body on its way out: chunks queued by a writer, drained by libnghttp2's DATA reads as flow control
/// allows. Lives on the connection's event loop. (A body given whole is sent by its ``StreamContext``.)
final class OutboundBody: DataSource {
    private var chunks = ChunkQueue()
    private var isFinished = false
    private var trailers: HTTPFields?
    private var failure: (any Error)?
    /// The writer's side of the body's flow control.
    let gate: WriterGate
    var streamID: Int32 = 0

    /// A writer waits while more than `highWatermark` bytes are queued.
    init(highWatermark: Int) {
        gate = WriterGate(highWatermark: highWatermark)
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
        if written > 0 { gate.drained(written) }
        guard chunks.isEmpty, isFinished else { return written == 0 ? .deferred : .bytes(written) }
        isComplete = true
        return try endOfBody(written, trailers: trailers, streamID: streamID, session: session)
    }

    // MARK: Writer side (on the event loop)

    /// Queues a chunk the writer has passed its gate with.
    func enqueue(_ chunk: ByteBuffer) {
        guard failure == nil, !isFinished, chunk.readableBytes > 0 else { return }
        chunks.append(chunk)
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
        gate.fail(error)
    }
}

/// The last DATA read of a body: `written` bytes, then the end of the stream, or the trailers (HEADERS with
/// END_STREAM, RFC 9113 §8.1) submitted here and the DATA sent without END_STREAM.
func endOfBody(_ written: Int, trailers: HTTPFields?, streamID: Int32, session: Session) throws -> DataProvider.Result {
    guard let trailers else { return .bytes(written, flags: .endOfData) }
    var fields: [HeaderField] = []
    trailers.appendHTTP2Fields(to: &fields)
    try session.submitTrailer(streamID: streamID, fields: fields)
    return .bytes(written, flags: [.endOfData, .noEndStream])
}

extension OutboundBody {
    /// A sendable handle on a streaming body, for the task that writes it: its gate, and the transport that carries
    /// what it writes.
    struct Reference: Sendable {
        let streamID: Int32
        let gate: WriterGate
        let transport: any StreamTransport

        init(_ body: OutboundBody, transport: any StreamTransport) {
            self.streamID = body.streamID
            self.gate = body.gate
            self.transport = transport
        }

        /// Queues `chunk` and returns at once while the body is below its high watermark; above it, waits until
        /// libnghttp2 has taken half of what is queued. No round trip to the event loop per write.
        func write(_ chunk: ByteBuffer) async throws {
            try gate.admit(chunk.readableBytes)
            transport.enqueue(chunk, streamID: streamID)
            try await gate.waitForRoom()
        }

        func finish(trailers: HTTPFields?) async throws {
            try gate.close()
            transport.finishBody(streamID: streamID, trailers: trailers)
        }

        /// Ends the body without trailers if the writer did not.
        func finishIfNeeded() {
            try? gate.close()
            transport.finishBody(streamID: streamID, trailers: nil)
        }

        /// The producer failed: the stream is reset once what it wrote before (and the response head) went out.
        func abort(_ error: any Error) {
            transport.abortBody(streamID: streamID, error: error)
        }
    }
}

/// The writer's side of a streaming body's flow control, shared between the writing task and the event loop: the
/// writer counts what it queues and waits only while too much is queued; the event loop counts what libnghttp2 takes.
final class WriterGate: Sendable {
    private struct State {
        /// Bytes written and not yet taken by libnghttp2.
        var unsent = 0
        var waiter: CheckedContinuation<Void, any Error>?
        var failure: (any Error)?
        var isClosed = false
    }

    private let state = LockedState(State())
    let highWatermark: Int

    init(highWatermark: Int) {
        self.highWatermark = highWatermark
    }

    /// The writer queues `count` more bytes.
    /// - Throws: why the stream failed, or ``HTTP2Error/sessionClosed`` after the body was finished.
    func admit(_ count: Int) throws {
        try state.withLock { state in
            if let failure = state.failure { throw failure }
            if state.isClosed { throw HTTP2Error.sessionClosed }
            state.unsent += count
        }
    }

    /// The writer ends the body: later writes throw.
    func close() throws {
        try state.withLock { state in
            if let failure = state.failure { throw failure }
            state.isClosed = true
        }
    }

    /// Returns at once below the high watermark; above it, once libnghttp2 has taken enough (or the stream failed).
    func waitForRoom() async throws {
        if state.withLock({ $0.unsent <= highWatermark && $0.failure == nil }) { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let ready: Result<Void, any Error>? = state.withLock { state in
                if let failure = state.failure { return .failure(failure) }
                if state.unsent <= highWatermark { return .success(()) }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// On the event loop: libnghttp2 took `count` bytes. A waiting writer resumes once half the watermark is free.
    func drained(_ count: Int) {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { state in
            state.unsent -= count
            guard state.unsent <= highWatermark / 2, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// On the event loop: the stream is gone; the writer learns why at its next call (or now, if it waits).
    func fail(_ error: any Error) {
        let waiter: CheckedContinuation<Void, any Error>? = state.withLock { state in
            guard state.failure == nil else { return nil }
            state.failure = error
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(throwing: error)
    }
}
