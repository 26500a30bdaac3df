import NIOCore
import NGHTTP2
import HTTPTypes

/// What a connection keeps for one open stream. Lives on the connection's event loop.
final class StreamContext {
    let id: Int32
    /// The received body (a request's on a server, a response's on a client).
    let inbound: StreamReader.Storage
    /// The body this side is sending, if it is still sending.
    var outbound: OutboundBody?
    /// Whether the peer's final field block arrived (the request head on a server, the final response on a client).
    var headReceived = false

    // Client
    /// Resumed exactly once (set to `nil` first); checked in debug builds only (``FastContinuation``).
    var response: FastContinuation<ReceivedResponse, any Error>?
    var informational: [HTTPResponse] = []
    /// A pushed stream's response (RFC 9113 §8.4), for its ``ClientSession/PushPromise``: completed once.
    var pushedResponse: EventLoopPromise<ReceivedResponse>?
    /// The request's deadline and read timeout, if it has either (see `armStreamTimer`).
    var timeouts: StreamTimeouts?
    /// When the last byte of the response (head or body) arrived; kept only when there is a read timeout.
    var lastReceived: ConnectionStateMachine.Instant = .zero
    /// Fires at the next of the request's deadlines; cancelled when the stream ends.
    var timer: Scheduled<Void>?

    // Server
    var handlerTask: Task<Void, Never>?
    var responseSubmitted = false
    /// The response ended before the request: the rest of the request is read and dropped for a while (see
    /// `endStreamSent`).
    var isDraining = false
    /// This side reset the stream with RST_STREAM NO_ERROR (at the end of a drain).
    var resetLocally = false
    /// A response body given whole, sent from here (see ``read(into:streamID:session:)``): no ``OutboundBody`` per
    /// response. `nil` once sent or when the stream failed.
    private var wholeBody: WholeBody?
    private var wholeBodyTrailers: HTTPFields?
    private var wholeBodyFailed = false

    init(id: Int32, inbound: StreamReader.Storage) {
        self.id = id
        self.inbound = inbound
    }
}

/// A response body given whole: bytes, or text whose UTF-8 is copied into DATA frames as it goes.
enum WholeBody {
    case bytes(ByteBuffer)
    case text(String, sent: Int)
}

extension StreamContext: DataSource {
    /// Makes this stream the source of `body` when it is given whole (bytes or text): the returned provider sends
    /// it, then its trailers. `nil` for no body (and for a writer's, which an ``OutboundBody`` carries).
    func wholeBodyProvider(for body: MessageBody) -> DataProvider? {
        switch body.storage {
        case .empty, .writer: return nil
        case .bytes(let bytes, let trailers): wholeBody = .bytes(bytes); wholeBodyTrailers = trailers
        case .text(let text, let trailers): wholeBody = .text(text, sent: 0); wholeBodyTrailers = trailers
        }
        return DataProvider(source: self)
    }

    /// The stream is gone: a body given whole is dropped (a later read resets the stream, as ``OutboundBody`` does).
    func failWholeBody() {
        guard wholeBody != nil else { return }
        wholeBody = nil
        wholeBodyTrailers = nil
        wholeBodyFailed = true
    }

    /// Fills a DATA frame's payload from the body given whole (inside `Session.send`).
    func read(into buffer: UnsafeMutableRawBufferPointer, streamID: Int32, session: Session) throws -> DataProvider.Result {
        if wholeBodyFailed { throw Session.StreamReset(.internalError) }
        let count: Int
        let remaining: Int
        switch wholeBody {
        case nil:
            return .bytes(0, flags: .endOfData)
        case .bytes(var bytes):
            count = bytes.withUnsafeReadableBytes { fill(buffer, from: $0) }
            bytes.moveReaderIndex(forwardBy: count)
            remaining = bytes.readableBytes
            wholeBody = remaining > 0 ? .bytes(bytes) : nil
        case .text(var text, let sent):
            (count, remaining) = text.withUTF8 { utf8 in
                let unsent = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[sent...])
                let count = fill(buffer, from: unsent)
                return (count, unsent.count - count)
            }
            wholeBody = remaining > 0 ? .text(text, sent: sent + count) : nil
        }
        guard remaining == 0 else { return .bytes(count) }
        defer { wholeBodyTrailers = nil }
        return try endOfBody(count, trailers: wholeBodyTrailers, streamID: streamID, session: session)
    }
}

/// Copies as much of `source` as fits into `buffer`; returns how many bytes.
private func fill(_ buffer: UnsafeMutableRawBufferPointer, from source: UnsafeRawBufferPointer) -> Int {
    let count = min(source.count, buffer.count)
    if count > 0 { buffer.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: count) }
    return count
}
