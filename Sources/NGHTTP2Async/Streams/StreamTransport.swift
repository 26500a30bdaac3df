import NIOCore
import HTTPTypes

/// What a stream's body reader and body writer need from the connection that carries the stream, whatever its
/// protocol: HTTP/2 today (``ConnectionReference``), HTTP/1.1 later, so that both feed the same public
/// ``StreamReader`` and ``BodyWriter``. Every call may come from any task; the transport hops to its event loop.
protocol StreamTransport: AnyObject, Sendable {
    /// Credits what the application took out of `reader` (flow control: the peer may send that much more).
    func credit(_ reader: StreamReader.Storage)
    /// The application stopped reading the stream (``StreamReader/cancel()``, or its task was cancelled).
    func cancelStream(_ streamID: Int32)
    /// The application let go of the stream's reader with `unread` bytes still buffered; `cancel` when the body had
    /// not ended.
    func readerDropped(streamID: Int32, unread: Int, cancel: Bool)
    /// A writer queued `chunk` on the stream's body (it passed the body's gate).
    func enqueue(_ chunk: ByteBuffer, streamID: Int32)
    /// The writer ended the stream's body, with `trailers` if any; a second end does nothing.
    func finishBody(streamID: Int32, trailers: HTTPFields?)
    /// The writer failed: what it wrote goes out, then the stream is reset.
    func abortBody(streamID: Int32, error: any Error)
}

/// A server's transport: a request may also send 1xx responses before its final one.
protocol ServerTransport: StreamTransport {
    /// Sends a 1xx response on the stream, before its final response (RFC 9110 §15.2).
    func sendInformational(streamID: Int32, _ response: HTTPResponse)
}
