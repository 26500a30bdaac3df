public import NIOCore
public import HTTPTypes
import Synchronization

/// The body of a received message, read as the application wants it.
///
/// Flow control follows reading: the connection credits the peer's send window only with the bytes the
/// application has taken out of the reader, so a reader that is not read holds at most one stream window of
/// memory and the peer simply waits. Read chunks as an `AsyncSequence`, read up to n bytes at a time, or collect
/// everything up to a limit. Chunk boundaries carry no meaning.
///
/// Dropping a reader before its end cancels the stream (RST_STREAM CANCEL) and credits whatever it had buffered
/// back to the connection, so other streams keep their full window.
///
/// A reader can decode a `content-encoding` (gzip, deflate) as it reads (see `ClientSession.Response`'s
/// `decodingContent`): chunks are then decoded bytes, ``collect(upTo:)``'s limit counts decoded bytes, and the
/// window is still credited as compressed chunks are taken for decoding. ``bufferedByteCount`` stays the count of
/// compressed bytes received and not yet taken.
public final class StreamReader: AsyncSequence, Sendable {
    /// A chunk of the body, as it arrived.
    public typealias Element = ByteBuffer

    let storage: Storage
    /// Set at most once, before the first read (``decode(with:)``).
    private let decoder = AtomicLazyReference<ContentDecoder>()
    /// Whether ``decoder`` is set: a read of a reader that does not decode costs one load of a flag (the lazy
    /// reference's generic `load()` took about 2% of a client's CPU time per request).
    private let decodes = Atomic<Bool>(false)

    init(storage: Storage) {
        self.storage = storage
    }

    deinit {
        storage.readerDropped()
    }

    /// Reads the next chunk of at most `maxBytes` bytes, waiting for one if none is buffered.
    ///
    /// A reader has one consumer at a time: a read that starts while another task waits in one fails with
    /// ``HTTP2Error/readerBusy`` (the waiting read goes on).
    ///
    /// - Returns: the bytes, or `nil` at the end of the body.
    /// - Throws: ``HTTP2Error`` if the stream was reset or the connection went away, ``HTTP2Error/readerBusy``,
    ///   ``HTTP2Error/invalidArgument(_:)`` when `maxBytes` is not positive, or `CancellationError`. A decoding
    ///   reader also throws ``HTTP2Error/decompressionFailed(_:)`` (corrupt or truncated data) and
    ///   ``HTTP2Error/decompressionLimit(ratio:)`` (a decompression bomb; the stream is cancelled).
    nonisolated(nonsending) public func read(upTo maxBytes: Int = .max) async throws -> ByteBuffer? {
        guard decodes.load(ordering: .acquiring), let decoder = decoder.load() else { return try await storage.read(maxBytes: maxBytes) }
        return try await decoder.read(upTo: maxBytes, from: storage)
    }

    /// Decodes the body with `decoder` from now on; call it before the first read. Returns `false` (and changes
    /// nothing) when the reader already had a decoder.
    @discardableResult
    func decode(with decoder: ContentDecoder) -> Bool {
        let stored = self.decoder.storeIfNil(decoder) === decoder
        if stored { decodes.store(true, ordering: .releasing) }
        return stored
    }

    /// The decoder, if the reader decodes.
    var contentDecoder: ContentDecoder? { decodes.load(ordering: .acquiring) ? decoder.load() : nil }

    /// Reads the whole body.
    ///
    /// - Throws: ``HTTP2Error/bodyTooLarge(limit:)`` as soon as more than `limit` bytes arrived (the stream is then
    ///   cancelled), or the errors of ``read(upTo:)``.
    public func collect(upTo limit: Int) async throws -> ByteBuffer {
        var result = ByteBuffer()
        while var chunk = try await read() {
            guard result.readableBytes + chunk.readableBytes <= limit else { throw HTTP2Error.bodyTooLarge(limit: limit) }
            result.writeBuffer(&chunk)
        }
        return result
    }

    /// Stops the body: the stream is reset with CANCEL (on a client; a server that already answered lets its
    /// response finish) and whatever was buffered goes back to the flow-control windows. Reads then throw.
    public func cancel() {
        storage.cancel()
    }

    /// The trailers that ended the body, once the end was read; `nil` before that or when there were none.
    public var trailers: HTTPFields? { storage.trailers }

    /// Whether the end of the body was reached and everything buffered was read (when decoding: and everything
    /// decoded, the compressed stream having ended properly).
    public var isFinished: Bool {
        guard decodes.load(ordering: .acquiring), let decoder = decoder.load() else { return storage.isFinished }
        return storage.isFinished && decoder.isFinished
    }

    /// Bytes received and not yet read by the application. When the reader decodes, these are compressed bytes not
    /// yet taken for decoding (what holds the stream's window), not decoded bytes.
    public var bufferedByteCount: Int { storage.bufferedByteCount }

    /// Iterates the body's chunks; the window is credited as each is taken.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: self) }

    /// Iterates the body's chunks.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let reader: StreamReader

        /// The next chunk, or `nil` at the end of the body.
        public mutating func next() async throws -> ByteBuffer? { try await reader.read() }

        /// The next chunk, or `nil` at the end of the body, read in the caller's isolation (no executor switch).
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> ByteBuffer? { try await reader.read() }
    }
}

extension StreamReader {
    /// The reader's shared state: filled on the connection's event loop, read from the application's tasks.
    final class Storage: Sendable {
        private let state = LockedState(StateMachine())  // inline: no allocation of its own
        /// Credits bytes to the stream's window, on the connection's event loop.
        let connection: any StreamTransport
        let streamID: Int32

        init(streamID: Int32, connection: any StreamTransport) {
            self.streamID = streamID
            self.connection = connection
        }

        // MARK: Connection side (event loop)

        /// Keeps `bytes` for the application; the connection must wake the reader (``wake()``) at the end of the
        /// read burst, or credit the bytes back at once because nobody will read them.
        func receive(_ bytes: UnsafeRawBufferPointer) -> StateMachine.ReceiveAction {
            state.withLock { $0.receive(bytes) }
        }

        /// Hands what arrived to the waiting reader; returns the bytes the connection must credit now.
        func wake() -> Int {
            guard let (continuation, chunk) = state.withLock({ $0.wake() }) else { return 0 }
            continuation.resume(returning: chunk)
            return chunk.readableBytes
        }

        func finish(trailers: HTTPFields?) {
            let action = state.withLock { $0.finish(trailers: trailers) }
            if case .resume(let continuation, let result) = action { continuation.resume(with: result) }
        }

        /// Returns the buffered bytes that were dropped, for the connection to credit back.
        func fail(_ error: any Error) -> Int {
            let (action, discarded) = state.withLock { $0.fail(error) }
            if case .resume(let continuation, let result) = action { continuation.resume(with: result) }
            return discarded
        }

        func takeCredit() -> Int { state.withLock { $0.takeCredit() } }

        var trailers: HTTPFields? { state.withLock { $0.trailers } }

        var isFinished: Bool {
            state.withLock { machine in
                if case .finished = machine.end { return machine.bufferedBytes == 0 }
                return false
            }
        }

        var bufferedByteCount: Int { state.withLock { $0.bufferedBytes } }

        // MARK: Application side

        nonisolated(nonsending) func read(maxBytes: Int) async throws -> ByteBuffer? {
            guard maxBytes > 0 else { throw HTTP2Error.invalidArgument("read(upTo: \(maxBytes)) needs a positive count") }
            switch state.withLock({ $0.read(maxBytes: maxBytes) }) {
            case .chunk(let chunk, let scheduleCredit):
                if scheduleCredit { connection.credit(self) }
                return chunk
            case .end:
                return nil
            case .failed(let error):
                throw error
            case .wait:
                break
            }
            return try await withTaskCancellationHandler {
                try await withFastThrowingContinuation { (continuation: FastContinuation<ByteBuffer?, any Error>) in
                    let ready: StateMachine.ReadAction = state.withLock { machine in
                        let action = machine.read(maxBytes: maxBytes)
                        if case .wait = action { machine.wait(continuation, maxBytes: maxBytes) }
                        return action
                    }
                    switch ready {
                    case .chunk(let chunk, let scheduleCredit):
                        if scheduleCredit { connection.credit(self) }
                        continuation.resume(returning: chunk)
                    case .end:
                        continuation.resume(returning: nil)
                    case .failed(let error):
                        continuation.resume(throwing: error)
                    case .wait:
                        break
                    }
                }
            } onCancel: {
                connection.cancelStream(streamID)
            }
        }

        func cancel() {
            connection.cancelStream(streamID)
        }

        func readerDropped() {
            let (unread, wasOpen) = state.withLock { $0.drop() }
            // A body read to its end leaves nothing to credit and nothing to cancel: no hop to the event loop.
            guard unread > 0 || wasOpen else { return }
            connection.readerDropped(streamID: streamID, unread: unread, cancel: wasOpen)
        }

        /// Whether the body ended (cleanly or not); buffered bytes may still wait to be read.
        var hasEnded: Bool {
            state.withLock { machine in
                if case .open = machine.end { return false }
                return true
            }
        }
    }
}
