import NIOCore
import HTTPTypes

extension StreamReader {
    /// The buffer between the connection (which receives DATA on its event loop) and the application (which reads
    /// from a task). Plain state: every method says what the caller must do next; no locks, no I/O.
    struct StateMachine {
        enum End {
            case open
            case finished
            case failed(any Error)
        }

        private(set) var chunks = ChunkQueue()
        private(set) var bufferedBytes = 0
        private(set) var end = End.open
        private(set) var trailers: HTTPFields?
        private(set) var isDropped = false
        /// Resumed exactly once (cleared first); checked in debug builds only (``FastContinuation``).
        private var waiter: FastContinuation<ByteBuffer?, any Error>?
        private var waiterMaxBytes = Int.max
        /// Bytes handed to the application but not yet credited to the flow-control windows.
        private(set) var pendingCredit = 0
        private var creditScheduled = false

        /// Whether a wake-up for the waiting reader is due at the end of the current read burst.
        private var wakeRequested = false

        /// Received bytes are gathered into chunks of up to this size while nobody takes them.
        static let coalescingLimit = 64 << 10

        enum ReceiveAction {
            /// Kept; a reader waits for it: wake it (``wake()``) at the end of the read burst, so that it gets
            /// everything the burst brought in one chunk and one thread hop, not one per DATA frame.
            case wakeReader
            /// Kept until the application reads it.
            case buffered
            /// Nobody will read it: credit its bytes back at once.
            case discard
        }

        mutating func receive(_ bytes: UnsafeRawBufferPointer) -> ReceiveAction {
            guard case .open = end, !isDropped else { return .discard }
            chunks.append(bytes, coalescingUpTo: Self.coalescingLimit)
            bufferedBytes += bytes.count
            guard waiter != nil, !wakeRequested else { return .buffered }
            wakeRequested = true
            return .wakeReader
        }

        /// The read burst ended: the waiting reader gets what arrived (up to what it asked for). The connection
        /// credits the handed bytes at once.
        mutating func wake() -> (FastContinuation<ByteBuffer?, any Error>, ByteBuffer)? {
            wakeRequested = false
            guard let waiter, let chunk = takeFirst(maxBytes: waiterMaxBytes) else { return nil }
            self.waiter = nil
            return (waiter, chunk)
        }

        private mutating func takeFirst(maxBytes: Int) -> ByteBuffer? {
            guard var first = chunks.first else { return nil }
            let chunk: ByteBuffer
            if first.readableBytes > maxBytes {
                chunk = first.readSlice(length: maxBytes)!
                chunks.replaceFirst(with: first)
            } else {
                chunk = chunks.removeFirst()
            }
            bufferedBytes -= chunk.readableBytes
            return chunk
        }

        enum EndAction {
            case resume(FastContinuation<ByteBuffer?, any Error>, Result<ByteBuffer?, any Error>)
            case none
        }

        /// The stream's inbound side ended cleanly, with trailers if any.
        mutating func finish(trailers: HTTPFields?) -> EndAction {
            guard case .open = end else { return .none }
            end = .finished
            self.trailers = trailers
            // With bytes still queued, the pending wake-up hands them over first; the end comes on the next read.
            if let waiter, chunks.isEmpty {
                self.waiter = nil
                return .resume(waiter, .success(nil))
            }
            return .none
        }

        /// The stream failed: buffered bytes are dropped (and must be credited back: `discarded`).
        mutating func fail(_ error: any Error) -> (action: EndAction, discarded: Int) {
            guard case .open = end else { return (.none, 0) }
            end = .failed(error)
            let discarded = bufferedBytes
            chunks.removeAll()
            bufferedBytes = 0
            if let waiter {
                self.waiter = nil
                return (.resume(waiter, .failure(error)), discarded)
            }
            return (.none, discarded)
        }

        enum ReadAction {
            case chunk(ByteBuffer, scheduleCredit: Bool)
            case end
            case failed(any Error)
            case wait
        }

        /// The application wants up to `maxBytes` bytes. While another task waits in a read, this one fails with
        /// ``HTTP2Error/readerBusy`` and the waiting read is left as it was.
        mutating func read(maxBytes: Int) -> ReadAction {
            guard waiter == nil else { return .failed(HTTP2Error.readerBusy) }
            if let chunk = takeFirst(maxBytes: maxBytes) {
                return .chunk(chunk, scheduleCredit: addCredit(chunk.readableBytes))
            }
            switch end {
            case .open: return .wait
            case .finished: return .end
            case .failed(let error): return .failed(error)
            }
        }

        /// The reader suspends: the next chunk or the end resumes `continuation`. Only after `read` said `.wait`
        /// (so there is no other waiter: `read` fails a second reader with ``HTTP2Error/readerBusy``).
        mutating func wait(_ continuation: FastContinuation<ByteBuffer?, any Error>, maxBytes: Int) {
            assert(waiter == nil, "wait(_:maxBytes:) without read(maxBytes:) saying .wait")
            waiter = continuation
            waiterMaxBytes = maxBytes
        }

        /// The bytes of a chunk handed to a waiter by ``wake()`` are credited by the connection.
        /// Returns whether a credit hop must be scheduled for bytes the reader took from the buffer.
        private mutating func addCredit(_ count: Int) -> Bool {
            pendingCredit += count
            if creditScheduled { return false }
            creditScheduled = true
            return true
        }

        /// The connection takes the credit collected so far.
        mutating func takeCredit() -> Int {
            creditScheduled = false
            defer { pendingCredit = 0 }
            return pendingCredit
        }

        /// The application dropped the reader: what is buffered is returned to the windows, and an open stream
        /// must be cancelled.
        mutating func drop() -> (unread: Int, wasOpen: Bool) {
            isDropped = true
            let unread = bufferedBytes
            chunks.removeAll()
            bufferedBytes = 0
            if case .open = end { return (unread, true) }
            return (unread, false)
        }
    }
}
